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

from pli.api_wiring import api_services
from pli.logs import configure_logging
from pli.settings import Settings, check_safety
from pli.wiring import demo_codes_file, open_pli
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
    stop_webmail = include_webmail(app, pli.webmail) if pli.webmail is not None else None
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
    if pli.webmail is not None:
        fronts.append(("webmail", f"http://{settings.host}:{http_port}/webmail/"))
        if settings.demo and settings.smarthost_host is None:
            # Demo mode only: sign-in codes go to this file, not to an e-mail address.
            fronts.append(("demo-codes", str(demo_codes_file(settings))))
    for name, where in fronts:
        sys.stdout.write(f"{name:<11} {where}\n")
        log.info("listening", extra={"front": name, "address": where})
    sys.stdout.write("ready (Ctrl-C or SIGTERM stops)\n")
    sys.stdout.flush()

    await stop.wait()
    log.info("stopping: refusing new work, finishing work in flight")
    if stop_webmail is not None:
        stop_webmail()  # end the webmail's event streams: nothing to wait for
    http.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(http_task, settings.shutdown_grace_seconds)
    worker_stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(worker, settings.shutdown_grace_seconds)
    await app.state.api_trace.close()
    await pli.close()
    log.info("stopped")
    return 0
