"""The retention purge as a job: once from ``pli purge``, periodically from ``pli serve``.

Closed accounts are kept ``retention_years`` (10 by default) after their closure, then
deleted with everything only they hold (:meth:`messaging.patients.PatientService.purge`);
their file blobs are removed afterwards — a blob no envelope names any more has no key
slot left anywhere, so even before its file is gone nobody can open it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from messaging.errors import PliError
from messaging.patients import PurgeResult
from pli.wiring import Pli

__all__ = ["purge_once", "purge_periodically"]

log = logging.getLogger("pli.purge")


async def purge_once(pli: Pli, *, dry_run: bool = False) -> PurgeResult:
    """Plan the purge at the clock's ``now``; unless ``dry_run``, carry it out."""
    result = await pli.patients.purge(dry_run=dry_run)
    for ref in result.blobs:
        await asyncio.to_thread(pli.blobs.remove, ref)
    if not dry_run:
        log.info(
            "purge",
            extra={"purged": len(result.purged), "retained": len(result.plan.retained)},
        )
    return result


async def purge_periodically(pli: Pli, interval: float, stop: asyncio.Event) -> None:
    """Purge now, then every ``interval`` seconds, until ``stop`` is set."""
    while not stop.is_set():
        try:
            await purge_once(pli)
        except PliError as error:  # storage unavailable: try again at the next run
            log.warning("purge failed", extra={"reason": str(error)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
