"""The DSN extension's SMTP parameters on submission (RFC 3461): ``RET`` and ``ENVID`` on
``MAIL``, ``NOTIFY`` and ``ORCPT`` on ``RCPT``.

aiosmtpd refuses every parameter it does not know (``555``), so the session takes these out
of the command before aiosmtpd parses it (:func:`take_params`), checks them here, and keeps
them on the envelope; the delivery service gets them as a
:class:`~messaging.outbound.DsnRequest` and the relay honours them. ``ENVID`` and ``ORCPT``
are xtext (RFC 3461 §4): ``+XX`` stands for the octet ``XX``.
"""

from __future__ import annotations

import re

from messaging.errors import InvalidMessage
from messaging.outbound import Ret, check_notify

__all__ = ["DsnParamError", "take_params", "parse_mail_params", "parse_rcpt_params"]

_XTEXT = re.compile(r"\+([0-9A-F]{2})")
_MAX = 100


class DsnParamError(ValueError):
    """A DSN parameter that is not RFC 3461; the message is the reply text."""


def take_params(arg: str | None, names: frozenset[str]) -> tuple[str | None, dict[str, str]]:
    """``arg`` without the parameters ``names`` (after the ``<path>``), and their values."""
    if arg is None:
        return None, {}
    head, bracket, tail = arg.rpartition(">")
    if not bracket:
        return arg, {}
    kept: list[str] = []
    taken: dict[str, str] = {}
    for token in tail.split():
        key, _eq, value = token.partition("=")
        if key.upper() in names:
            if key.upper() in taken:
                raise DsnParamError(f"{key.upper()} given twice")
            taken[key.upper()] = value
        else:
            kept.append(token)
    return head + bracket + "".join(" " + k for k in kept), taken


def _xtext(value: str, what: str) -> str:
    if not value or len(value) > 3 * _MAX:
        raise DsnParamError(f"{what} is empty or too long")
    decoded = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
    if "+" in _XTEXT.sub("", value) or any(not (0x21 <= ord(c) <= 0x7E) for c in decoded):
        raise DsnParamError(f"{what} is not xtext (RFC 3461 §4)")
    if len(decoded) > _MAX:
        raise DsnParamError(f"{what} is too long")
    return decoded


def parse_mail_params(taken: dict[str, str]) -> tuple[Ret | None, str]:
    ret: Ret | None = None
    if "RET" in taken:
        try:
            ret = Ret(taken["RET"].upper())
        except ValueError:
            raise DsnParamError("RET must be FULL or HDRS") from None
    envid = _xtext(taken["ENVID"], "ENVID") if "ENVID" in taken else ""
    return ret, envid


def parse_rcpt_params(taken: dict[str, str]) -> tuple[frozenset[str], str]:
    notify: frozenset[str] = frozenset()
    if "NOTIFY" in taken:
        try:
            notify = check_notify(taken["NOTIFY"].split(","))
        except InvalidMessage as error:
            raise DsnParamError(error.reason) from None
    orcpt = ""
    if "ORCPT" in taken:
        kind, semicolon, address = taken["ORCPT"].partition(";")
        if not semicolon or not kind:
            raise DsnParamError("ORCPT is addr-type;xtext")
        orcpt = f"{kind.lower()};{_xtext(address, 'ORCPT')}"
    return notify, orcpt
