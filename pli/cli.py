"""The ``pli`` command: set up a data directory, manage accounts, send and read, serve.

Secrets (passphrases, app passwords, recovery keys) are read from a hidden prompt or from
standard input, never from arguments, so they stay out of the process list and history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from directory import SqlDirectory
from messaging import (
    Address,
    Attachment,
    Draft,
    MailboxKind,
    MessageKind,
    PliError,
    build_message,
    parse_message,
)
from messaging.mime import new_message_id
from pli import cli_api, cli_directory, cli_patient
from pli import demo as demo_module
from pli.secrets import SecretsMissing
from pli.settings import Settings, SettingsError, load_settings
from pli.terminal import CommandError, ask_secret, fail, human_size, say, table
from pli.wiring import Pli, initialise, open_pli

__all__ = ["main", "build_parser"]

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(args.home, **overrides)


async def _with_pli(settings: Settings, body: Callable[[Pli], Awaitable[int]]) -> int:
    pli = await open_pli(settings)
    try:
        return await body(pli)
    finally:
        await pli.close()


# -- init / serve / demo ------------------------------------------------------------------


async def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    home = settings.home
    if not settings.settings_file.exists():
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = [f"domain = {args.domain or settings.domain!r}".replace("'", '"')]
        if args.demo:
            lines.append("demo = true")
        if args.database_url:
            lines.append(f'database_url = "{args.database_url}"')
        settings.settings_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        settings = load_settings(home)
    initialise(settings)
    pli = await open_pli(settings)  # runs the migrations
    await pli.close()
    say(f"Initialised {home}")
    say(f"  database  {_redact(settings.resolved_database_url)}")
    say(f"  blobs     {settings.resolved_blob_dir}")
    say(f"  domain    {settings.domain}{'  (demo mode)' if settings.demo else ''}")
    return 0


async def cmd_serve(_args: argparse.Namespace, settings: Settings) -> int:
    from pli.serve import serve

    return await serve(settings)


async def cmd_demo(_args: argparse.Namespace, settings: Settings) -> int:
    if not settings.demo:
        raise CommandError("`pli demo` only runs in demo mode (pli init --demo)")
    return await _with_pli(settings, lambda pli: demo_module.seed(pli, sys.stdout))


# -- accounts -----------------------------------------------------------------------------


async def cmd_account_create(args: argparse.Namespace, settings: Settings) -> int:
    address = Address.parse(args.address)
    passphrase = ask_secret(f"Passphrase for {address}", confirm=True)

    async def body(pli: Pli) -> int:
        created = await pli.accounts.create(
            address, MailboxKind(args.kind), args.name or str(address), passphrase
        )
        say(f"Created {created.account.kind.value} mailbox {address}")
        say("")
        say("Recovery key (shown once: print it or write it down, it is not stored):")
        say(f"  {created.recovery_key}")
        return 0

    return await _with_pli(settings, body)


async def cmd_account_list(args: argparse.Namespace, settings: Settings) -> int:
    async def body(pli: Pli) -> int:
        kind = MailboxKind(args.kind) if args.kind else None
        accounts = await pli.store.list_accounts(kind)
        rows = [
            [
                str(a.address),
                a.kind.value,
                a.display_name,
                a.created_at.strftime("%Y-%m-%d"),
                "closed" if a.closed_at else "open",
            ]
            for a in accounts
        ]
        table(rows, ["ADDRESS", "TYPE", "NAME", "CREATED", "STATE"], sys.stdout)
        return 0

    return await _with_pli(settings, body)


async def cmd_account_passwd(args: argparse.Namespace, settings: Settings) -> int:
    address = Address.parse(args.address)
    if args.recovery_key:
        secret = ask_secret(f"Recovery key for {address}")
    else:
        secret = ask_secret(f"Current passphrase for {address}")
    new = ask_secret(f"New passphrase for {address}", confirm=True)

    async def body(pli: Pli) -> int:
        if args.recovery_key:
            await pli.accounts.reset_passphrase_with_recovery_key(address, secret, new)
        else:
            await pli.accounts.change_passphrase(address, secret, new)
        say(f"Passphrase of {address} changed; app passwords keep working.")
        return 0

    return await _with_pli(settings, body)


async def cmd_app_password(args: argparse.Namespace, settings: Settings) -> int:
    address = Address.parse(args.address)
    action = args.action
    passphrase = ask_secret(f"Passphrase for {address}") if action == "create" else None

    async def body(pli: Pli) -> int:
        if action == "create":
            assert passphrase is not None  # noqa: S101 - asked above for "create"
            unlocked = await pli.accounts.unlock(address, passphrase)
            new = await pli.accounts.create_app_password(unlocked, args.label)
            say(f"App password {new.credential.id[:8]} ({args.label}) for {address}:")
            say(f"  {new.password}")
            say("Use it in your mail client instead of the passphrase; it is shown once.")
        elif action == "list":
            rows = [
                [
                    c.id[:8],
                    c.label,
                    c.created_at.strftime("%Y-%m-%d %H:%M"),
                    c.last_used_at.strftime("%Y-%m-%d %H:%M") if c.last_used_at else "never",
                ]
                for c in await pli.accounts.list_app_passwords(address)
            ]
            table(rows, ["ID", "LABEL", "CREATED", "LAST USED"], sys.stdout)
        else:
            matches = [
                c
                for c in await pli.accounts.list_app_passwords(address)
                if c.id.startswith(args.id)
            ]
            if len(matches) != 1:
                raise CommandError(f"no single app password starts with {args.id!r}")
            await pli.accounts.revoke_app_password(address, matches[0].id)
            say(f"Revoked app password {matches[0].id[:8]} ({matches[0].label}).")
        return 0

    return await _with_pli(settings, body)


# -- send / list / read -------------------------------------------------------------------


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    sender = Address.parse(args.sender)
    recipients = tuple(Address.parse(r) for r in args.to)
    body_text = Path(args.body_file).read_text(encoding="utf-8") if args.body_file else args.body
    attachments = tuple(Attachment(Path(p).name, Path(p).read_bytes()) for p in args.attach or ())
    passphrase = ask_secret(f"Passphrase for {sender}")

    async def body(pli: Pli) -> int:
        unlocked = await pli.accounts.unlock(sender, passphrase)
        draft = Draft(
            sender=sender,
            recipients=recipients,
            subject=args.subject,
            body=body_text or "",
            kind=MessageKind(args.kind),
            sender_name=unlocked.account.display_name,
            attachments=attachments,
        )
        raw = await asyncio.to_thread(
            build_message,
            draft,
            message_id=new_message_id(settings.domain),
            date=pli.clock.now(),
        )
        sent = await pli.delivery.send(sender, unlocked.keys, recipients, raw, kind=draft.kind)
        say(
            f"Sent {sent.kind.value} {sent.envelope_id} to {', '.join(map(str, recipients))} "
            f"({human_size(len(raw))}, sealed e2e)"
        )
        return 0

    return await _with_pli(settings, body)


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    address = Address.parse(args.address)
    passphrase = ask_secret(f"Passphrase for {address}")

    async def body(pli: Pli) -> int:
        unlocked = await pli.accounts.unlock(address, passphrase)
        records = await pli.delivery.list_messages(address, args.folder)
        rows = []
        for record in records:
            opened = await pli.delivery.open_message(
                address, unlocked.keys, args.folder, record.uid
            )
            parsed = parse_message(opened.raw)
            rows.append(
                [
                    str(record.uid),
                    record.date.strftime("%Y-%m-%d %H:%M"),
                    str(record.sender),
                    record.kind.value,
                    f"{opened.provenance.value}/{opened.signature.value}",
                    human_size(record.plaintext_size),
                    " ".join(sorted(record.flags)),
                    parsed.subject,
                ]
            )
        table(
            rows,
            ["UID", "DATE", "FROM", "TYPE", "PROVENANCE", "SIZE", "FLAGS", "SUBJECT"],
            sys.stdout,
        )
        return 0

    return await _with_pli(settings, body)


async def cmd_read(args: argparse.Namespace, settings: Settings) -> int:
    address = Address.parse(args.address)
    passphrase = ask_secret(f"Passphrase for {address}")

    async def body(pli: Pli) -> int:
        unlocked = await pli.accounts.unlock(address, passphrase)
        opened = await pli.delivery.open_message(
            address, unlocked.keys, args.folder, args.uid, displayed=True
        )
        await pli.store.set_flags(address, args.folder, args.uid, opened.record.flags | {"\\Seen"})
        if args.raw:
            sys.stdout.buffer.write(opened.raw)
            return 0
        parsed = parse_message(opened.raw)
        signed_by = (
            f"operator key, received from {opened.gateway_peer or 'an API client'}"
            if opened.signer == "operator"
            else opened.signer
        )
        say(f"From:        {parsed.sender}")
        say(f"To:          {', '.join(parsed.recipients)}")
        say(f"Date:        {parsed.date}")
        say(f"Subject:     {parsed.subject}")
        say(f"Type:        {opened.record.kind.value}")
        say(f"Provenance:  {opened.provenance.value}")
        say(f"Signature:   {opened.signature.value} ({signed_by})")
        if parsed.attachments:
            say(f"Attachments: {len(parsed.attachments)}")
            save_dir = Path(args.save) if args.save else None
            for attachment in parsed.attachments:
                note = ""
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    target = save_dir / Path(attachment.filename).name
                    target.write_bytes(attachment.data)
                    note = f"  saved to {target}"
                say(
                    f"  - {attachment.filename} ({attachment.declared_type}, "
                    f"{human_size(len(attachment.data))}){note}"
                )
        say("")
        say(parsed.body.rstrip("\n"))
        return 0

    return await _with_pli(settings, body)


# -- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pli", description="Pli: secure health messaging (MSSanté-style trust space)."
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="data directory (default: $PLI_HOME or ./pli-data)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a data directory and its database")
    p.add_argument("--demo", action="store_true", help="demo mode (laptop defaults allowed)")
    p.add_argument("--domain", help="mail domain of this instance")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    p.set_defaults(handler=_runs(cmd_init))

    p = sub.add_parser("serve", help="run every front (SMTP, IMAP, HTTP) until SIGTERM")
    p.set_defaults(handler=_runs(cmd_serve))

    p = sub.add_parser("demo", help="seed demo accounts and messages (demo mode only)")
    p.set_defaults(handler=_runs(cmd_demo))

    account = sub.add_parser("account", help="manage mailbox accounts")
    asub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    p = asub.add_parser("create", help="create an account (asks for its passphrase)")
    p.add_argument("address")
    p.add_argument("--kind", default="PER", choices=[k.value for k in MailboxKind])
    p.add_argument("--name", help="display name")
    p.set_defaults(handler=_runs(cmd_account_create))
    p = asub.add_parser("list", help="list accounts")
    p.add_argument("--kind", choices=[k.value for k in MailboxKind])
    p.set_defaults(handler=_runs(cmd_account_list))
    p = asub.add_parser("passwd", help="change the passphrase")
    p.add_argument("address")
    p.add_argument(
        "--recovery-key",
        action="store_true",
        help="prove ownership with the recovery key instead of the passphrase",
    )
    p.set_defaults(handler=_runs(cmd_account_passwd))
    p = asub.add_parser("app-password", help="app passwords for mail clients")
    p.add_argument("address")
    apsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = apsub.add_parser("create", help="create one (asks for the passphrase)")
    q.add_argument("--label", required=True, help="what it is for, e.g. 'Thunderbird'")
    q.set_defaults(handler=_runs(cmd_app_password))
    q = apsub.add_parser("list", help="list them")
    q.set_defaults(handler=_runs(cmd_app_password))
    q = apsub.add_parser("revoke", help="revoke one by its id (or a prefix)")
    q.add_argument("id")
    q.set_defaults(handler=_runs(cmd_app_password))

    p = sub.add_parser("send", help="send a message from a local account (sealed e2e)")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--subject", required=True)
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--body")
    body.add_argument("--body-file")
    p.add_argument("--attach", action="append", metavar="FILE")
    p.add_argument("--kind", default="note", choices=["note"])
    p.set_defaults(handler=_runs(cmd_send))

    p = sub.add_parser("list", help="list a folder (asks for the passphrase)")
    p.add_argument("address")
    p.add_argument("--folder", default="INBOX")
    p.set_defaults(handler=_runs(cmd_list))

    p = sub.add_parser("read", help="open and show a message (asks for the passphrase)")
    p.add_argument("address")
    p.add_argument("uid", type=int)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--save", metavar="DIR", help="save attachments there")
    p.add_argument("--raw", action="store_true", help="print the RFC 5322 message")
    p.set_defaults(handler=_runs(cmd_read))

    cli_directory.register(sub, _open_directory)
    cli_patient.register(sub, _runs, _with_pli)
    cli_api.register(sub, _runs, _with_pli)
    return parser


def _runs(command: Handler) -> Callable[[argparse.Namespace], int]:
    """A command line handler: settings from the arguments, then the command's coroutine."""

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(command(args, _settings(args)))

    return run


async def _open_directory(args: argparse.Namespace) -> SqlDirectory:
    settings = _settings(args)
    return await SqlDirectory.open(settings.resolved_database_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (CommandError, PliError, SettingsError, SecretsMissing) as exc:
        fail(str(exc))
        return 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`pli directory search … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _redact(url: str) -> str:
    """A database URL without its password, fit for a terminal."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if ":" in creds else url
