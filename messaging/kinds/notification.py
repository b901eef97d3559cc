"""``notification``: content-free notices to a patient's personal e-mail or phone.

DOMAIN.md, "Patients": new mail is announced on the patient's personal e-mail or SMS,
without any health content. A notice says that *something* is waiting and *where* to read
it, never what: no subject, no body, no sender, no document type, no secure address (a
patient's secure address contains their INS). The guarantee is structural: a
:class:`Notice` has no field that could hold any of these, so no caller can leak them
through it, and the texts below are fixed.

The e-mail form is a plain RFC 5322 message (UTF-8 text, quoted-printable) marked
``Auto-Submitted: auto-generated`` (RFC 3834 §5) so that personal mailboxes never answer
it; ``X-Pli-Notice`` and ``X-Pli-Notice-Link`` carry the notice's fields for the round trip.
The notice travels outside the trust space, so it is never sealed, and it needs nothing
that sealing protects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from enum import StrEnum
from urllib.parse import urlsplit

from messaging._compose import (
    LANGS,
    Lang,
    check_lang,
    header_address,
    new_root,
    parse_lenient,
)
from messaging.errors import InvalidAddress, InvalidMessage
from messaging.kinds.base import KindSpec
from messaging.mime import new_message_id
from messaging.types import Address, MessageKind

__all__ = [
    "Channel",
    "Notice",
    "NoticeEvent",
    "NOTICE_HEADER",
    "LINK_HEADER",
    "SPEC",
    "build_notice_email",
    "check_phone",
    "notice_for",
    "parse_notice",
    "recognises",
    "render_sms",
    "render_text",
    "subject_for",
]

NOTICE_HEADER = "X-Pli-Notice"
LINK_HEADER = "X-Pli-Notice-Link"
_PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164


class NoticeEvent(StrEnum):
    """What a notice announces."""

    NEW_MESSAGE = "new-message"
    NEW_DOCUMENT = "new-document"
    RECORD_ACCESS = "record-access"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Notice:
    """A content-free notice. Its fields are all it can ever say; adding one that could carry
    content breaks a test on purpose."""

    event: NoticeEvent
    channel: Channel
    destination: str
    """The personal e-mail address, or an E.164 phone number for SMS."""
    link: str
    """Where to read: the webmail's address, https only."""
    lang: Lang = "fr"

    def __post_init__(self) -> None:
        check_lang(self.lang)
        if self.channel is Channel.EMAIL:
            try:
                object.__setattr__(self, "destination", str(Address.parse(self.destination)))
            except InvalidAddress as exc:
                raise InvalidMessage(
                    f"not an e-mail address: {exc}", "notice-invalid-destination"
                ) from exc
        else:
            check_phone(self.destination)
        _check_link(self.link)


def check_phone(number: str) -> str:
    """An E.164 number (``+33612345678``), or :class:`InvalidMessage`."""
    if not _PHONE_RE.match(number):
        raise InvalidMessage("an SMS goes to an E.164 number (+33…)", "notice-invalid-destination")
    return number


def _check_link(link: str) -> None:
    try:
        parts = urlsplit(link)
    except ValueError as exc:
        raise InvalidMessage("the link is not a URL", "notice-invalid-link") from exc
    # https only, no credentials, printable ASCII: the link is shown in clear to the patient.
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or not link.isascii()
        or not link.isprintable()
        or " " in link
        or len(link) > 200
    ):
        raise InvalidMessage("the link must be a plain https URL", "notice-invalid-link")


def notice_for(
    kind: MessageKind,
    *,
    channel: Channel,
    destination: str,
    link: str,
    lang: Lang = "fr",
) -> Notice:
    """The notice for a delivered message of ``kind``: only the kind's family is used."""
    if kind is MessageKind.NOTIFICATION:
        raise ValueError("a notice is never announced by another notice")
    documents = (MessageKind.DOCUMENT, MessageKind.PRESCRIPTION, MessageKind.CERTIFICATE)
    event = NoticeEvent.NEW_DOCUMENT if kind in documents else NoticeEvent.NEW_MESSAGE
    return Notice(event, channel, destination, link, lang)


_SUBJECTS: dict[Lang, dict[NoticeEvent, str]] = {
    "fr": {
        NoticeEvent.NEW_MESSAGE: "Vous avez un nouveau message sur Pli",
        NoticeEvent.NEW_DOCUMENT: "Un nouveau document est disponible sur Pli",
        NoticeEvent.RECORD_ACCESS: "Votre dossier Pli a été consulté",
    },
    "en": {
        NoticeEvent.NEW_MESSAGE: "You have a new message on Pli",
        NoticeEvent.NEW_DOCUMENT: "A new document is available on Pli",
        NoticeEvent.RECORD_ACCESS: "Your Pli record was accessed",
    },
}

