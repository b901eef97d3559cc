"""The trust space's allow-list of operator domains (DOMAIN.md, "Trust space and transport").

The list is an XML document in which every operator domain is the text of a ``Domaine/Nom``
element in the namespace ``https://listeblanche.mssante.fr/schema``; some names are
internationalised (IDNA, RFC 5890/3490), so every name is compared in its ASCII form, lower
case. A domain is allowed when it is listed or is a subdomain of a listed one (operators
host ``medecin.example.fr`` and ``patient.example.fr`` under ``example.fr``).

:class:`AllowListSource` reads the file and refreshes it on a schedule; a refresh that fails
(missing file, bad XML, an empty list) keeps the last good copy and says so in the log, so a
truncated download never empties the trust space. The XML is parsed by
:func:`messaging.safexml.parse_xml` (no DTD, no entities, size and depth limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from messaging.errors import InvalidMessage
from messaging.safexml import XmlLimits, parse_xml

__all__ = ["NAMESPACE", "AllowList", "AllowListError", "AllowListSource", "parse_allowlist"]

NAMESPACE = "https://listeblanche.mssante.fr/schema"
_MAX_BYTES = 16 * 1024 * 1024
_LIMITS = XmlLimits(max_bytes=_MAX_BYTES, max_depth=32, max_elements=2_000_000)

log = logging.getLogger("gateway_smtp.allowlist")


class AllowListError(ValueError):
    """An allow-list document that cannot be used; the message says why."""


def normalise_domain(name: str) -> str:
    """The ASCII (A-label), lower-case form of a domain name; ``AllowListError`` if invalid."""
    text = name.strip().rstrip(".")
    if not text or any(c.isspace() for c in text):
        raise AllowListError(f"invalid domain name {name!r}")
    try:
        return text.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise AllowListError(f"invalid domain name {name!r}") from error


@dataclass(frozen=True, slots=True)
class AllowList:
    """A set of operator domains; immutable, so a refresh swaps it whole."""

    domains: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> AllowList:
        return cls(frozenset(normalise_domain(n) for n in names))

    def allows(self, domain: str) -> bool:
        """Whether ``domain`` (any form, IDN or not) is a listed domain or below one."""
        try:
            name = normalise_domain(domain)
        except AllowListError:
            return False
        labels = name.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - 1))

    def __len__(self) -> int:
        return len(self.domains)


def parse_allowlist(data: bytes) -> AllowList:
    """Every ``Domaine/Nom`` of the document; refuses a document that lists none."""
    try:
        root = parse_xml(data, _LIMITS)
    except InvalidMessage as error:
        raise AllowListError(f"allow-list is not acceptable XML: {error.reason}") from None
    names: list[str] = []
    for domaine in root.iter(f"{{{NAMESPACE}}}Domaine"):
        for nom in domaine.findall(f"{{{NAMESPACE}}}Nom"):
            if nom.text and nom.text.strip():
                names.append(nom.text)
    if not names:
        raise AllowListError("allow-list names no domain (Domaine/Nom)")
    return AllowList.of(names)


class AllowListSource:
    """The current allow-list: the file's last good copy, plus domains always allowed."""

    def __init__(
        self,
        path: Path | None,
        *,
        always: Iterable[str] = (),
        refresh_seconds: float = 3600.0,
    ) -> None:
        self._path = path
        self._always = AllowList.of(always)
        self._refresh_seconds = refresh_seconds
        self._current = self._always
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> AllowList:
        return self._current

    def allows(self, domain: str) -> bool:
        return self._current.allows(domain)

    def refresh(self) -> bool:
        """Read the file again; keep the last good copy when it cannot be used."""
        if self._path is None:
            return True
        try:
            loaded = parse_allowlist(self._path.read_bytes())
        except (OSError, AllowListError) as error:
            self.last_error = str(error)
            log.warning(
                "allow-list refresh failed; keeping the last good copy",
                extra={"path": str(self._path), "error": str(error)},
            )
            return False
        self._current = AllowList(loaded.domains | self._always.domains)
        self.last_error = None
        log.info("allow-list loaded", extra={"domains": len(self._current)})
        return True

    def start(self) -> None:
        """Load now, then refresh every ``refresh_seconds`` in the running loop."""
        self.refresh()
        if self._path is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            # Parsing a national list is a few milliseconds of CPU: off the event loop.
            await asyncio.to_thread(self.refresh)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
