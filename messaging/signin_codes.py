"""One-time sign-in codes for the webmail, sent to the patient's personal e-mail or phone.

The second factor of a webmail sign-in: after the browser proved it knows the passphrase
(by its Argon2id auth key), the server sends a short code outside the trust space, to the
personal address or the phone (SMS, E.164 number) the patient registered. The code says
nothing about any message;
it carries the code and a warning, in French or English, like the notices of
:mod:`messaging.kinds.notification` (RFC 5322, ``Auto-Submitted: auto-generated`` as in
RFC 3834 §5, quoted-printable UTF-8 text).

Senders (``pli/wiring.py`` picks one):

- :class:`SmtpCodeSender`: the notices' smarthost (:class:`~messaging.notices.SmtpNoticeSender`,
  same TLS and AUTH rules), one SMTP transaction per code in a worker thread;
- :class:`messaging.sms.KannelSmsSender`: the SMS form (:func:`render_code_sms`) through an
  SMS gateway;
- :class:`RoutingCodeSender`: each code through the sender of its channel;
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
from messaging.errors import InvalidMessage
from messaging.kinds.notification import Channel, check_phone
from messaging.mime import new_message_id
from messaging.notices import NoticeNotSent, SmtpNoticeSender
from messaging.types import Address, MessageKind

__all__ = [
    "SignInCode",
    "CodeSender",
    "SmtpCodeSender",
    "RoutingCodeSender",
    "DemoCodeSender",
    "InMemoryCodeSender",
    "build_code_email",
    "render_code_sms",
]


@dataclass(frozen=True, slots=True)
class SignInCode:
    destination: str
    code: str = field(repr=False)
    lang: Lang = "fr"
    channel: Channel = Channel.EMAIL

    def __post_init__(self) -> None:
        check_lang(self.lang)
        if self.channel is Channel.EMAIL:
            object.__setattr__(self, "destination", str(Address.parse(self.destination)))
        else:
            check_phone(self.destination)


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


_SMS_TEXTS: dict[Lang, str] = {
    "fr": "Pli : votre code de connexion est {code}. Valable 10 minutes. "
    "Ne le communiquez à personne.",
    "en": "Pli: your sign-in code is {code}. Valid for 10 minutes. Never share it.",
}


def render_code_sms(code: SignInCode) -> str:
    """The SMS form: the code and the warning, nothing else."""
    return _SMS_TEXTS[code.lang].format(code=code.code)


def build_code_email(code: SignInCode, *, from_address: Address, date: datetime) -> bytes:
    if code.channel is not Channel.EMAIL:
        raise InvalidMessage("a code for a phone has no e-mail form", "notice-channel-unsupported")
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
        if code.channel is not Channel.EMAIL:
            raise NoticeNotSent("an SMTP smarthost sends codes by e-mail only", permanent=True)
        raw = build_code_email(code, from_address=self._from, date=self._clock.now())
        await asyncio.to_thread(self._deliver, raw, code.destination)


class RoutingCodeSender:
    """Sends each code through the sender of its channel; a missing one refuses."""

    def __init__(self, *, email: CodeSender | None, sms: CodeSender | None) -> None:
        self._senders: dict[Channel, CodeSender] = {}
        if email is not None:
            self._senders[Channel.EMAIL] = email
        if sms is not None:
            self._senders[Channel.SMS] = sms

    def handles(self, channel: Channel) -> bool:
        return channel in self._senders

    async def send_code(self, code: SignInCode) -> None:
        sender = self._senders.get(code.channel)
        if sender is None:
            raise NoticeNotSent(f"no sender for sign-in codes by {code.channel}", permanent=True)
        await sender.send_code(code)


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
