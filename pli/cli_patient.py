"""``pli purge``, ``pli patient …`` and ``pli consent …``: the patient's rights from a shell.

A patient's own actions (declare the médecin traitant, block, contact, answer or withdraw a
consent, read the access history) ask for the patient's passphrase, as ``pli send`` does;
``pli purge`` is the operator's retention job (``--dry-run`` only reports).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import crypto
from messaging import Address
from messaging.access_history import label
from messaging.kinds.consent import Decision
from pli.purge import purge_once
from pli.settings import Settings
from pli.terminal import CommandError, ask_secret, say, table
from pli.wiring import Pli

__all__ = ["register"]

WithPli = Callable[[Settings, Callable[[Pli], Awaitable[int]]], Awaitable[int]]
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
Runs = Callable[[Handler], Callable[[argparse.Namespace], int]]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], runs: Runs, with_pli: WithPli
) -> None:
    """Add ``purge``, ``patient`` and ``consent`` to the ``pli`` command."""

    async def purge(args: argparse.Namespace, settings: Settings) -> int:
        async def body(pli: Pli) -> int:
            result = await purge_once(pli, dry_run=args.dry_run)
            sys.stdout.write(result.plan.report(args.lang))
            if args.dry_run:
                say(
                    "dry run: nothing was deleted" if args.lang == "en" else "essai : rien supprimé"
                )
            else:
                say(f"purged {len(result.purged)} account(s)")
            return 0

        return await with_pli(settings, body)

    p = sub.add_parser("purge", help="delete closed accounts past their retention period")
    p.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    p.add_argument("--lang", default="en", choices=["fr", "en"])
    p.set_defaults(handler=runs(purge))

    def as_patient(
        action: Callable[[Pli, argparse.Namespace, Address, crypto.MailboxKeys], Awaitable[None]],
    ) -> Handler:
        async def run(args: argparse.Namespace, settings: Settings) -> int:
            patient = Address.parse(args.patient)
            passphrase = ask_secret(f"Passphrase for {patient}")

            async def body(pli: Pli) -> int:
                unlocked = await pli.accounts.unlock(patient, passphrase)
                await action(pli, args, patient, unlocked.keys)
                return 0

            return await with_pli(settings, body)

        return run

    patient = sub.add_parser("patient", help="a patient's rights: médecin traitant, blocks…")
    psub = patient.add_subparsers(dest="patient_command", required=True, metavar="ACTION")

    async def treating(
        pli: Pli, args: argparse.Namespace, who: Address, _keys: crypto.MailboxKeys
    ) -> None:
        doctor = None if args.doctor == "none" else Address.parse(args.doctor)
        await pli.patients.declare_treating_doctor(who, doctor)
        say(f"médecin traitant of {who}: {doctor or 'none'}")

    q = psub.add_parser("treating-doctor", help="declare the médecin traitant ('none' to clear)")
    q.add_argument("patient")
    q.add_argument("doctor")
    q.set_defaults(handler=runs(as_patient(treating)))

    async def block(
        pli: Pli, args: argparse.Namespace, who: Address, _keys: crypto.MailboxKeys
    ) -> None:
        target = Address.parse(args.professional)
        if args.patient_command == "block":
            await pli.patients.block(who, target)
            say(f"{target} is blocked for {who}")
        else:
            await pli.patients.unblock(who, target)
            say(f"{target} is unblocked for {who}")

    for name in ("block", "unblock"):
        q = psub.add_parser(name, help=f"{name} a professional")
        q.add_argument("patient")
        q.add_argument("professional")
        q.set_defaults(handler=runs(as_patient(block)))

    async def contact(
        pli: Pli, args: argparse.Namespace, who: Address, _keys: crypto.MailboxKeys
    ) -> None:
        await pli.patients.set_contact(who, email=args.email, phone=args.phone, lang=args.lang)
        say(f"notices for {who}: {'set' if args.email or args.phone else 'none'}")

    q = psub.add_parser("contact", help="where content-free notices go")
    q.add_argument("patient")
    q.add_argument("--email")
    q.add_argument("--phone", help="E.164, e.g. +33612345678")
    q.add_argument("--lang", default="fr", choices=["fr", "en"])
    q.set_defaults(handler=runs(as_patient(contact)))

    async def history(
        pli: Pli, args: argparse.Namespace, who: Address, _keys: crypto.MailboxKeys
    ) -> None:
        entries = await pli.patients.history(who)
        rows = [
            [
                str(e.seq),
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                label(e.action, args.lang),
                e.subject,
            ]
            for e in entries
        ]
        table(rows, ["#", "WHEN (UTC)", "WHO", "WHAT", "ON"], sys.stdout)
        problems = await pli.patients.verify_history(who)
        if problems:
            for problem in problems:
                say(f"TAMPERED {problem.code}: {problem.reason}")
            raise CommandError("the access history does not verify")
        if entries:
            say(f"verified: {len(entries)} entries, last {entries[-1].hash.hex()[:16]}")

    q = psub.add_parser("history", help="read and verify the access history")
    q.add_argument("patient")
    q.add_argument("--lang", default="fr", choices=["fr", "en"])
    q.set_defaults(handler=runs(as_patient(history)))

    async def oppose(
        pli: Pli, args: argparse.Namespace, who: Address, _keys: crypto.MailboxKeys
    ) -> None:
        if args.patient_command == "oppose":
            closed = await pli.patients.oppose(who)
        else:
            closed = await pli.patients.close(who)
        assert closed.closed_at is not None  # noqa: S101 - just closed
        say(f"{who} closed on {closed.closed_at:%Y-%m-%d}; data kept until the purge")

    q = psub.add_parser("oppose", help="object to the account (within 6 weeks of creation)")
    q.add_argument("patient")
    q.set_defaults(handler=runs(as_patient(oppose)))
    q = psub.add_parser("close", help="close the account")
    q.add_argument("patient")
    q.set_defaults(handler=runs(as_patient(oppose)))

    consent = sub.add_parser("consent", help="a patient's consents: list, grant, refuse, revoke")
    csub = consent.add_subparsers(dest="consent_command", required=True, metavar="ACTION")

    async def consents(
        pli: Pli, args: argparse.Namespace, who: Address, keys: crypto.MailboxKeys
    ) -> None:
        command = args.consent_command
        if command in ("grant", "refuse"):
            decision = Decision.GRANT if command == "grant" else Decision.REFUSE
            await pli.patients.answer_consent(who, keys, args.request, decision)
            say(f"request {args.request}: {decision.value}")
            return
        if command == "revoke":
            await pli.patients.revoke_consent(who, keys, args.request)
            say(f"request {args.request}: withdrawn")
            return
        if command == "share":
            made = await pli.patients.share(who, keys)
            say(f"{len(made)} document(s) shared under active grants")
            return
        registry = await pli.patients.registry(who)
        now = pli.clock.now()
        rows = [
            [r.request_id, str(r.professional), r.scope.kind.value, "pending", ""]
            for r in registry.pending_requests()
        ] + [
            [
                g.grant_id,
                str(g.professional),
                g.request.scope.kind.value,
                "active" if g.active_at(now) else "ended",
                g.ends_at.strftime("%Y-%m-%d"),
            ]
            for g in registry.grants()
        ]
        table(rows, ["REQUEST", "PROFESSIONAL", "SCOPE", "STATE", "UNTIL"], sys.stdout)

    for name, help_ in (
        ("list", "pending requests and grants"),
        ("grant", "grant a request (signed with the patient's key)"),
        ("refuse", "refuse a request (signed)"),
        ("revoke", "withdraw a grant (signed)"),
        ("share", "share new documents under active grants"),
    ):
        q = csub.add_parser(name, help=help_)
        q.add_argument("patient")
        if name in ("grant", "refuse", "revoke"):
            q.add_argument("request")
        q.set_defaults(handler=runs(as_patient(consents)))
