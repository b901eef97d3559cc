"""One IMAP connection: the state machine and the commands.

RFC 3501 / RFC 9051 (states: not authenticated, authenticated, selected, logout; every
command), RFC 2177 (IDLE), RFC 4315 (UIDPLUS), RFC 6851 (MOVE), RFC 6154 (SPECIAL-USE),
RFC 5258 (LIST-EXTENDED), RFC 5819 (LIST-STATUS), RFC 7162 (CONDSTORE, QRESYNC),
RFC 5161 (ENABLE), RFC 2342 (NAMESPACE), RFC 2971 (ID), RFC 3691 (UNSELECT), RFC 7888
(LITERAL+), RFC 4731 (ESEARCH), RFC 3516 (BINARY), RFC 7889 (APPENDLIMIT), RFC 3348
(CHILDREN), RFC 4959 (SASL-IR), RFC 2595 / RFC 9051 §6.2.1 (STARTTLS, LOGINDISABLED),
RFC 5530 (response codes).

The session talks to the mailbox only through :class:`messaging.mailbox_session.MailboxSession`.
A command is read, answered and finished before the next is read. A malformed command gets
``BAD`` and the session goes on; an unexpected failure of one command gets
``NO [SERVERBUG]`` and the session goes on too. Changes made by other sessions (new
messages, flags, expunges) are reported on NOOP, CHECK, IDLE and after commands that may
change the selected folder, never in the middle of FETCH, STORE or SEARCH (RFC 3501 §7.4.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from gateway_imap import fetch as fetchmod
from gateway_imap import provenance, search
from gateway_imap.auth import Authenticator, LoginRefused, decode_plain
from gateway_imap.parser import (
    Atom,
    CommandReader,
    LineTooLong,
    LiteralRefused,
    ParseError,
    RawCommand,
    ReaderLimits,
    String,
    Token,
    tokenize,
)
from gateway_imap.responses import (
    InvalidMailboxName,
    astring,
    decode_mailbox,
    encode_mailbox,
)
from gateway_imap.sequence import SequenceSet, compress
from messaging.errors import (
    AlreadyExists,
    InvalidMessage,
    NotFound,
    PliError,
    RuleViolation,
    Unavailable,
)
from messaging.mailbox_session import MailboxSession
from messaging.ports import ChangeWatch
from messaging.types import FlagMode, FolderRecord, FolderRole, MessageRecord

__all__ = ["SessionSettings", "ImapSession", "capabilities"]

log = logging.getLogger("pli.imap")

DELIMITER = "/"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_SYSTEM_LOWER = {f.lower(): f for f in SYSTEM_FLAGS}
_KEYWORD_RE = re.compile(r"^[!#$&'+\-.0-9:<=>?@A-Z\[^_`a-z|~]{1,64}$")
_SPECIAL_USE = {
    FolderRole.SENT: "\\Sent",
    FolderRole.DRAFTS: "\\Drafts",
    FolderRole.TRASH: "\\Trash",
    FolderRole.ARCHIVE: "\\Archive",
    FolderRole.JUNK: "\\Junk",
}
_DATE_TIME_RE = re.compile(
    r"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$"
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WRITE_HIGH = 256 * 1024
_SEND_CHUNK = 64 * 1024
_OPEN_BATCH = 256
_OPEN_BATCH_BYTES = 4 * 1024 * 1024
"""A FETCH or SEARCH that needs content opens its messages in batches of at most this many
messages and encrypted bytes, one batch ahead of what it sends: one store read and a few
worker threads per batch, and the memory held bounded whatever the range."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    limits: ReaderLimits = field(default_factory=ReaderLimits)
    login_timeout: float = 60.0
    """Seconds a client may stay unauthenticated."""
    idle_timeout: float = 30 * 60.0
    """Seconds without a command (or in IDLE) before autologout (RFC 3501 §5.4: >= 30 min)."""
    allow_plaintext_login: bool = False
    """Only for tests of the refusal itself: LOGIN stays refused without TLS by default."""
    max_mailbox_name: int = 1024


def capabilities(*, tls: bool, authenticated: bool, append_limit: int) -> str:
    base = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE"]
    if not authenticated:
        if tls:
            return " ".join([*base, "AUTH=PLAIN"])
        return " ".join([*base, "STARTTLS", "LOGINDISABLED"])
    return " ".join(
        [
            *base,
            "IDLE",
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "CONDSTORE",
            "QRESYNC",
            "NAMESPACE",
            "UNSELECT",
            "ESEARCH",
            "BINARY",
            f"APPENDLIMIT={append_limit}",
            "CHILDREN",
        ]
    )


class _Bad(Exception):
    """A command that is syntactically wrong here: answered ``BAD``."""


