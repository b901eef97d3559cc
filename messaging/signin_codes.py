"""One-time sign-in codes for the webmail, sent to the patient's personal e-mail.

The second factor of a webmail sign-in: after the browser proved it knows the passphrase
(by its Argon2id auth key), the server sends a short code outside the trust space, to the
personal address the patient registered. The code mail says nothing about any message;
it carries the code and a warning, in French or English, like the notices of
:mod:`messaging.kinds.notification` (RFC 5322, ``Auto-Submitted: auto-generated`` as in
RFC 3834 §5, quoted-printable UTF-8 text).

Senders (``pli/wiring.py`` picks one):

- :class:`SmtpCodeSender`: the notices' smarthost (:class:`~messaging.notices.SmtpNoticeSender`,
  same TLS and AUTH rules), one SMTP transaction per code in a worker thread;
- :class:`DemoCodeSender`: demo mode only, appends the code to a file in the data
  directory (and logs where), since a laptop demo has no smarthost;
- :class:`InMemoryCodeSender`: keeps them, for other packages' tests.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from messaging._compose import Lang, check_lang, new_root
from messaging.mime import new_message_id
from messaging.notices import SmtpNoticeSender
from messaging.types import Address, MessageKind

__all__ = [
    "SignInCode",
    "CodeSender",
    "SmtpCodeSender",
    "DemoCodeSender",
    "InMemoryCodeSender",
    "build_code_email",
]


@dataclass(frozen=True, slots=True)
class SignInCode:
    destination: str
    code: str = field(repr=False)
    lang: Lang = "fr"

    def __post_init__(self) -> None:
        check_lang(self.lang)
        object.__setattr__(self, "destination", str(Address.parse(self.destination)))


class CodeSender(Protocol):
    async def send_code(self, code: SignInCode) -> None: ...


_TEXTS: dict[Lang, tuple[str, str]] = {
    "fr": (
        "Votre code de connexion Pli",
        "Bonjour,\n\nVotre code de connexion à votre messagerie sécurisée Pli est :\n\n"
        "    {code}\n\nIl est valable 10 minutes. Ne le communiquez à personne : Pli ne "
        "vous le demandera jamais par téléphone ni par courriel.\nSi vous n'avez pas "
        "demandé à vous connecter, changez votre phrase secrète.\n",
    ),
    "en": (
        "Your Pli sign-in code",
        "Hello,\n\nYour code to sign in to your Pli secure mailbox is:\n\n    {code}\n\n"
        "It is valid for 10 minutes. Never share it: Pli will never ask for it by phone "
        "or e-mail.\nIf you did not try to sign in, change your passphrase.\n",
    ),
}


def build_code_email(code: SignInCode, *, from_address: Address, date: datetime) -> bytes:
    subject, text = _TEXTS[code.lang]
    root = new_root(
        sender=from_address,
        sender_name="Pli",
        recipients=[Address.parse(code.destination)],
        subject=subject,
        message_id=new_message_id(from_address.domain),
        date=date,
        kind=MessageKind.NOTIFICATION,
        extra_headers=[("Auto-Submitted", "auto-generated")],
    )
    root.set_content(text.format(code=code.code), charset="utf-8", cte="quoted-printable")
    root["Content-Language"] = code.lang
    return root.as_bytes()


class SmtpCodeSender(SmtpNoticeSender):
    """Sends sign-in codes through the notices' smarthost."""

    async def send_code(self, code: SignInCode) -> None:
        raw = build_code_email(code, from_address=self._from, date=self._clock.now())
        await asyncio.to_thread(self._deliver, raw, code.destination)


class DemoCodeSender:
    """Demo mode only: the code is appended to a file (mode 0600) in the data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send_code(self, code: SignInCode) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"DEMO sign-in code for {code.destination}: {code.code}\n")


class InMemoryCodeSender:
    def __init__(self) -> None:
        self.sent: list[SignInCode] = []

    async def send_code(self, code: SignInCode) -> None:
        self.sent.append(code)
