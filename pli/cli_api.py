"""``pli api-client``: OAuth clients of the application API (``docs/api.md``).

    pli api-client create ADDRESS --name NAME --scope SCOPE… [--rate N] [--quota N]
    pli api-client list
    pli api-client rotate CLIENT_ID      a new secret; the previous one stays valid
    pli api-client revoke CLIENT_ID      the client and all its secrets

``create`` and ``rotate`` ask for the passphrase of the client's mailbox (a client's secret
is an app password of that mailbox, :mod:`messaging.api_clients`) and print the secret once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from messaging.api_clients import Scope
from messaging.types import Address
from pli.api_wiring import client_service
from pli.settings import Settings
from pli.terminal import ask_secret, say, table
from pli.wiring import Pli

__all__ = ["register"]

WithPli = Callable[[Settings, Callable[[Pli], Awaitable[int]]], Awaitable[int]]
Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
Runs = Callable[[Command], Any]


def _commands(
    with_pli: WithPli,
) -> dict[str, Command]:
    async def create(args: argparse.Namespace, settings: Settings) -> int:
        address = Address.parse(args.address)
        passphrase = ask_secret(f"Passphrase for {address}")

        async def body(pli: Pli) -> int:
            made = await client_service(pli).create(
                address,
                passphrase,
                name=args.name,
                scopes=frozenset(args.scope),
                rate_per_minute=args.rate,
                daily_quota=args.quota,
            )
            say(f"client_id      {made.client.client_id}")
            say(f"client_secret  {made.secret}")
            say(f"scopes         {' '.join(sorted(made.client.scopes))}")
            say("The secret is shown once. Token: POST /v1/oauth/token (docs/api.md).")
            return 0

        return await with_pli(settings, body)

    async def list_clients(_args: argparse.Namespace, settings: Settings) -> int:
        async def body(pli: Pli) -> int:
            rows = [
                [
                    c.client_id,
                    str(c.address),
                    c.name,
                    " ".join(sorted(c.scopes)),
                    c.created_at.strftime("%Y-%m-%d %H:%M"),
                    c.revoked_at.strftime("%Y-%m-%d %H:%M") if c.revoked_at else "",
                ]
                for c in await client_service(pli).list_clients()
            ]
            table(
                rows, ["CLIENT ID", "MAILBOX", "NAME", "SCOPES", "CREATED", "REVOKED"], sys.stdout
            )
            return 0

        return await with_pli(settings, body)

    async def rotate(args: argparse.Namespace, settings: Settings) -> int:
        async def body(pli: Pli) -> int:
            service = client_service(pli)
            client = await service.state.get_client(args.client_id)
            address = client.address if client is not None else "its mailbox"
            passphrase = ask_secret(f"Passphrase for {address}")
            made = await service.rotate(args.client_id, passphrase)
            say(f"client_id      {made.client.client_id}")
            say(f"client_secret  {made.secret}")
            say("The previous secret stays valid until the next rotation; older ones are revoked.")
            return 0

        return await with_pli(settings, body)

    async def revoke(args: argparse.Namespace, settings: Settings) -> int:
        async def body(pli: Pli) -> int:
            client = await client_service(pli).revoke(args.client_id)
            say(f"Revoked {client.client_id} ({client.name}) and its secrets.")
            return 0

        return await with_pli(settings, body)

    return {"create": create, "list": list_clients, "rotate": rotate, "revoke": revoke}


def register(sub: Any, runs: Runs, with_pli: WithPli) -> None:  # noqa: ANN401 - argparse's
    """Add ``api-client`` to the ``pli`` parser (``sub`` is its subparsers object)."""
    commands = _commands(with_pli)
    parser = sub.add_parser("api-client", help="OAuth clients of the application API")
    actions = parser.add_subparsers(dest="api_client_command", required=True, metavar="ACTION")
    p = actions.add_parser("create", help="create a client (asks the mailbox's passphrase)")
    p.add_argument("address", help="the mailbox the client acts for (APP, ORG or PER)")
    p.add_argument("--name", required=True, help="the software's name, shown to recipients")
    p.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[s.value for s in Scope],
        help="a scope the client may ask for (repeat)",
    )
    p.add_argument("--rate", type=int, help="requests per minute (default: the API's)")
    p.add_argument("--quota", type=int, help="messages per day (default: unlimited)")
    p.set_defaults(handler=runs(commands["create"]))
    p = actions.add_parser("list", help="list clients")
    p.set_defaults(handler=runs(commands["list"]))
    p = actions.add_parser("rotate", help="a new secret; the previous one stays valid")
    p.add_argument("client_id")
    p.set_defaults(handler=runs(commands["rotate"]))
    p = actions.add_parser("revoke", help="revoke a client and all its secrets")
    p.add_argument("client_id")
    p.set_defaults(handler=runs(commands["revoke"]))
