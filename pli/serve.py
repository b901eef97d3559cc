"""``pli serve``: start every front, print where each listens, stop cleanly on SIGTERM.

Shutdown order: stop accepting (close listeners), let requests in flight finish (bounded by
``shutdown_grace_seconds``), then close the store, which commits the deliveries already
queued before it releases the database. Nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Generator

import uvicorn

from gateway_imap import ImapServer, ImapSettings, ReaderLimits, SessionSettings
from messaging.mailbox_session import MailboxAccess
from pli.api_wiring import api_services
from pli.logs import configure_logging
from pli.purge import purge_periodically
from pli.settings import Settings, check_safety
from pli.smtp_wiring import allowlist_source, smtp_fronts, smtp_ports
from pli.tls import server_context
from pli.wiring import Pli, demo_codes_file, open_pli, tls_files
from web import AccountAuthenticator, WebSettings, create_app
from web.webhooks import WebhookWorker
from web.webmail import include_webmail

__all__ = ["serve"]

log = logging.getLogger("pli.serve")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(settings: Settings) -> int:
    check_safety(settings)
    configure_logging(settings.log_level)
    pli = await open_pli(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    http_sock = _listen(settings.host, settings.http_port)
    http_port = http_sock.getsockname()[1]
    published = await pli.accounts.publish_all()
    log.info("keys published", extra={"accounts": published})
    app = create_app(
        directory=pli.directory,
        key_log=pli.key_log,
        authenticator=AccountAuthenticator(pli.accounts),
        settings=WebSettings(),
        api=(api := api_services(pli)),
    )
    worker_stop = asyncio.Event()
    worker = asyncio.create_task(WebhookWorker(api).run(worker_stop))
    stop_webmail = (
        include_webmail(app, pli.webmail, patients=pli.patients)
        if pli.webmail is not None
        else None
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    http = _Server(config)
    http_task = asyncio.create_task(http.serve(sockets=[http_sock]))
    while not http.started and not http_task.done():
        await asyncio.sleep(0.01)
    fronts = [("http", f"http://{settings.host}:{http_port}")]
    smtp = smtp_fronts(
        settings,
        store=pli.store,
        delivery=pli.delivery,
        accounts=pli.accounts,
        clock=pli.clock,
        tls=tls_files(settings),
        allowlist=pli.allowlist or allowlist_source(settings),
    )
    smtp_listening = await smtp.start(smtp_ports(settings))
    fronts += [(name, smtp_listening.url(name)) for name in smtp_listening.addresses]
    relay_task = None
    if pli.relay is not None:  # the outbound relay: docs/operations.md, "Outbound relay"
        relay_task = asyncio.create_task(pli.relay.run(stop))
        fronts.append(("relay", f"outbound queue, {len(settings.relay_routes)} static routes"))
    imap = await _start_imap(settings, pli)
    fronts.append(("imap", f"imap://{settings.host}:{imap.port}"))
    fronts.append(("imaps", f"imaps://{settings.host}:{imap.imaps_port}"))
    if pli.webmail is not None:
        fronts.append(("webmail", f"http://{settings.host}:{http_port}/webmail/"))
        if settings.demo and settings.notice_smarthost is None:
            # Demo mode only: sign-in codes go to this file, not to an e-mail address.
            fronts.append(("demo-codes", str(demo_codes_file(settings))))
    for name, where in fronts:
        sys.stdout.write(f"{name:<11} {where}\n")
        log.info("listening", extra={"front": name, "address": where})
    sys.stdout.write("ready (Ctrl-C or SIGTERM stops)\n")
    sys.stdout.flush()
    purge = asyncio.create_task(purge_periodically(pli, settings.purge_interval_seconds, stop))

    await stop.wait()
    await purge  # it returns as soon as ``stop`` is set (or after the run in progress)
    log.info("stopping: refusing new work, finishing work in flight")
    if stop_webmail is not None:
        stop_webmail()  # end the webmail's event streams: nothing to wait for
    http.should_exit = True
    # SMTP sessions committing a message answer it before the store closes.
    await smtp.stop(grace=settings.shutdown_grace_seconds)
    await imap.close(settings.shutdown_grace_seconds)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(http_task, settings.shutdown_grace_seconds)
    if relay_task is not None:  # attempts in flight end within relay_timeout_seconds
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(relay_task, settings.shutdown_grace_seconds)
    worker_stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(worker, settings.shutdown_grace_seconds)
    await app.state.api_trace.close()
    await pli.close()
    log.info("stopped")
    return 0


async def _start_imap(settings: Settings, pli: Pli) -> ImapServer:
    """The IMAP gateway: STARTTLS on ``imap_port``, implicit TLS on ``imaps_port``."""
    imap = ImapServer(
        access=MailboxAccess(
            store=pli.store, delivery=pli.delivery, cache_bytes=settings.imap_cache_bytes
        ),
        accounts=pli.accounts,
        tls_context=server_context(tls_files(settings)),
        settings=ImapSettings(
            host=settings.host,
            port=settings.imap_port,
            imaps_port=settings.imaps_port,
            max_connections=settings.imap_max_connections,
            session=SessionSettings(
                limits=ReaderLimits(
                    max_line=settings.imap_max_line,
                    max_command=settings.imap_max_command,
                    max_literal_unauthenticated=settings.imap_max_literal_unauthenticated,
                    max_literal=settings.imap_max_literal,
                    max_append=settings.max_message_size,
                    max_depth=settings.imap_max_depth,
                ),
                login_timeout=settings.imap_login_timeout_seconds,
                idle_timeout=settings.imap_idle_timeout_seconds,
            ),
        ),
    )
    await imap.start()
    return imap
