"""Content-free notices and their senders; the SMTP sender against a real aiosmtpd smarthost."""

from __future__ import annotations

import asyncio
import dataclasses
import email.policy
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import mailparser
import pytest
import trustme
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.clock import ManualClock
from messaging.errors import InvalidMessage
from messaging.kinds import notification
from messaging.kinds.notification import (
    Channel,
    Notice,
    NoticeEvent,
    build_notice_email,
    notice_for,
    parse_notice,
    render_sms,
    render_text,
)
from messaging.mime import Draft, build_message, parse_message
from messaging.notices import (
    InMemoryNoticeSender,
    NoticeNotSent,
    NoticeSender,
    RoutingNoticeSender,
    SmtpNoticeSender,
)
from messaging.types import Address, MessageKind

STRICT = email.policy.default.clone(raise_on_defect=True)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PERSONAL = "jean.dupont@example.org"
PHONE = "+33612345678"
LINK = "https://pli.example/webmail"
FROM = Address.parse("ne-pas-repondre@pli.example")
SECURE_ADDRESS = "180012345678901@patient.pli.test"


def strict(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=STRICT).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def a_notice(event: NoticeEvent = NoticeEvent.NEW_MESSAGE, lang: str = "fr") -> Notice:
    return Notice(event, Channel.EMAIL, PERSONAL, LINK, lang)  # type: ignore[arg-type]


# --- the notice -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("event", list(NoticeEvent))
def test_every_notice_round_trips_and_is_well_formed(event: NoticeEvent, lang: str) -> None:
    notice = a_notice(event, lang)
    raw = build_notice_email(notice, from_address=FROM, date=NOW)
    msg = strict(raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Pli-Type"] == MessageKind.NOTIFICATION.value
    assert msg["Content-Language"] == lang
    assert msg.get_content_type() == "text/plain"
    assert LINK in msg.get_content()
    parsed = mailparser.parse_from_bytes(raw)
    assert not parsed.defects
    assert parsed.subject == notification.subject_for(notice)
    assert parse_notice(raw) == notice


def test_texts_are_french_by_default_and_english_on_request() -> None:
    fr = render_text(a_notice())
    en = render_text(a_notice(lang="en"))
    assert "Un nouveau message vous attend" in fr
    assert "A new message is waiting for you" in en
    assert notification.subject_for(a_notice(NoticeEvent.NEW_DOCUMENT)) == (
        "Un nouveau document est disponible sur Pli"
    )
    assert "historique des accès" in render_text(a_notice(NoticeEvent.RECORD_ACCESS))
    assert Notice(NoticeEvent.NEW_MESSAGE, Channel.SMS, PHONE, LINK).lang == "fr"


def test_an_sms_is_short_and_carries_the_link() -> None:
    for event in NoticeEvent:
        for lang in ("fr", "en"):
            text = render_sms(Notice(event, Channel.SMS, PHONE, LINK, lang))
            assert text.endswith(LINK)
            assert len(text) <= 160


def test_a_notice_has_no_field_that_could_carry_content() -> None:
    """Canary by design: adding a subject, sender or body field to Notice must fail here."""
    assert [f.name for f in dataclasses.fields(Notice)] == [
        "event",
        "channel",
        "destination",
        "link",
        "lang",
    ]


CANARY_SUBJECT = "CANARY-SUBJECT Résultats VIH positifs"
CANARY_BODY = "CANARY-BODY votre biopsie montre une tumeur"
CANARY_SENDER_NAME = "Dr CANARY-SENDER Oncologue"
CANARY_SENDER = "canary.oncologue@medecin.pli.test"
CANARY_ATTACHMENT = "CANARY-ATTACHMENT.pdf"


def _delivered(kind: MessageKind) -> bytes:
    draft = Draft(
        sender=Address.parse(CANARY_SENDER),
        recipients=(Address.parse(SECURE_ADDRESS),),
        subject=CANARY_SUBJECT,
        body=CANARY_BODY,
        kind=kind,
        sender_name=CANARY_SENDER_NAME,
    )
    return build_message(draft, message_id="<canary@medecin.pli.test>", date=NOW)


def _forbidden() -> list[str]:
    return [
        CANARY_SUBJECT,
        "CANARY",
        CANARY_BODY,
        CANARY_SENDER_NAME,
        CANARY_SENDER,
        "oncologue",
        "VIH",
        "biopsie",
        SECURE_ADDRESS,
        "180012345678901",
        "<canary@medecin.pli.test>",
        CANARY_ATTACHMENT,
    ]


@pytest.mark.parametrize("kind", [k for k in MessageKind if k is not MessageKind.NOTIFICATION])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_notice_never_contains_the_subject_body_or_sender_of_what_it_announces(
    kind: MessageKind, lang: str
) -> None:
    delivered = parse_message(_delivered(kind))
    assert delivered.subject == CANARY_SUBJECT  # the canaries are really in the message
    notice = notice_for(
        MessageKind(delivered.kind),
        channel=Channel.EMAIL,
        destination=PERSONAL,
        link=LINK,
        lang=lang,  # type: ignore[arg-type]
    )
    sms = notice_for(MessageKind(delivered.kind), channel=Channel.SMS, destination=PHONE, link=LINK)
    raw = build_notice_email(notice, from_address=FROM, date=NOW)
    outputs = [
        raw.decode("ascii"),
        strict(raw).get_content(),
        str(strict(raw)["Subject"]),
        render_sms(sms),
        repr(notice),
    ]
    for output in outputs:
        for canary in _forbidden():
            assert canary.lower() not in output.lower()


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(NoticeEvent)),
    st.sampled_from(["fr", "en"]),
    st.from_regex(r"https://[a-z]{1,20}\.example(/[a-z0-9]{0,30})?", fullmatch=True),
)
def test_a_notice_says_only_its_fixed_text_and_its_link(
    event: NoticeEvent, lang: str, link: str
) -> None:
    notice = Notice(event, Channel.EMAIL, PERSONAL, link, lang)  # type: ignore[arg-type]
    text = render_text(notice)
    assert text.replace(link, "<LINK>") == render_text(
        Notice(event, Channel.EMAIL, PERSONAL, LINK, lang)  # type: ignore[arg-type]
    ).replace(LINK, "<LINK>")


