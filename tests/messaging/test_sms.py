"""SMS through a real Kannel (bearerbox + smsbox, Debian's ``kannel``): notices and sign-in
codes reach the phone network with the right text, coding and sender; refusals and a gateway
that is down say which they are and never show the password or the number."""

from __future__ import annotations

import asyncio
import socket

import pytest

from messaging.kinds.notification import Channel, Notice, NoticeEvent, render_sms
from messaging.notices import NoticeNotSent
from messaging.signin_codes import RoutingCodeSender, SignInCode, render_code_sms
from messaging.sms import KannelSmsSender, check_gateway_url, fits_gsm_alphabet
from tests.support.kannel import KannelGateway

PHONE = "+33612345678"


def _sender(sms_gateway: KannelGateway, password: str | None = None) -> KannelSmsSender:
    return KannelSmsSender(
        sms_gateway.url, sms_gateway.username, password or sms_gateway.password, sender="Pli"
    )


async def test_a_sign_in_code_reaches_the_phone_in_french_in_one_gsm_message(
    sms_gateway: KannelGateway,
) -> None:
    code = SignInCode(PHONE, "493817", "fr", Channel.SMS)
    await _sender(sms_gateway).send_code(code)
    sms = await sms_gateway.phones.wait_for(PHONE)
    assert sms.text == render_code_sms(code)
    assert "493817" in sms.text and "Ne le communiquez à personne" in sms.text
    assert (sms.sender, sms.coding) == ("Pli", "text"), "à is in the GSM alphabet"
    assert len(sms.text) <= 160


async def test_french_outside_the_gsm_alphabet_goes_as_ucs2_unchanged(
    sms_gateway: KannelGateway,
) -> None:
    text = "Pli : reçu, à bientôt"  # ç and ô are not GSM 7-bit: Kannel would make ç a Ç
    assert not fits_gsm_alphabet(text)
    await _sender(sms_gateway).send_text(PHONE, text)
    sms = await sms_gateway.phones.wait_for(PHONE)
    assert (sms.coding, sms.text) == ("ucs-2", text)


async def test_an_english_notice_goes_as_plain_text_and_says_nothing_of_the_message(
    sms_gateway: KannelGateway,
) -> None:
    notice = Notice(NoticeEvent.NEW_DOCUMENT, Channel.SMS, PHONE, "https://pli.test/webmail/", "en")
    await _sender(sms_gateway).send(notice)
    sms = await sms_gateway.phones.wait_for(PHONE)
    assert sms.text == render_sms(notice)
    assert sms.text == "Pli: a new document is waiting for you. https://pli.test/webmail/"
    assert sms.coding == "text"


async def test_the_router_sends_phone_codes_by_sms_only(sms_gateway: KannelGateway) -> None:
    router = RoutingCodeSender(email=None, sms=_sender(sms_gateway))
    await router.send_code(SignInCode(PHONE, "111222", "en", Channel.SMS))
    assert (await sms_gateway.phones.wait_for(PHONE)).text.startswith("Pli: your sign-in code is")
    with pytest.raises(NoticeNotSent) as refused:
        await router.send_code(SignInCode("camille@example.org", "333444", "en"))
    assert refused.value.permanent
    assert len(sms_gateway.phones.received) == 1


async def test_a_wrong_password_is_a_permanent_refusal_that_shows_no_secret(
    sms_gateway: KannelGateway,
) -> None:
    wrong = "not-the-password-" + sms_gateway.password
    with pytest.raises(NoticeNotSent) as refused:
        await _sender(sms_gateway, wrong).send_code(SignInCode(PHONE, "555666", "fr", Channel.SMS))
    assert refused.value.permanent
    assert "403" in str(refused.value)
    shown = f"{refused.value!s} {refused.value!r} {refused.value.__cause__!r}"
    assert wrong not in shown and PHONE not in shown and "555666" not in shown
    assert refused.value.__suppress_context__, "urllib's error (with the URL) is dropped"
    assert sms_gateway.phones.received == []


async def test_a_gateway_that_is_down_is_a_temporary_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    sender = KannelSmsSender(f"http://127.0.0.1:{port}/cgi-bin/sendsms", "pli", "secret")
    with pytest.raises(NoticeNotSent) as failed:
        await sender.send_code(SignInCode(PHONE, "777888", "fr", Channel.SMS))
    assert not failed.value.permanent
    assert "secret" not in str(failed.value) and PHONE not in str(failed.value)


def test_the_password_is_never_in_the_repr() -> None:
    sender = KannelSmsSender("https://sms.example.org/cgi-bin/sendsms", "pli", "hunter2-x")
    assert "hunter2-x" not in repr(sender)
    assert "sms.example.org" in repr(sender)


@pytest.mark.parametrize(
    "url",
    [
        "http://sms.example.org/cgi-bin/sendsms",  # credentials and numbers in clear
        "https://pli:secret@sms.example.org/cgi-bin/sendsms",
        "https://sms.example.org/cgi-bin/sendsms?username=pli",
        "ftp://127.0.0.1/sendsms",
        "file:///etc/passwd",
    ],
)
def test_unsafe_gateway_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_gateway_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:13013/cgi-bin/sendsms", "https://sms.example.org/cgi-bin/sendsms"]
)
def test_https_or_loopback_gateways_are_accepted(url: str) -> None:
    assert check_gateway_url(url) == url


def test_a_code_for_a_phone_needs_an_e164_number() -> None:
    with pytest.raises(ValueError):
        SignInCode("06 12 34 56 78", "123456", "fr", Channel.SMS)


async def test_neither_a_proxy_nor_a_redirect_sees_the_query(
    sms_gateway: KannelGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query string holds the password and the number: an http_proxy from the
    environment is not used, and a gateway answering with a redirect is not followed."""
    seen: list[bytes] = []

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(4096))
        writer.close()

    trap = await asyncio.start_server(listener, "127.0.0.1", 0)
    trap_port = trap.sockets[0].getsockname()[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{trap_port}")
    monkeypatch.setenv("no_proxy", "")
    await _sender(sms_gateway).send_code(SignInCode(PHONE, "121212", "fr", Channel.SMS))
    assert "121212" in (await sms_gateway.phones.wait_for(PHONE)).text

    async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        location = f"http://127.0.0.1:{trap_port}/elsewhere"
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    bouncer = await asyncio.start_server(redirecting, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bouncer.sockets[0].getsockname()[1]}/cgi-bin/sendsms"
    with pytest.raises(NoticeNotSent) as refused:
        await KannelSmsSender(url, "pli", "secret").send_code(
            SignInCode(PHONE, "343434", "fr", Channel.SMS)
        )
    assert "302" in str(refused.value)
    await asyncio.sleep(0.2)
    assert seen == [], "the trap was never reached"
    for server in (trap, bouncer):
        server.close()
        await server.wait_closed()
