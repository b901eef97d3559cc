"""``pli directory``: import, export, search and show the directory from a terminal.

    pli directory import FILE          apply an extraction (all of it or none), bar on stderr
    pli directory export [-o FILE]     the extraction of the directory (standard output)
    pli directory search TEXT… [--name --city --profession --specialty --limit N]
    pli directory show ADDRESS         a mailbox, its roles, its flags

:func:`register` adds the commands to a parent parser; each sets ``handler``, a function
of the parsed arguments that runs the command and returns its exit status: 0 done, 1 the
command failed on the data (a bad file, an unknown address, a search without match), 2 it
was called wrongly (unreadable file, malformed address or query). The directory comes from
the ``open_directory`` callable given to :func:`register`, so this module works with any
implementation of :class:`messaging.directory.Directory` and is tested on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from messaging.directory import (
    Directory,
    ExtractionError,
    ImportProgress,
    InvalidQuery,
    MailboxEntry,
    Role,
    SearchPage,
    SearchQuery,
)
from messaging.errors import InvalidAddress, PliError
from messaging.types import Address

__all__ = ["register", "OK", "FAILED", "USAGE"]

OK, FAILED, USAGE = 0, 1, 2

OpenDirectory = Callable[[argparse.Namespace], Awaitable[Directory]]
Command = Callable[[Directory, argparse.Namespace], Awaitable[int]]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    open_directory: OpenDirectory,
) -> None:
    """Add ``directory`` and its commands to ``subparsers``."""
    parser = subparsers.add_parser(
        "directory",
        help="the directory of professionals: import, export, search, show",
        description="The directory of professionals, organisations and their mailboxes.",
    )
    commands = parser.add_subparsers(dest="directory_command", metavar="COMMAND", required=True)

    def command(name: str, run: Command, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(handler=partial(_handle, run, open_directory))
        return sub

    imported = command(
        "import", _import, "Apply an Extraction Correspondance MSSanté file, all of it or none."
    )
    imported.add_argument("file", type=Path, help="the extraction (UTF-8, 31 columns, '|')")
    exported = command(
        "export", _export, "Write the directory as an extraction file (liste rouge left out)."
    )
    exported.add_argument(
        "-o", "--output", type=Path, help="write to this file instead of standard output"
    )
    searched = command("search", _search, "Find professionals and organisations.")
    searched.add_argument("text", nargs="*", help="words, or their beginnings, in any field")
    for field in ("name", "given-name", "profession", "specialty", "organisation", "city"):
        searched.add_argument(f"--{field}", default="", help=f"words of the {field}")
    searched.add_argument("--postcode", default="", help="beginning of the postcode")
    searched.add_argument("--limit", type=int, default=20, help="hits to show (at most 100)")
    shown = command("show", _show, "Show a mailbox of the directory and its roles.")
    shown.add_argument("address", help="the mailbox address")


def _handle(run: Command, open_directory: OpenDirectory, args: argparse.Namespace) -> int:
    async def main() -> int:
        directory = await open_directory(args)
        try:
            return await run(directory, args)
        finally:
            await directory.close()

    try:
        return asyncio.run(main())
    except (
        InvalidQuery,
        InvalidAddress,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
    ) as exc:
        _error(args, str(exc))
        return USAGE
    except PliError as exc:
        _error(args, str(exc))
        return FAILED


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def _error(args: argparse.Namespace, message: str) -> None:
    _err(f"pli directory {args.directory_command}: {message}")


# -- import ----------------------------------------------------------------------------


class _Bar:
    """The import's progress bar on standard error (drawn only on a terminal)."""

    def __init__(self, size: int) -> None:
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[lines]:>9,} lines"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=False,
        )
        self.task: TaskID = self.progress.add_task("reading", total=size, lines=0)

    def __call__(self, update: ImportProgress) -> None:
        self.progress.update(
            self.task,
            completed=update.bytes_read,
            lines=update.lines,
            description=update.phase,
        )


async def _import(directory: Directory, args: argparse.Namespace) -> int:
    path: Path = args.file
    with path.open("rb") as lines:
        bar = _Bar(os.fstat(lines.fileno()).st_size)
        try:
            with bar.progress:
                report = await directory.import_extraction(lines, progress=bar)
        except ExtractionError as exc:
            _error(args, f"{path}: {exc}")
            _err("nothing was imported.")
            return FAILED
    _out(
        f"{report.rows:,} lines: {report.added:,} added, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.retired:,} retired"
        + (f"; {report.duplicates:,} addresses on several lines" if report.duplicates else "")
    )
    return OK