_LEADS: dict[Lang, dict[NoticeEvent, str]] = {
    "fr": {
        NoticeEvent.NEW_MESSAGE: "Un nouveau message vous attend dans votre messagerie "
        "sécurisée Pli.",
        NoticeEvent.NEW_DOCUMENT: "Un nouveau document vous attend dans votre messagerie "
        "sécurisée Pli.",
        NoticeEvent.RECORD_ACCESS: "Quelqu'un a accédé à votre dossier. L'historique des "
        "accès, dans votre espace Pli, vous dit qui et quand.",
    },
    "en": {
        NoticeEvent.NEW_MESSAGE: "A new message is waiting for you in your Pli secure mailbox.",
        NoticeEvent.NEW_DOCUMENT: "A new document is waiting for you in your Pli secure mailbox.",
        NoticeEvent.RECORD_ACCESS: "Someone accessed your record. The access history in "
        "your Pli space tells you who and when.",
    },
}

_SMS: dict[Lang, dict[NoticeEvent, str]] = {
    "fr": {
        NoticeEvent.NEW_MESSAGE: "Pli : un nouveau message vous attend.",
        NoticeEvent.NEW_DOCUMENT: "Pli : un nouveau document vous attend.",
        NoticeEvent.RECORD_ACCESS: "Pli : votre dossier a été consulté.",
    },
    "en": {
        NoticeEvent.NEW_MESSAGE: "Pli: a new message is waiting for you.",
        NoticeEvent.NEW_DOCUMENT: "Pli: a new document is waiting for you.",
        NoticeEvent.RECORD_ACCESS: "Pli: your record was accessed.",
    },
}


def subject_for(notice: Notice) -> str:
    return _SUBJECTS[notice.lang][notice.event]


def render_text(notice: Notice) -> str:
    """The e-mail text: what kind of thing waits, where to read it, nothing else."""
    if notice.lang == "fr":
        lines = [
            "Bonjour,",
            "",
            _LEADS["fr"][notice.event],
            f"Pour le lire, connectez-vous sur : {notice.link}",
            "",
            "Pour protéger votre vie privée, ce courriel ne dit rien de son contenu.",
            "Ne répondez pas à ce courriel : il est envoyé automatiquement.",
        ]
        if notice.event is NoticeEvent.RECORD_ACCESS:
            lines[3] = f"Pour le consulter, connectez-vous sur : {notice.link}"
    else:
        lines = [
            "Hello,",
            "",
            _LEADS["en"][notice.event],
            f"To read it, sign in at: {notice.link}",
            "",
            "To protect your privacy, this e-mail says nothing about what it is about.",
            "Do not reply to this e-mail: it is sent automatically.",
        ]
        if notice.event is NoticeEvent.RECORD_ACCESS:
            lines[3] = f"To see it, sign in at: {notice.link}"
    return "\n".join(lines) + "\n"


def render_sms(notice: Notice) -> str:
    """One short SMS (under 160 characters with a 100-character link)."""
    return f"{_SMS[notice.lang][notice.event]} {notice.link}"


def build_notice_email(
    notice: Notice,
    *,
    from_address: Address,
    from_name: str = "Pli",
    message_id: str | None = None,
    date: datetime,
) -> bytes:
    """The e-mail of an ``email`` notice."""
    if notice.channel is not Channel.EMAIL:
        raise InvalidMessage("an SMS notice has no e-mail form", "notice-channel-unsupported")
    root = new_root(
        sender=from_address,
        sender_name=from_name,
        recipients=[Address.parse(notice.destination)],
        subject=subject_for(notice),
        message_id=message_id or new_message_id(from_address.domain),
        date=date,
        kind=MessageKind.NOTIFICATION,
        extra_headers=[
            ("Auto-Submitted", "auto-generated"),
            (NOTICE_HEADER, notice.event.value),
            (LINK_HEADER, notice.link),
        ],
    )
    # Quoted-printable keeps the French text 7-bit clean for any personal mail provider.
    root.set_content(render_text(notice), charset="utf-8", cte="quoted-printable")
    root["Content-Language"] = notice.lang  # after set_content, which clears Content-*
    return root.as_bytes()


def parse_notice(raw: bytes) -> Notice:
    """The notice an e-mail notice carries."""
    msg = parse_lenient(raw)
    try:
        event = NoticeEvent(str(msg.get(NOTICE_HEADER, "")).strip())
    except ValueError as exc:
        raise InvalidMessage("not a Pli notice", "notice-invalid") from exc
    lang = str(msg.get("Content-Language", "fr")).strip().lower()
    if lang not in LANGS:
        raise InvalidMessage(f"unknown notice language {lang!r}", "notice-invalid")
    return Notice(
        event=event,
        channel=Channel.EMAIL,
        destination=str(header_address(msg, "To", code="notice-invalid-destination")),
        link=str(msg.get(LINK_HEADER, "")).strip(),
        lang=check_lang(lang),
    )


def recognises(msg: Message) -> bool:
    """Never by content: a notice is only ever what its ``X-Pli-Type`` declares.

    Mail from outside that looks like a notice must stay a plain note, so that nobody can
    make a message pass for a system notice by imitating its headers.
    """
    del msg
    return False


SPEC = KindSpec(
    kind=MessageKind.NOTIFICATION,
    schema_version=1,
    description_fr="Notification",
    description_en="Notification",
    recognises=recognises,
)
