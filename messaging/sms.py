"""SMS to a patient's phone through a Kannel gateway: notices and sign-in codes.

Pli does not talk to SMS centres itself. Operators run an SMS gateway in front of theirs
(SMPP, UCP/EMI, CIMD…); Kannel (https://www.kannel.org, Debian's ``kannel``) is the
open-source one, and its smsbox *sendsms* HTTP interface is what many commercial gateways
imitate. :class:`KannelSmsSender` speaks it (Kannel 1.4 user guide, "Sending SMS"):
``GET /cgi-bin/sendsms?username=…&password=…&from=…&to=…&text=…&charset=UTF-8&coding=…``.

- ``coding=0`` (the GSM 03.38 7-bit alphabet, 160 characters a message) when every
  character is in it — ``é``, ``è`` and ``à`` are, ``ê`` and ``ç`` are not — and ``coding=2``
  (UCS-2, 70) otherwise, rather than let the gateway turn ``ç`` into ``Ç``; Kannel splits
  and concatenates longer texts (its ``sendsms-user`` ``concatenation``/``max-messages``).
- ``202`` with ``0: Accepted for delivery`` or ``3: Queued for later delivery`` means Kannel
  took the message (its store keeps queued ones across restarts); ``4xx`` is a refusal that
  retrying will not change (bad credentials, bad number); ``5xx``, timeouts and refused
  connections may pass later.
- The query string carries the gateway's password and the patient's number: neither the URL
  nor the body of an answer is ever put into an exception, a log line or a ``repr``. Over
  anything but loopback the gateway must be ``https`` (Kannel's ``ssl-server-cert-file``).

``urllib`` is blocking, so each request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import urllib.error
import urllib.parse
import urllib.request

from messaging.kinds.notification import Channel, Notice, check_phone, render_sms
from messaging.notices import NoticeNotSent
from messaging.signin_codes import SignInCode, render_code_sms

__all__ = ["KannelSmsSender", "check_gateway_url", "fits_gsm_alphabet"]

_MAX_ANSWER = 4096
# 3GPP TS 23.038 §6.2.1: the default alphabet and its extension table (sent as ESC + char).
_GSM_0338 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€\f"
)


def fits_gsm_alphabet(text: str) -> bool:
    """Whether ``text`` can go as GSM 7-bit without a character being changed."""
    return all(char in _GSM_0338 for char in text)


def check_gateway_url(url: str) -> str:
    """The gateway's URL, if it is usable: http(s), no credentials in it, https off loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the SMS gateway URL must be http(s)://host[:port]/path")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError("the SMS gateway URL takes no credentials, query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # The password and the patient's number travel in the query string.
        raise ValueError("the SMS gateway must be https unless it is on this machine")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # noqa: ARG002
        return None  # urllib then raises the 3xx as an HTTPError


class KannelSmsSender:
    """Sends SMS notices and sign-in codes through Kannel's sendsms interface."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        sender: str = "Pli",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._url = check_gateway_url(url)
        self._username = username
        self._password = password
        self._sender = sender
        self._timeout = timeout
        # No proxy from the environment and no redirect: either would carry the query string
        # (password, number) somewhere check_gateway_url never saw.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            _NoRedirect(),
            urllib.request.HTTPSHandler(context=ssl_context or ssl.create_default_context()),
        )

    def __repr__(self) -> str:  # never shows the password
        host = urllib.parse.urlsplit(self._url).netloc
        return f"KannelSmsSender(gateway={host!r}, username={self._username!r})"

    async def send(self, notice: Notice) -> None:
        if notice.channel is not Channel.SMS:
            raise NoticeNotSent("an SMS gateway sends SMS notices only", permanent=True)
        await self.send_text(notice.destination, render_sms(notice))

    async def send_code(self, code: SignInCode) -> None:
        if code.channel is not Channel.SMS:
            raise NoticeNotSent("an SMS gateway sends codes to phones only", permanent=True)
        await self.send_text(code.destination, render_code_sms(code))

    async def send_text(self, to: str, text: str) -> None:
        """One SMS (or one concatenated series) to an E.164 number."""
        await asyncio.to_thread(self._deliver, check_phone(to), text)

    def _request_url(self, to: str, text: str) -> str:
        query = urllib.parse.urlencode(
            {
                "username": self._username,
                "password": self._password,
                "from": self._sender,
                "to": to,
                "text": text,
                "charset": "UTF-8",
                "coding": "0" if fits_gsm_alphabet(text) else "2",
            }
        )
        return f"{self._url}?{query}"

    def _deliver(self, to: str, text: str) -> None:
        """One request; blocking, run in a worker thread. Errors are raised ``from None``:
        urllib's carry the URL, hence the password and the number."""
        request = urllib.request.Request(  # noqa: S310 - check_gateway_url allows http(s) only
            self._request_url(to, text), method="GET"
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                status = answer.status
                body = answer.read(_MAX_ANSWER).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection; left open, the socket leaks
            raise NoticeNotSent(
                f"the SMS gateway answered {exc.code}", permanent=400 <= exc.code < 500
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise NoticeNotSent(
                f"the SMS gateway could not be used: {type(exc).__name__}", permanent=False
            ) from None
        # Kannel answers 202 "<status>: <text>"; 0 = accepted, 3 = queued for later delivery.
        if status != 202 or not body.startswith(("0:", "3:")):
            raise NoticeNotSent(f"the SMS gateway answered {status}", permanent=False)