# -- export ----------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    """A file that replaces ``path`` only once it is complete."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


async def _export(directory: Directory, args: argparse.Namespace) -> int:
    if args.output is None:
        out = sys.stdout.buffer
        async for chunk in directory.export_extraction():
            out.write(chunk)
        out.flush()
        return OK
    lines = 0
    with _atomic(args.output) as out:
        async for chunk in directory.export_extraction():
            out.write(chunk)
            lines += chunk.count(b"\n")
    _err(f"{lines - 1:,} lines written to {args.output}")
    return OK


# -- search ----------------------------------------------------------------------------


def _where(role: Role) -> tuple[str, str]:
    organisation = role.organisation
    if organisation is None:
        return "", ""
    return organisation.trade_name or organisation.name, organisation.address.city


def _what(role: Role) -> str:
    practitioner = role.practitioner
    if practitioner is None:
        return role.service
    parts = (practitioner.profession.label, practitioner.specialty.label)
    return " · ".join(p for p in parts if p)


def _print_page(page: SearchPage) -> None:
    console = Console()
    if not console.is_terminal:
        # Piped: one tab-separated line per hit, for other tools.
        for hit in page.items:
            organisation, city = _where(hit.role)
            fields = (str(hit.address), hit.role.display_name, _what(hit.role), organisation, city)
            _out("\t".join(fields))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("Address", "Name", "Profession", "Organisation", "City"):
        table.add_column(column, overflow="fold")
    for hit in page.items:
        organisation, city = _where(hit.role)
        table.add_row(str(hit.address), hit.role.display_name, _what(hit.role), organisation, city)
    console.print(table)
    total = f"{page.total}" if page.total_exact else f"{page.total}+"
    console.print(f"[dim]{len(page.items)} of {total} matches[/dim]")


async def _search(directory: Directory, args: argparse.Namespace) -> int:
    query = SearchQuery(
        text=" ".join(args.text),
        name=args.name,
        given_name=args.given_name,
        profession=args.profession,
        specialty=args.specialty,
        organisation=args.organisation,
        city=args.city,
        postcode=args.postcode,
        limit=args.limit,
    )
    page = await directory.search(query)
    if not page.items:
        _err("no match")
        return FAILED
    _print_page(page)
    return OK


# -- show ------------------------------------------------------------------------------


def _lines(entry: MailboxEntry) -> Iterator[str]:
    flags = [entry.kind.value]
    if entry.liste_rouge:
        flags.append("liste rouge")
    if entry.retired_at is not None:
        flags.append(f"retired {entry.retired_at:%Y-%m-%d}")
    yield f"{entry.address}  ({', '.join(flags)})"
    for label, value in (
        ("service", entry.service),
        ("description", entry.description),
        ("responsible", entry.responsible),
        ("preferred rank", "" if entry.preferred_rank is None else str(entry.preferred_rank)),
    ):
        if value:
            yield f"  {label}: {value}"
    for role in entry.roles:
        yield f"  line {role.line}:"
        practitioner = role.practitioner
        if practitioner is not None:
            yield f"    {practitioner.display_name}  (idNatPS {practitioner.national_id})"
            if _what(role):
                yield f"    {_what(role)}"
        organisation = role.organisation
        if organisation is not None:
            name = organisation.name + (
                f" ({organisation.trade_name})" if organisation.trade_name else ""
            )
            yield f"    {name}  (structure {organisation.national_id})"
            address = organisation.address
            street = " ".join(
                p
                for p in (
                    address.street_number,
                    address.street_number_suffix,
                    address.street_type,
                    address.street_name,
                )
                if p
            )
            for line in (
                address.complement_location,
                address.complement_distribution,
                street,
                address.locality,
                address.routing_line,
            ):
                if line:
                    yield f"    {line}"
        if role.service and practitioner is not None:
            yield f"    service: {role.service}"
        if not role.dematerialised:
            yield "    dématérialisation: no"


async def _show(directory: Directory, args: argparse.Namespace) -> int:
    address = Address.parse(args.address)
    entry = await directory.get_mailbox(address)
    if entry is None:
        _error(args, f"{address} is not in the directory")
        return FAILED
    for line in _lines(entry):
        _out(line)
    return OK