def test_notice_for_maps_kinds_to_their_family() -> None:
    def event_of(kind: MessageKind) -> NoticeEvent:
        return notice_for(kind, channel=Channel.EMAIL, destination=PERSONAL, link=LINK).event

    assert event_of(MessageKind.DOCUMENT) is NoticeEvent.NEW_DOCUMENT
    assert event_of(MessageKind.PRESCRIPTION) is NoticeEvent.NEW_DOCUMENT
    assert event_of(MessageKind.CERTIFICATE) is NoticeEvent.NEW_DOCUMENT
    assert event_of(MessageKind.NOTE) is NoticeEvent.NEW_MESSAGE
    assert event_of(MessageKind.APPOINTMENT) is NoticeEvent.NEW_MESSAGE
    with pytest.raises(ValueError, match="never announced"):
        event_of(MessageKind.NOTIFICATION)


@pytest.mark.parametrize(
    ("channel", "destination", "link", "code"),
    [
        (Channel.EMAIL, "not an address", LINK, "notice-invalid-destination"),
        (Channel.EMAIL, "a@b@c.example", LINK, "notice-invalid-destination"),
        (Channel.SMS, "0612345678", LINK, "notice-invalid-destination"),
        (Channel.SMS, PERSONAL, LINK, "notice-invalid-destination"),
        (Channel.EMAIL, PERSONAL, "http://pli.example/", "notice-invalid-link"),
        (Channel.EMAIL, PERSONAL, "https://user:pw@pli.example/", "notice-invalid-link"),
        (
            Channel.EMAIL,
            PERSONAL,
            "https://pli.example/\r\nBcc: x@y.example",
            "notice-invalid-link",
        ),
        (Channel.EMAIL, PERSONAL, "https://pli.example/é", "notice-invalid-link"),
        (Channel.EMAIL, PERSONAL, "https://[broken/", "notice-invalid-link"),
        (Channel.EMAIL, PERSONAL, "https:///nohost", "notice-invalid-link"),
        (Channel.EMAIL, PERSONAL, "https://pli.example/" + "a" * 200, "notice-invalid-link"),
    ],
)
def test_an_invalid_notice_cannot_be_made(
    channel: Channel, destination: str, link: str, code: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        Notice(NoticeEvent.NEW_MESSAGE, channel, destination, link)
    assert caught.value.code == code


def test_an_sms_notice_has_no_email_form() -> None:
    with pytest.raises(InvalidMessage) as caught:
        build_notice_email(
            Notice(NoticeEvent.NEW_MESSAGE, Channel.SMS, PHONE, LINK), from_address=FROM, date=NOW
        )
    assert caught.value.code == "notice-channel-unsupported"


def test_a_message_that_is_not_a_notice_does_not_parse_as_one() -> None:
    msg = EmailMessage()
    msg["To"] = PERSONAL
    msg.set_content("hello")
    with pytest.raises(InvalidMessage) as caught:
        parse_notice(msg.as_bytes())
    assert caught.value.code == "notice-invalid"
    raw = build_notice_email(a_notice(), from_address=FROM, date=NOW)
    with pytest.raises(InvalidMessage) as caught:
        parse_notice(raw.replace(b"Content-Language: fr", b"Content-Language: de"))
    assert caught.value.code == "notice-invalid"


def test_notices_are_never_recognised_by_content() -> None:
    msg = strict(build_notice_email(a_notice(), from_address=FROM, date=NOW))
    assert not notification.recognises(msg)
    assert notification.SPEC.kind is MessageKind.NOTIFICATION


# --- in-memory and routing senders ------------------------------------------------------


async def test_the_in_memory_sender_keeps_what_it_is_given() -> None:
    sender: NoticeSender = InMemoryNoticeSender()
    await sender.send(a_notice())
    assert isinstance(sender, InMemoryNoticeSender)
    assert sender.sent == [a_notice()]


async def test_the_routing_sender_sends_each_notice_through_its_channel() -> None:
    emails, texts = InMemoryNoticeSender(), InMemoryNoticeSender()
    router = RoutingNoticeSender(email=emails, sms=texts)
    sms = Notice(NoticeEvent.NEW_DOCUMENT, Channel.SMS, PHONE, LINK)
    await router.send(a_notice())
    await router.send(sms)
    assert emails.sent == [a_notice()]
    assert texts.sent == [sms]
    with pytest.raises(NoticeNotSent) as caught:
        await RoutingNoticeSender(email=emails).send(sms)
    assert caught.value.permanent


# --- the SMTP sender against a real smarthost --------------------------------------------


@dataclass
class Smarthost:
    port: int
    received: list[Envelope] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)


