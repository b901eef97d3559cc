"""Terminal helpers for the ``pli`` command: secrets prompts, tables, sizes, errors."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["ask_secret", "table", "human_size", "fail", "say"]


class CommandError(Exception):
    """A failure to report in one line, without a traceback (exit status 1)."""


def ask_secret(prompt: str, *, confirm: bool = False) -> str:
    """Read a secret: hidden prompt on a terminal, one line of standard input otherwise.

    Reading from standard input keeps secrets out of the process list and shell history
    (never accept them as arguments).
    """
    if sys.stdin.isatty():
        value = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass(f"{prompt} (again): ") != value:
            raise CommandError("the two entries differ")
    else:
        line = sys.stdin.readline()
        if not line:
            raise CommandError(f"{prompt}: expected one line on standard input")
        value = line.rstrip("\r\n")
    if not value:
        raise CommandError(f"{prompt}: empty")
    return value


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def say(text: str = "", *, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(text + "\n")


def fail(text: str) -> None:
    sys.stderr.write(f"pli: error: {text}\n")