class _No(Exception):
    """A command that cannot be done: answered ``NO`` with an optional response code."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


class _Close(Exception):
    """End the connection after what was written."""


@dataclass(slots=True)
class _Selected:
    name: str
    read_only: bool
    uidvalidity: int
    uids: list[int]
    modseq: int

    def seq_of(self, uid: int) -> int | None:
        import bisect  # noqa: PLC0415

        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None


def _flags(flags: frozenset[str] | Sequence[str]) -> bytes:
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    return ("(" + " ".join(ordered) + ")").encode("utf-8", "replace")


class ImapSession:
    """Serves one connection until LOGOUT, a timeout, a fatal error or the end of stream."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        authenticator: Authenticator,
        settings: SessionSettings,
        tls_context: ssl.SSLContext | None,
        tls_active: bool,
        append_limit: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._auth = authenticator
        self._settings = settings
        self._tls_context = tls_context
        self._tls = tls_active
        self._append_limit = append_limit
        self._commands = CommandReader(
            reader, _with_append(settings.limits, append_limit), self._continuation
        )
        peer = writer.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self._mailbox: MailboxSession | None = None
        self._selected: _Selected | None = None
        self._condstore = False
        self._qresync = False
        self._closing = False
        self._watcher: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()

    # -- output -----------------------------------------------------------------------

    async def _drain(self) -> None:
        """Wait for the client to read what was written, for at most the idle timeout: a
        client that stops reading cannot hold a session (and its output buffer) forever."""
        try:
            await asyncio.wait_for(self._writer.drain(), self._settings.idle_timeout)
        except TimeoutError:
            self._writer.transport.abort()
            raise ConnectionResetError("the client stopped reading") from None

    async def _continuation(self, data: bytes) -> None:
        self._writer.write(data)
        await self._drain()

    async def _send(self, data: bytes) -> None:
        self._writer.write(data)
        transport = self._writer.transport
        if transport.get_write_buffer_size() > _WRITE_HIGH:
            await self._drain()

    async def _untagged(self, data: bytes | str) -> None:
        payload = data.encode("utf-8") if isinstance(data, str) else data
        await self._send(b"* " + payload + b"\r\n")

    async def _tagged(self, tag: str, status: str, text: str, code: str | None = None) -> None:
        line = f"{tag} {status} " + (f"[{code}] " if code else "") + text + "\r\n"
        self._writer.write(line.encode("utf-8", "replace"))
        await self._drain()

    # -- main loop --------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._untagged(
                "OK [CAPABILITY "
                + capabilities(tls=self._tls, authenticated=False, append_limit=self._append_limit)
                + "] Pli IMAP ready"
            )
            await self._drain()
            loop = asyncio.get_running_loop()
            login_deadline = loop.time() + self._settings.login_timeout
            while not self._closing:
                timeout = self._settings.idle_timeout
                if self._mailbox is None:
                    timeout = min(timeout, max(0.0, login_deadline - loop.time()))
                try:
                    command = await asyncio.wait_for(self._commands.read(), timeout)
                except TimeoutError:
                    await self._untagged("BYE Autologout; idle for too long")
                    break
                except EOFError:
                    break
                except LineTooLong as exc:
                    await self._tagged(exc.tag, "BAD", "command line too long")
                    if exc.fatal:
                        await self._untagged("BYE too long a command with a literal")
                        break
                    continue
                except LiteralRefused as exc:
                    code = "TOOBIG" if self._mailbox is not None else "LIMIT"
                    await self._tagged(exc.tag, "BAD", str(exc), code)
                    if exc.fatal:
                        await self._untagged("BYE literal refused")
                        break
                    continue
                await self._dispatch(command)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._forget()
            with contextlib.suppress(Exception):
                self._writer.close()

    def _forget(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if self._mailbox is not None:
            self._mailbox.close()
            self._mailbox = None
        self._selected = None

    async def shutdown(self) -> None:
        """Say goodbye (server stopping); the connection ends."""
        self._closing = True
        with contextlib.suppress(Exception):
            self._writer.write(b"* BYE server shutting down\r\n")
            await asyncio.wait_for(self._writer.drain(), 1.0)
        self._forget()
        with contextlib.suppress(Exception):
            self._writer.close()

    async def _dispatch(self, command: RawCommand) -> None:
        tag = command.tag
        try:
            if tag == "*":
                raise _Bad("a command needs a tag")
            tokens = tokenize(command, self._settings.limits.max_depth)
            if not tokens or not isinstance(tokens[0], Atom):
                raise _Bad("a command needs a name")
            name = tokens[0].upper()
            args = tokens[1:]
            uid = False
            if name == "UID":
                if not args or not isinstance(args[0], Atom):
                    raise _Bad("UID needs a command")
                uid = True
                name = args[0].upper()
                args = args[1:]
                if name not in ("FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE"):
                    raise _Bad(f"UID {name[:20]} is not a command")
            handler = self._handler(name)
            await handler(tag, args, uid)
        except (ParseError, _Bad) as exc:
            await self._tagged(tag, "BAD", str(exc) or "syntax error")
        except _No as exc:
            await self._tagged(tag, "NO", str(exc), exc.code)
        except _Close:
            self._closing = True
        except InvalidMailboxName as exc:
            await self._tagged(tag, "NO", str(exc), "CANNOT")
        except Unavailable:
            await self._tagged(tag, "NO", "storage unavailable, try again", "UNAVAILABLE")
        except PliError as exc:
            await self._tagged(tag, "NO", type(exc).__name__, "CANNOT")
        except (ConnectionError, ssl.SSLError, EOFError):
            raise
        except Exception:
            log.exception("IMAP command failed", extra={"command": tag})
            await self._tagged(tag, "NO", "internal error", "SERVERBUG")

    def _handler(self, name: str) -> Callable[[str, list[Token], bool], Awaitable[None]]:
        anywhere = {
            "CAPABILITY": self._capability,
            "NOOP": self._noop,
            "LOGOUT": self._logout,
            "ID": self._id,
        }
        unauthenticated = {
            "STARTTLS": self._starttls,
            "LOGIN": self._login,
            "AUTHENTICATE": self._authenticate,
        }
        authenticated = {
            "ENABLE": self._enable,
            "SELECT": self._select,
            "EXAMINE": self._select,
            "CREATE": self._create,
            "DELETE": self._delete,
            "RENAME": self._rename,
            "SUBSCRIBE": self._subscribe,
            "UNSUBSCRIBE": self._subscribe,
            "LIST": self._list,
            "LSUB": self._lsub,
            "STATUS": self._status,
            "APPEND": self._append,
            "NAMESPACE": self._namespace,
            "IDLE": self._idle,
        }
        selected = {
            "CHECK": self._check,
            "CLOSE": self._close,
            "UNSELECT": self._unselect,
            "EXPUNGE": self._expunge,
            "SEARCH": self._search,
            "FETCH": self._fetch,
            "STORE": self._store,
            "COPY": self._copy,
            "MOVE": self._copy,
        }
        if name in anywhere:
            return anywhere[name]
        if name in unauthenticated:
            if self._mailbox is not None:
                raise _Bad(f"{name} is only valid before authentication")
            return unauthenticated[name]
        if name in authenticated:
            if self._mailbox is None:
                raise _Bad(f"{name} needs authentication")
            handler = authenticated[name]
            if name in ("SELECT", "EXAMINE"):
                return lambda tag, args, _uid: self._select(tag, args, name == "EXAMINE")
            if name in ("SUBSCRIBE", "UNSUBSCRIBE"):
                return lambda tag, args, _uid: self._subscribe(tag, args, name == "SUBSCRIBE")
            return handler
        if name in selected:
            if self._mailbox is None:
                raise _Bad(f"{name} needs authentication")
            if self._selected is None:
                raise _Bad(f"{name} needs a selected mailbox")
            if name == "MOVE":
                return lambda tag, args, uid: self._copy(tag, args, uid, move=True)
            return selected[name]
        raise _Bad(f"unknown command {name[:20]}")

    # -- any state --------------------------------------------------------------------

    async def _capability(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._untagged(
            "CAPABILITY "
            + capabilities(
                tls=self._tls,
                authenticated=self._mailbox is not None,
                append_limit=self._append_limit,
            )
        )
        await self._tagged(tag, "OK", "CAPABILITY completed")

    async def _noop(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._sync()
        await self._tagged(tag, "OK", "NOOP completed")

    async def _logout(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._untagged("BYE logging out")
        await self._tagged(tag, "OK", "LOGOUT completed")
        self._forget()
        raise _Close

    async def _id(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 1 or not (isinstance(args[0], list) or _is_nil(args[0])):
            raise _Bad("ID takes a parameter list or NIL")
        await self._untagged('ID ("name" "Pli" "vendor" "Pli")')
        await self._tagged(tag, "OK", "ID completed")

    # -- not authenticated ------------------------------------------------------------

    async def _starttls(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        if self._tls or self._tls_context is None:
            raise _Bad("TLS is already active" if self._tls else "STARTTLS is not available")
        # Anything the client sent after STARTTLS in clear is dropped, never read as a
        # command under TLS (the STARTTLS command injection of CVE-2011-0411's kind). It
        # is dropped *before* the OK goes out, and nothing yields to the event loop
        # between the OK and the switch: the client's TLS hello, sent as soon as it reads
        # the OK, must reach the TLS layer, not this plaintext buffer.
        self._reader._buffer.clear()  # type: ignore[attr-defined]  # noqa: SLF001
        self._writer.write(f"{tag} OK Begin TLS negotiation now\r\n".encode())
        await self._writer.start_tls(self._tls_context)
        self._tls = True

    def _require_tls(self) -> None:
        if not self._tls and not self._settings.allow_plaintext_login:
            raise _No("log in after STARTTLS (or on the implicit TLS port)", "PRIVACYREQUIRED")

    async def _login(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 2:
            raise _Bad("LOGIN takes a user name and a password")
        self._require_tls()
        user = _astring(args[0]).decode("utf-8", "replace")
        password = _astring(args[1]).decode("utf-8", "replace")
        await self._authenticated(tag, user, password)

    async def _authenticate(self, tag: str, args: list[Token], _uid: bool) -> None:
        if not args or not isinstance(args[0], Atom) or len(args) > 2:
            raise _Bad("AUTHENTICATE takes a mechanism and an optional initial response")
        if args[0].upper() != "PLAIN":
            raise _No("only the PLAIN mechanism is offered", "CANNOT")
        self._require_tls()
        if len(args) == 2:
            response = _astring(args[1])
            if response == b"=":
                response = b""
        else:
            await self._continuation(b"+ \r\n")
            line = await asyncio.wait_for(
                self._reader.readuntil(b"\n"), self._settings.login_timeout
            )
            if len(line) > self._settings.limits.max_literal_unauthenticated:
                raise _Bad("authentication response too long")
            response = line.rstrip(b"\r\n")
            if response == b"*":
                raise _Bad("authentication cancelled")
        decoded = decode_plain(response)
        if decoded is None:
            raise _Bad("malformed PLAIN response")
        await self._authenticated(tag, *decoded)

    async def _authenticated(self, tag: str, user: str, password: str) -> None:
        try:
            mailbox = await self._auth.login(user, password, self._client)
        except LoginRefused as exc:
            raise _No(str(exc), exc.code) from None
        self._mailbox = mailbox
        self._commands.authenticated = True
        caps = capabilities(tls=self._tls, authenticated=True, append_limit=self._append_limit)
        await self._tagged(tag, "OK", "logged in", "CAPABILITY " + caps)

    # -- authenticated ----------------------------------------------------------------

    @property
    def _mbox(self) -> MailboxSession:
        assert self._mailbox is not None  # noqa: S101 - _handler checked the state
        return self._mailbox

    async def _enable(self, tag: str, args: list[Token], _uid: bool) -> None:
        if not args:
            raise _Bad("ENABLE needs capabilities")
        enabled = []
        for token in args:
            if not isinstance(token, Atom):
                raise _Bad("ENABLE takes atoms")
            name = token.upper()
            if name == "CONDSTORE" and not self._condstore:
                self._condstore = True
                enabled.append(name)
            elif name == "QRESYNC" and not self._qresync:
                self._qresync = True
                if not self._condstore:
                    self._condstore = True
                enabled.append(name)
        await self._untagged("ENABLED" + "".join(" " + e for e in enabled))
        await self._tagged(tag, "OK", "ENABLE completed")

    async def _namespace(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._untagged('NAMESPACE (("" "/")) NIL NIL')
        await self._tagged(tag, "OK", "NAMESPACE completed")

    def _mailbox_name(self, token: Token) -> str:
        raw = _astring(token)
        if len(raw) > self._settings.max_mailbox_name:
            raise _No("mailbox name too long", "CANNOT")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidMailboxName("mailbox names are 7-bit (modified UTF-7)") from None
        name = decode_mailbox(text)
        if name.upper() == "INBOX" or name.upper().startswith("INBOX" + DELIMITER):
            name = "INBOX" + name[5:]
        return name

    async def _status_record(self, name: str) -> FolderRecord:
        try:
            return await self._mbox.status(name)
        except NotFound:
            raise _No(f"no mailbox {encode_mailbox(name)}", "NONEXISTENT") from None

    async def _select(self, tag: str, args: list[Token], read_only: bool) -> None:
        if not args or len(args) > 2:
            raise _Bad("SELECT takes a mailbox name and optional parameters")
        self._selected = None
        name = self._mailbox_name(args[0])
        qresync: list[Token] | None = None
        if len(args) == 2:
            params = args[1]
            if not isinstance(params, list):
                raise _Bad("SELECT parameters are a list")
            i = 0
            while i < len(params):
                param = params[i]
                if isinstance(param, Atom) and param.upper() == "CONDSTORE":
                    self._condstore = True
                elif isinstance(param, Atom) and param.upper() == "QRESYNC":
                    if not self._qresync:
                        raise _Bad("QRESYNC must be enabled first")
                    if i + 1 >= len(params) or not isinstance(params[i + 1], list):
                        raise _Bad("QRESYNC takes a parameter list")
                    value = params[i + 1]
                    assert isinstance(value, list)  # noqa: S101
                    qresync = value
                    i += 1
                else:
                    raise _Bad("unknown SELECT parameter")
                i += 1
        await self._start_watching()
        record = await self._status_record(name)
        self._changed.clear()
        records = await self._mbox.records(name)
        uids = [r.uid for r in records]
        selected = _Selected(name, read_only, record.uidvalidity, uids, record.highestmodseq)
        await self._untagged("FLAGS (" + " ".join(SYSTEM_FLAGS) + ")")
        permanent = "" if read_only else " ".join(SYSTEM_FLAGS) + " \\*"
        await self._untagged(f"OK [PERMANENTFLAGS ({permanent})] flags permitted")
        await self._untagged(f"{len(uids)} EXISTS")
        await self._untagged("0 RECENT")
        unseen = next((i for i, r in enumerate(records, 1) if "\\Seen" not in r.flags), None)
        if unseen is not None:
            await self._untagged(f"OK [UNSEEN {unseen}] first unseen")
        await self._untagged(f"OK [UIDVALIDITY {record.uidvalidity}] UIDs valid")
        await self._untagged(f"OK [UIDNEXT {record.uidnext}] predicted next UID")
        await self._untagged(f"OK [HIGHESTMODSEQ {record.highestmodseq}] highest")
        if qresync is not None:
            await self._qresync_select(selected, qresync)
        self._selected = selected
        access = "READ-ONLY" if read_only else "READ-WRITE"
        await self._tagged(tag, "OK", "SELECT completed", access)

    async def _qresync_select(self, selected: _Selected, params: list[Token]) -> None:
        if len(params) < 2:
            raise _Bad("QRESYNC needs a UIDVALIDITY and a mod-sequence")
        uidvalidity = _number(params[0])
        modseq = _number(params[1])
        if uidvalidity != selected.uidvalidity:
            return
        known: SequenceSet | None = None
        if len(params) >= 3 and isinstance(params[2], Atom):
            known = SequenceSet.parse(params[2].text)
        changes = await self._mbox.changes_since(selected.name, modseq)
        vanished = changes.vanished
        if known is not None:
            vanished = [u for u in vanished if known.contains(u, 2**32 - 1)]
        if vanished:
            await self._untagged("VANISHED (EARLIER) " + compress(vanished))
        for record in changes.records:
            seq = selected.seq_of(record.uid)
            if seq is None:
                continue
            await self._untagged(
                f"{seq} FETCH (UID {record.uid} FLAGS ".encode()
                + _flags(record.flags)
                + f" MODSEQ ({record.modseq}))".encode()
            )

    async def _create(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 1:
            raise _Bad("CREATE takes a mailbox name")
        name = self._mailbox_name(args[0]).rstrip(DELIMITER)
        _check_new_name(name)
        try:
            await self._mbox.create_folder(name)
        except AlreadyExists:
            raise _No("that mailbox exists already", "ALREADYEXISTS") from None
        except InvalidMessage as exc:
            raise _No(str(exc), "CANNOT") from None
        await self._tagged(tag, "OK", "CREATE completed")

    async def _delete(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 1:
            raise _Bad("DELETE takes a mailbox name")
        name = self._mailbox_name(args[0])
        try:
            await self._mbox.delete_folder(name)
        except NotFound:
            raise _No("no such mailbox", "NONEXISTENT") from None
        except RuleViolation as exc:
            raise _No(str(exc), "CANNOT") from None
        if self._selected is not None and self._selected.name == name:
            self._selected = None
        await self._tagged(tag, "OK", "DELETE completed")

    async def _rename(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 2:
            raise _Bad("RENAME takes two mailbox names")
        old = self._mailbox_name(args[0])
        new = self._mailbox_name(args[1]).rstrip(DELIMITER)
        _check_new_name(new)
        try:
            await self._mbox.rename_folder(old, new)
        except NotFound:
            raise _No("no such mailbox", "NONEXISTENT") from None
        except AlreadyExists:
            raise _No("the new name exists already", "ALREADYEXISTS") from None
        except (RuleViolation, InvalidMessage) as exc:
            raise _No(str(exc), "CANNOT") from None
        await self._tagged(tag, "OK", "RENAME completed")

    async def _subscribe(self, tag: str, args: list[Token], subscribe: bool) -> None:
        if len(args) != 1:
            raise _Bad("SUBSCRIBE takes a mailbox name")
        name = self._mailbox_name(args[0])
        try:
            await self._mbox.set_subscribed(name, subscribe)
        except NotFound:
            raise _No("no such mailbox", "NONEXISTENT") from None
        await self._tagged(tag, "OK", "completed")

    async def _list(self, tag: str, args: list[Token], _uid: bool) -> None:
        selection: set[str] = set()
        returns: set[str] = set()
        status_items: list[str] = []
        if args and isinstance(args[0], list):
            for selector in args[0]:
                selection.add(_atom(selector).upper())
            args = args[1:]
            unknown = selection - {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
            if unknown or selection == {"RECURSIVEMATCH"}:
                raise _Bad("unknown LIST selection option")
        if len(args) >= 4 and isinstance(args[-2], Atom) and args[-2].upper() == "RETURN":
            options = args[-1]
            if not isinstance(options, list):
                raise _Bad("RETURN takes a list")
            i = 0
            while i < len(options):
                option = _atom(options[i]).upper()
                returns.add(option)
                if option == "STATUS":
                    if i + 1 >= len(options) or not isinstance(options[i + 1], list):
                        raise _Bad("STATUS takes a list")
                    listed_items = options[i + 1]
                    assert isinstance(listed_items, list)  # noqa: S101 - checked above
                    status_items = [_atom(t).upper() for t in listed_items]
                    _check_status_items(status_items)
                    i += 1
                elif option not in ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"):
                    raise _Bad("unknown LIST return option")
                i += 1
            args = args[:-2]
        if len(args) != 2:
            raise _Bad("LIST takes a reference and a mailbox pattern")
        reference = decode_mailbox(_astring(args[0]).decode("ascii", "replace"))
        if isinstance(args[1], list):
            patterns = [_astring(t).decode("ascii", "replace") for t in args[1]]
        else:
            patterns = [_astring(args[1]).decode("ascii", "replace")]
        patterns = [decode_mailbox(p) for p in patterns]
        if patterns == [""] and not selection:
            await self._untagged(f'LIST (\\Noselect) "{DELIMITER}" ""')
            await self._tagged(tag, "OK", "LIST completed")
            return
        folders = await self._mbox.folders()
        subscribed = (
            set(await self._mbox.subscriptions())
            if ("SUBSCRIBED" in selection or "SUBSCRIBED" in returns)
            else set()
        )
        by_name = {f.name: f for f in folders}
        names = set(by_name)
        if "SUBSCRIBED" in selection:
            names = set(subscribed)
        matchers = [_pattern(reference + p) for p in patterns]
        listed: list[str] = []
        for name in sorted(names | _parents(names), key=_sort_key):
            if not any(m.match(name) for m in matchers):
                continue
            listed.append(name)
        all_names = set(by_name)
        for name in listed:
            attributes: list[str] = []
            folder = by_name.get(name)
            if "SUBSCRIBED" in selection:
                if name not in subscribed:
                    continue
                if folder is None:
                    attributes.append("\\NonExistent")
            elif folder is None:
                attributes.append("\\Noselect")
            has_children = any(n.startswith(name + DELIMITER) for n in all_names)
            attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
            role = folder.role if folder is not None else None
            if role is not None and role in _SPECIAL_USE:
                attributes.append(_SPECIAL_USE[role])
            elif "SPECIAL-USE" in selection:
                continue
            if name in subscribed and ("SUBSCRIBED" in returns or "SUBSCRIBED" in selection):
                attributes.append("\\Subscribed")
            line = (
                b"LIST ("
                + " ".join(attributes).encode()
                + b') "/" '
                + astring(encode_mailbox(name))
            )
            await self._untagged(line)
            if status_items and folder is not None:
                await self._status_line(name, status_items)
        await self._tagged(tag, "OK", "LIST completed")

    async def _lsub(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 2:
            raise _Bad("LSUB takes a reference and a mailbox pattern")
        reference = decode_mailbox(_astring(args[0]).decode("ascii", "replace"))
        pattern = decode_mailbox(_astring(args[1]).decode("ascii", "replace"))
        matcher = _pattern(reference + pattern)
        existing = {f.name for f in await self._mbox.folders()}
        for name in sorted(await self._mbox.subscriptions(), key=_sort_key):
            if matcher.match(name):
                attrs = "" if name in existing else "\\Noselect"
                await self._untagged(
                    f'LSUB ({attrs}) "/" '.encode() + astring(encode_mailbox(name))
                )
        await self._tagged(tag, "OK", "LSUB completed")

    async def _status(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) != 2 or not isinstance(args[1], list) or not args[1]:
            raise _Bad("STATUS takes a mailbox name and a list of items")
        name = self._mailbox_name(args[0])
        items = [_atom(t).upper() for t in args[1]]
        _check_status_items(items)
        await self._status_line(name, items)
        await self._tagged(tag, "OK", "STATUS completed")

    async def _status_line(self, name: str, items: list[str]) -> None:
        record = await self._status_record(name)
        values = {
            "MESSAGES": record.messages,
            "RECENT": 0,
            "UIDNEXT": record.uidnext,
            "UIDVALIDITY": record.uidvalidity,
            "UNSEEN": record.unseen,
            "HIGHESTMODSEQ": record.highestmodseq,
            "APPENDLIMIT": self._append_limit,
        }
        if "SIZE" in items:
            values["SIZE"] = sum(provenance.served_size(r) for r in await self._mbox.records(name))
        body = " ".join(f"{item} {values[item]}" for item in items)
        await self._untagged(b"STATUS " + astring(encode_mailbox(name)) + f" ({body})".encode())

    async def _append(self, tag: str, args: list[Token], _uid: bool) -> None:
        if len(args) < 2 or len(args) > 4:
            raise _Bad("APPEND takes a mailbox, optional flags and date, and a message")
        name = self._mailbox_name(args[0])
        message = args[-1]
        if not isinstance(message, String) or not message.literal:
            raise _Bad("the message of APPEND is a literal")
        flags: frozenset[str] = frozenset()
        when: datetime | None = None
        for extra in args[1:-1]:
            if isinstance(extra, list):
                flags = _parse_flags(extra)
            elif isinstance(extra, String):
                when = _parse_date_time(extra.value.decode("ascii", "replace"))
            else:
                raise _Bad("APPEND: flags are a list, the date a quoted string")
        if len(message.value) > self._append_limit:
            raise _No("message larger than APPENDLIMIT", "TOOBIG")
        try:
            status = await self._mbox.status(name)
            placed = await self._mbox.append(name, message.value, flags=flags, internal_date=when)
        except NotFound:
            raise _No("no such mailbox", "TRYCREATE") from None
        except InvalidMessage as exc:
            raise _No(str(exc), "TOOBIG" if "large" in str(exc) else "CANNOT") from None
        if self._selected is not None and self._selected.name == name:
            await self._sync(force=True)
        await self._tagged(
            tag, "OK", "APPEND completed", f"APPENDUID {status.uidvalidity} {placed.uid}"
        )

    async def _idle(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._start_watching()
        await self._continuation(b"+ idling\r\n")
        done_task: asyncio.Task[bytes] = asyncio.ensure_future(self._reader.readuntil(b"\n"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.idle_timeout
        try:
            await self._sync(force=True)
            await self._drain()
            while True:
                changed = asyncio.ensure_future(self._changed.wait())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    changed.cancel()
                    await self._untagged("BYE Autologout; idle for too long")
                    await self._drain()
                    raise _Close
                finished, _ = await asyncio.wait(
                    {done_task, changed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not changed.done():
                    changed.cancel()
                if done_task in finished:
                    line = done_task.result()
                    if line.rstrip(b"\r\n").upper() != b"DONE":
                        raise _Bad("expected DONE")
                    break
                if changed in finished:
                    await self._sync()
                    await self._drain()
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            raise _Close from None
        finally:
            if not done_task.done():
                done_task.cancel()
        await self._tagged(tag, "OK", "IDLE terminated")

    async def _start_watching(self) -> None:
        """Follow the account's change hints (other sessions, other processes) from now on.

        One watch for the whole session, ready before the caller reads the state it will
        compare against: no change committed in between can be missed.
        """
        if self._watcher is None or self._watcher.done():
            watch = self._mbox.watch()
            await watch.ready()
            self._watcher = asyncio.ensure_future(self._watch(watch))

    async def _watch(self, watch: ChangeWatch) -> None:
        try:
            async for folder in watch:
                selected = self._selected
                if selected is not None and folder in ("*", selected.name):
                    self._changed.set()
        finally:
            with contextlib.suppress(Exception):
                await watch.aclose()

    # -- selected ---------------------------------------------------------------------

    @property
    def _sel(self) -> _Selected:
        assert self._selected is not None  # noqa: S101 - _handler checked the state
        return self._selected

    async def _sync(self, *, force: bool = False) -> None:
        """Report what changed in the selected folder since we last looked.

        Without ``force``, the store is only asked when the change feed said the folder
        changed: a NOOP loop costs no query.
        """
        selected = self._selected
        if selected is None or self._mailbox is None:
            return
        watching = self._watcher is not None and not self._watcher.done()
        if not force and watching and not self._changed.is_set():
            return
        self._changed.clear()
        changes = await self._mbox.changes_since(selected.name, selected.modseq)
        if changes.uidvalidity != selected.uidvalidity:
            await self._untagged("BYE the selected mailbox was deleted or replaced")
            raise _Close
        known = set(selected.uids)
        gone = [u for u in changes.vanished if u in known]
        await self._report_expunged(gone)
        largest = selected.uids[-1] if selected.uids else 0
        fresh = [r.uid for r in changes.records if r.uid > largest]
        if fresh:
            selected.uids.extend(fresh)
            await self._untagged(f"{len(selected.uids)} EXISTS")
        for record in changes.records:
            if record.uid in known and record.uid not in gone:
                seq = selected.seq_of(record.uid)
                if seq is not None:
                    await self._untagged(self._flag_fetch(seq, record, with_uid=True))
        selected.modseq = max(selected.modseq, changes.highestmodseq)

    async def _report_expunged(self, uids: Sequence[int]) -> None:
        selected = self._sel
        gone = sorted(set(uids) & set(selected.uids))
        if not gone:
            return
        if self._qresync:
            await self._untagged("VANISHED " + compress(gone))
            removed = set(gone)
            selected.uids = [u for u in selected.uids if u not in removed]
            return
        for uid in reversed(gone):
            seq = selected.seq_of(uid)
            if seq is None:
                continue
            del selected.uids[seq - 1]
            await self._untagged(f"{seq} EXPUNGE")

    def _flag_fetch(self, seq: int, record: MessageRecord, *, with_uid: bool) -> bytes:
        out = f"{seq} FETCH (".encode()
        if with_uid:
            out += f"UID {record.uid} ".encode()
        out += b"FLAGS " + _flags(record.flags)
        if self._condstore:
            out += f" MODSEQ ({record.modseq})".encode()
        return out + b")"

    async def _check(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        await self._sync(force=True)
        await self._tagged(tag, "OK", "CHECK completed")

    async def _close(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        selected = self._sel
        if not selected.read_only:
            with contextlib.suppress(NotFound):
                await self._mbox.expunge(selected.name)
        self._selected = None
        await self._tagged(tag, "OK", "CLOSE completed")

    async def _unselect(self, tag: str, args: list[Token], _uid: bool) -> None:
        _no_args(args)
        self._selected = None
        await self._tagged(tag, "OK", "UNSELECT completed")

    def _writable(self) -> _Selected:
        selected = self._sel
        if selected.read_only:
            raise _No("the mailbox is read-only (EXAMINE)", "READ-ONLY")
        return selected

    def _uids_of(self, text: str, uid: bool) -> list[int]:
        selected = self._sel
        seqset = SequenceSet.parse(text)
        if uid:
            largest = selected.uids[-1] if selected.uids else 0
            return seqset.select(selected.uids, largest)
        count = len(selected.uids)
        bounds = seqset.bounds(count)
        if any(hi > count or lo < 1 for lo, hi in bounds):
            raise _Bad("invalid message sequence number")
        chosen: set[int] = set()
        for lo, hi in bounds:
            chosen.update(range(lo, hi + 1))
        return [selected.uids[s - 1] for s in sorted(chosen)]

    async def _expunge(self, tag: str, args: list[Token], uid: bool) -> None:
        selected = self._writable()
        only: list[int] | None = None
        if uid:
            if len(args) != 1:
                raise _Bad("UID EXPUNGE takes a UID set")
            only = self._uids_of(_atom(args[0]), True)
        else:
            _no_args(args)
        await self._sync()
        removed = await self._mbox.expunge(selected.name, only)
        await self._report_expunged(removed)
        record = await self._mbox.status(selected.name)
        await self._tagged(tag, "OK", "EXPUNGE completed", f"HIGHESTMODSEQ {record.highestmodseq}")

    async def _search(self, tag: str, args: list[Token], uid: bool) -> None:
        selected = self._sel
        returns: list[str] | None = None
        if len(args) >= 2 and isinstance(args[0], Atom) and args[0].upper() == "RETURN":
            if not isinstance(args[1], list):
                raise _Bad("RETURN takes a list")
            returns = [_atom(t).upper() for t in args[1]]
            if set(returns) - {"MIN", "MAX", "COUNT", "ALL"}:
                raise _Bad("unknown SEARCH RETURN option")
            args = args[2:]
        try:
            key, _charset = search.parse_search(args)
        except search.BadCharset:
            raise _No("unsupported charset", "BADCHARSET (UTF-8 US-ASCII)") from None
        records = await self._mbox.fetch_records(selected.name, selected.uids)
        by_uid = {r.uid: r for r in records}
        content = search.needs_content(key)
        largest_uid = selected.uids[-1] if selected.uids else 0
        found: list[tuple[int, int, int]] = []
        contents: dict[int, fetchmod.ServedMessage | None] = {}
        for seq, message_uid in enumerate(selected.uids, 1):
            record = by_uid.get(message_uid)
            if record is None:
                continue
            if content and message_uid not in contents:
                contents.clear()  # one batch held at a time
                upcoming = [by_uid[u] for u in selected.uids[seq - 1 :] if u in by_uid]
                batch = _open_batches(upcoming)[0]
                contents.update(
                    zip([r.uid for r in batch], await self._served_batch(batch), strict=True)
                )
            candidate = search.Candidate(
                seq=seq,
                uid=message_uid,
                flags=record.flags,
                internal_date=record.internal_date,
                size=provenance.served_size(record),
                modseq=record.modseq,
                largest_seq=len(selected.uids),
                largest_uid=largest_uid,
            )
            if content:
                served = contents.get(message_uid)
                if served is None:
                    continue
                candidate.message = served
            if search.matches(key, candidate):
                found.append((seq, message_uid, record.modseq))
        numbers = [u if uid else s for s, u, _ in found]
        uses_modseq = _uses_modseq(key)
        if returns is not None:
            parts = [f'(TAG "{tag}")'] + (["UID"] if uid else [])
            wanted = set(returns) or {"ALL"}
            if numbers:
                if "MIN" in wanted:
                    parts.append(f"MIN {min(numbers)}")
                if "MAX" in wanted:
                    parts.append(f"MAX {max(numbers)}")
                if "ALL" in wanted:
                    parts.append(f"ALL {compress(numbers)}")
            if "COUNT" in wanted:
                parts.append(f"COUNT {len(numbers)}")
            if uses_modseq and found:
                parts.append(f"MODSEQ {max(m for _, _, m in found)}")
            await self._untagged("ESEARCH " + " ".join(parts))
        else:
            line = "SEARCH" + "".join(f" {n}" for n in numbers)
            if uses_modseq and found:
                line += f" (MODSEQ {max(m for _, _, m in found)})"
            await self._untagged(line)
        await self._tagged(tag, "OK", "SEARCH completed")

    async def _served_batch(
        self, records: list[MessageRecord]
    ) -> list[fetchmod.ServedMessage | None]:
        """The messages of ``records`` as served (provenance header added); None: gone."""
        opened = await self._mbox.open_batch(records)
        return [
            None
            if o is None
            else fetchmod.ServedMessage(
                provenance.serve(o.raw, o.provenance, o.signature, r.sender, o.gateway_peer)
            )
            for r, o in zip(records, opened, strict=True)
        ]

    async def _fetch(self, tag: str, args: list[Token], uid: bool) -> None:
        selected = self._sel
        if len(args) not in (2, 3):
            raise _Bad("FETCH takes a sequence set, attributes and optional modifiers")
        uids = self._uids_of(_atom(args[0]), uid)
        items = fetchmod.parse_items(args[1])
        changed_since: int | None = None
        vanished = False
        if len(args) == 3:
            modifiers = args[2]
            if not isinstance(modifiers, list):
                raise _Bad("FETCH modifiers are a list")
            i = 0
            while i < len(modifiers):
                option = _atom(modifiers[i]).upper()
                if option == "CHANGEDSINCE" and i + 1 < len(modifiers):
                    changed_since = _number(modifiers[i + 1])
                    i += 2
                elif option == "VANISHED" and uid and self._qresync:
                    vanished = True
                    i += 1
                else:
                    raise _Bad("unknown FETCH modifier")
            if vanished and changed_since is None:
                raise _Bad("VANISHED needs CHANGEDSINCE")
            self._condstore = True
        if vanished and changed_since is not None:
            changes = await self._mbox.changes_since(selected.name, changed_since)
            wanted = (
                set(
                    SequenceSet.parse(_atom(args[0])).select(
                        sorted(changes.vanished), changes.vanished[-1] if changes.vanished else 0
                    )
                )
                if changes.vanished
                else set()
            )
            if wanted:
                await self._untagged("VANISHED (EARLIER) " + compress(wanted))
        records = await self._mbox.fetch_records(selected.name, uids) if uids else []
        if changed_since is not None:
            records = [r for r in records if r.modseq > changed_since]
        if (
            fetchmod.marks_seen(items)
            and not selected.read_only
            and any("\\Seen" not in r.flags for r in records)
        ):
            unseen = [r.uid for r in records if "\\Seen" not in r.flags]
            update = await self._mbox.update_flags(
                selected.name, unseen, FlagMode.ADD, frozenset({"\\Seen"})
            )
            updated = {r.uid: r for r in update.updated}
            records = [updated.get(r.uid, r) for r in records]
            if not any(i.name == "FLAGS" for i in items):
                items = [*items, fetchmod.FetchItem("FLAGS", label=b"FLAGS")]
        want_modseq = changed_since is not None or (
            self._condstore and any(i.name == "FLAGS" for i in items)
        )
        if want_modseq and not any(i.name == "MODSEQ" for i in items):
            items = [*items, fetchmod.FetchItem("MODSEQ", label=b"MODSEQ")]
        content = fetchmod.needs_content(items)
        failure: fetchmod.FetchFailed | None = None
        batches = _open_batches(records) if content else [records]
        ahead: asyncio.Future[list[fetchmod.ServedMessage | None]] | None = None
        out: list[bytes] = []  # FETCH responses written together: one TLS record and
        out_size = 0  # one send for many small ones, not one each
        try:
            for number, batch in enumerate(batches):
                served_batch: list[fetchmod.ServedMessage | None] | None = None
                if content:
                    # Open the next batch while this one is rendered and sent, so that
                    # reading the store and decrypting overlap with the client's reading.
                    served_batch = await (ahead or self._served_batch(batch))
                    ahead = None
                    if number + 1 < len(batches):
                        ahead = asyncio.ensure_future(self._served_batch(batches[number + 1]))
                for index, record in enumerate(batch):
                    seq = selected.seq_of(record.uid)
                    if seq is None:
                        continue
                    served = served_batch[index] if served_batch is not None else None
                    if content and served is None:
                        continue
                    parts: list[bytes] = []
                    if uid and not any(i.name == "UID" for i in items):
                        parts.append(b"UID %d" % record.uid)
                    try:
                        for item in items:
                            parts.append(
                                _metadata_item(item, record)
                                if served is None or item.name in fetchmod.METADATA
                                else fetchmod.render_content(item, served)
                            )
                    except fetchmod.FetchFailed as exc:
                        failure = exc
                        continue
                    out.append(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
                    out_size += len(out[-1])
                    if out_size >= _SEND_CHUNK:
                        await self._send(b"".join(out))
                        out, out_size = [], 0
                if out:  # what this batch rendered goes out before the next is awaited
                    await self._send(b"".join(out))
                    out, out_size = [], 0
        finally:
            if ahead is not None:
                ahead.cancel()
        if failure is not None:
            raise _No(str(failure), failure.code)
        await self._tagged(tag, "OK", "FETCH completed")

    async def _store(self, tag: str, args: list[Token], uid: bool) -> None:
        selected = self._writable()
        if len(args) < 3:
            raise _Bad("STORE takes a sequence set, an action and flags")
        uids = self._uids_of(_atom(args[0]), uid)
        rest = args[1:]
        unchanged_since: int | None = None
        if isinstance(rest[0], list):
            modifier = rest[0]
            if len(modifier) != 2 or _atom(modifier[0]).upper() != "UNCHANGEDSINCE":
                raise _Bad("unknown STORE modifier")
            unchanged_since = _number(modifier[1])
            self._condstore = True
            rest = rest[1:]
        if len(rest) < 2:
            raise _Bad("STORE takes an action and flags")
        action = _atom(rest[0]).upper()
        modes = {"FLAGS": FlagMode.REPLACE, "+FLAGS": FlagMode.ADD, "-FLAGS": FlagMode.REMOVE}
        silent = action.endswith(".SILENT")
        base = action.removesuffix(".SILENT")
        if base not in modes:
            raise _Bad("STORE action is FLAGS, +FLAGS or -FLAGS (.SILENT)")
        flag_tokens = rest[1] if len(rest) == 2 and isinstance(rest[1], list) else rest[1:]
        if not isinstance(flag_tokens, list):
            raise _Bad("invalid flags")
        flags = _parse_flags(flag_tokens)
        update = await self._mbox.update_flags(
            selected.name, uids, modes[base], flags, unchanged_since=unchanged_since
        )
        for record in update.updated:
            seq = selected.seq_of(record.uid)
            if seq is None:
                continue
            if silent and unchanged_since is None:
                continue
            if silent:
                await self._untagged(f"{seq} FETCH (UID {record.uid} MODSEQ ({record.modseq}))")
                continue
            await self._untagged(self._flag_fetch(seq, record, with_uid=uid))
        if update.failed:
            numbers = (
                update.failed
                if uid
                else [s for s in (selected.seq_of(u) for u in update.failed) if s is not None]
            )
            await self._tagged(
                tag, "OK", "conditional STORE failed", f"MODIFIED {compress(numbers)}"
            )
            return
        await self._tagged(tag, "OK", "STORE completed")

    async def _copy(self, tag: str, args: list[Token], uid: bool, *, move: bool = False) -> None:
        selected = self._writable() if move else self._sel
        if len(args) != 2:
            raise _Bad("COPY takes a sequence set and a mailbox name")
        uids = self._uids_of(_atom(args[0]), uid)
        target = self._mailbox_name(args[1])
        try:
            target_status = await self._mbox.status(target)
        except NotFound:
            raise _No("no such mailbox", "TRYCREATE") from None
        if not uids:
            await self._tagged(tag, "OK", "nothing to do")
            return
        try:
            if move:
                pairs = await self._mbox.move(selected.name, uids, target)
            else:
                pairs = await self._mbox.copy(selected.name, uids, target)
        except NotFound:
            raise _No("no such mailbox", "TRYCREATE") from None
        code = None
        if pairs:
            code = (
                f"COPYUID {target_status.uidvalidity} "
                f"{','.join(str(s) for s, _ in pairs)} {','.join(str(d) for _, d in pairs)}"
            )
        if move:
            if code:
                await self._untagged(f"OK [{code}] moved")
            await self._report_expunged([s for s, _ in pairs])
            await self._tagged(tag, "OK", "MOVE completed")
            return
        await self._tagged(tag, "OK", "COPY completed", code)


# -- helpers ------------------------------------------------------------------------------


def _with_append(limits: ReaderLimits, append_limit: int) -> ReaderLimits:
    from dataclasses import replace  # noqa: PLC0415

    return replace(limits, max_append=append_limit)


def _no_args(args: list[Token]) -> None:
    if args:
        raise _Bad("this command takes no arguments")


def _is_nil(token: Token) -> bool:
    return isinstance(token, Atom) and token.upper() == "NIL"


def _astring(token: Token) -> bytes:
    if isinstance(token, String):
        return token.value
    if isinstance(token, Atom):
        return token.text.encode("ascii")
    raise _Bad("expected a string")


def _atom(token: Token) -> str:
    if not isinstance(token, Atom):
        raise _Bad("expected an atom")
    return token.text


def _number(token: Token) -> int:
    text = _atom(token)
    if not text.isdigit() or len(text) > 20:
        raise _Bad("expected a number")
    return int(text)


def _parse_flags(tokens: Sequence[Token]) -> frozenset[str]:
    flags: set[str] = set()
    for token in tokens:
        text = _atom(token)
        if text.startswith("\\"):
            system = _SYSTEM_LOWER.get(text.lower())
            if system is None:
                raise _Bad(f"{text[:20]} is not a flag that can be stored")
            flags.add(system)
        elif _KEYWORD_RE.match(text):
            flags.add(text)
        else:
            raise _Bad("invalid keyword")
    return frozenset(flags)


def _parse_date_time(text: str) -> datetime:
    match = _DATE_TIME_RE.match(text)
    if match is None or match.group(2).lower() not in _MONTHS:
        raise _Bad("invalid date-time")
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    offset = timedelta(hours=int(zh), minutes=int(zm))
    try:
        return datetime(
            int(year),
            _MONTHS.index(month.lower()) + 1,
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone(offset if sign == "+" else -offset),
        )
    except ValueError:
        raise _Bad("invalid date-time") from None


def _metadata_item(item: fetchmod.FetchItem, record: MessageRecord) -> bytes:
    if item.name == "UID":
        return b"UID %d" % record.uid
    if item.name == "FLAGS":
        return b"FLAGS " + _flags(record.flags)
    if item.name == "INTERNALDATE":
        return b"INTERNALDATE " + fetchmod.format_internal_date(record.internal_date)
    if item.name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % provenance.served_size(record)
    if item.name == "MODSEQ":
        return b"MODSEQ (%d)" % record.modseq
    raise AssertionError(item.name)


def _check_status_items(items: list[str]) -> None:
    known = {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "HIGHESTMODSEQ",
        "SIZE",
        "APPENDLIMIT",
    }
    if not items or set(items) - known:
        raise _Bad("unknown STATUS item")


def _check_new_name(name: str) -> None:
    if not name or any(not part for part in name.split(DELIMITER)):
        raise _No("empty hierarchy level in a mailbox name", "CANNOT")
    if any(c in name for c in "*%") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise _No("wildcards and control characters are not allowed in names", "CANNOT")


def _pattern(pattern: str) -> re.Pattern[str]:
    regex = ""
    for char in pattern:
        if char == "*":
            regex += ".*"
        elif char == "%":
            regex += "[^/]*"
        else:
            regex += re.escape(char)
    flags = 0
    if pattern.upper().startswith("INBOX"):
        regex = "(?i:INBOX)" + regex[5:] if pattern[:5].isalpha() else regex
    return re.compile(f"^{regex}$", flags | re.DOTALL)


def _parents(names: set[str]) -> set[str]:
    parents: set[str] = set()
    for name in names:
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            parents.add(DELIMITER.join(parts[:i]))
    return parents


def _sort_key(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


def _uses_modseq(key: search.Key) -> bool:
    if key.op == "MODSEQ":
        return True
    return any(isinstance(a, search.Key) and _uses_modseq(a) for a in key.args)


def _open_batches(records: list[MessageRecord]) -> list[list[MessageRecord]]:
    """``records`` cut into batches of at most ``_OPEN_BATCH`` messages and about
    ``_OPEN_BATCH_BYTES`` encrypted bytes (a batch holds at least one message)."""
    batches: list[list[MessageRecord]] = []
    current: list[MessageRecord] = []
    size = 0
    for record in records:
        if current and (len(current) >= _OPEN_BATCH or size + record.blob.size > _OPEN_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(record)
        size += record.blob.size
    if current:
        batches.append(current)
    return batches