class Handler:
    def __init__(self, host: Smarthost) -> None:
        self.host = host

    # aiosmtpd calls its hooks positionally: (server, session, envelope, ...).
    async def handle_RCPT(
        self,
        _server: SmtpServer,
        _session: Session,
        envelope: Envelope,
        address: str,
        _options: list[str],
    ) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 no such user"
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self,
        _server: SmtpServer,
        _session: Session,
        envelope: Envelope,
    ) -> str:
        self.host.received.append(envelope)
        return "250 OK"


async def _smarthost(factory: Callable[[Smarthost], SmtpServer]) -> AsyncIterator[Smarthost]:
    host = Smarthost(port=0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: factory(host), "127.0.0.1", 0)
    host.port = server.sockets[0].getsockname()[1]
    try:
        yield host
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def plain_smarthost() -> AsyncIterator[Smarthost]:
    async for host in _smarthost(lambda h: SmtpServer(Handler(h), hostname="smarthost.test")):
        yield host


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_smarthost(ca: trustme.CA) -> AsyncIterator[Smarthost]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    def factory(host: Smarthost) -> SmtpServer:
        def authenticate(
            server: SmtpServer, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            assert isinstance(data, LoginPassword)
            host.logins.append(data.login)
            ok = data.login == b"pli" and data.password == b"s3cret-smarthost"
            return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

        return SmtpServer(
            Handler(host),
            hostname="smarthost.test",
            tls_context=server_context,
            require_starttls=True,
            authenticator=authenticate,
            auth_require_tls=True,
        )

    async for host in _smarthost(factory):
        yield host


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_the_smtp_sender_hands_the_notice_to_the_smarthost(
    plain_smarthost: Smarthost,
) -> None:
    # The smarthost runs in this event loop: if smtplib blocked the loop, this would hang.
    clock = ManualClock(NOW)
    sender = SmtpNoticeSender("127.0.0.1", plain_smarthost.port, FROM, False, clock=clock)
    await sender.send(a_notice(NoticeEvent.NEW_DOCUMENT))
    (envelope,) = plain_smarthost.received
    assert envelope.mail_from == str(FROM)
    assert envelope.rcpt_tos == [PERSONAL]
    assert isinstance(envelope.original_content, bytes)
    assert parse_notice(envelope.original_content) == a_notice(NoticeEvent.NEW_DOCUMENT)
    msg = strict(envelope.original_content)
    assert msg["From"].addresses[0].display_name == "Pli"
    assert msg["Date"].datetime == NOW


async def test_the_smtp_sender_uses_starttls_and_authenticates_after_it(
    tls_smarthost: Smarthost, ca: trustme.CA
) -> None:
    sender = SmtpNoticeSender(
        "127.0.0.1",
        tls_smarthost.port,
        str(FROM),
        True,
        username="pli",
        password="s3cret-smarthost",  # noqa: S106
        ssl_context=client_context(ca),
    )
    await sender.send(a_notice())
    assert tls_smarthost.logins == [b"pli"]
    (envelope,) = tls_smarthost.received
    assert envelope.rcpt_tos == [PERSONAL]
    assert "s3cret" not in repr(sender)


async def test_a_smarthost_that_requires_tls_refuses_a_plain_sender(
    tls_smarthost: Smarthost,
) -> None:
    sender = SmtpNoticeSender("127.0.0.1", tls_smarthost.port, FROM, False)
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(a_notice())
    assert caught.value.permanent  # 530 must issue STARTTLS first
    assert tls_smarthost.received == []


async def test_an_untrusted_smarthost_certificate_is_refused(tls_smarthost: Smarthost) -> None:
    sender = SmtpNoticeSender("127.0.0.1", tls_smarthost.port, FROM, True)
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(a_notice())
    assert not caught.value.permanent
    assert tls_smarthost.received == []


async def test_wrong_smarthost_credentials_are_a_permanent_failure(
    tls_smarthost: Smarthost, ca: trustme.CA
) -> None:
    sender = SmtpNoticeSender(
        "127.0.0.1", tls_smarthost.port, FROM, True, username="pli", password="wrong",  # noqa: S106
        ssl_context=client_context(ca),
    )  # fmt: skip
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(a_notice())
    assert caught.value.permanent
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(("local", "permanent"), [("refuse", True), ("later", False)])
async def test_a_refused_recipient_is_reported_without_the_address(
    plain_smarthost: Smarthost, local: str, permanent: bool
) -> None:
    sender = SmtpNoticeSender("127.0.0.1", plain_smarthost.port, FROM, False)
    notice = Notice(NoticeEvent.NEW_MESSAGE, Channel.EMAIL, f"{local}.jdupont@example.org", LINK)
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(notice)
    assert caught.value.permanent is permanent
    assert "jdupont" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_an_unreachable_smarthost_is_a_temporary_failure() -> None:
    probe = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sender = SmtpNoticeSender("127.0.0.1", port, FROM, False, timeout=5)
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(a_notice())
    assert not caught.value.permanent


async def test_the_smtp_sender_refuses_sms_notices(plain_smarthost: Smarthost) -> None:
    sender = SmtpNoticeSender("127.0.0.1", plain_smarthost.port, FROM, False)
    with pytest.raises(NoticeNotSent) as caught:
        await sender.send(Notice(NoticeEvent.NEW_MESSAGE, Channel.SMS, PHONE, LINK))
    assert caught.value.permanent
    assert plain_smarthost.received == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"starttls": False, "username": "u", "password": "p"}, "need STARTTLS"),
        ({"starttls": True, "username": "u"}, "both"),
        ({"starttls": True, "implicit_tls": True}, "not both"),
    ],
)
def test_credentials_never_travel_in_clear(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmtpNoticeSender("127.0.0.1", 25, FROM, **kwargs)


async def test_implicit_tls_is_supported(ca: trustme.CA) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    host = Smarthost(port=0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SmtpServer(Handler(host), hostname="smarthost.test"),
        "127.0.0.1",
        0,
        ssl=server_context,
    )
    try:
        port = server.sockets[0].getsockname()[1]
        sender = SmtpNoticeSender(
            "127.0.0.1", port, FROM, False, implicit_tls=True, ssl_context=client_context(ca)
        )
        await sender.send(a_notice())
        assert len(host.received) == 1
    finally:
        server.close()
        await server.wait_closed()
