"""Opposition, closure, retention and the purge decision, on a controllable clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.clock import ManualClock
from messaging.retention import (
    RetentionPolicy,
    add_years,
    check_closure,
    check_opposition,
    plan_purge,
)
from messaging.types import AccountRecord, Address, MailboxKind

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def account(
    local: str,
    *,
    kind: MailboxKind = MailboxKind.PAT,
    created_at: datetime = T0,
    closed_at: datetime | None = None,
) -> AccountRecord:
    return AccountRecord(
        address=Address.parse(f"{local}@patient.pli.test"),
        kind=kind,
        display_name=local,
        encryption_key=bytes(32),
        signing_key=bytes(32),
        created_at=created_at,
        closed_at=closed_at,
    )


def test_the_purge_removes_closed_accounts_older_than_the_retention_and_nothing_else():
    clock = ManualClock(T0)
    accounts = [
        account("open"),
        account("closed-long-ago", closed_at=T0),
        account("closed-later", closed_at=T0 + timedelta(days=400)),
        account("doctor", kind=MailboxKind.PER, closed_at=T0 + timedelta(days=1)),
    ]
    assert plan_purge(accounts, clock.now()).purge == ()

    clock.advance(timedelta(days=3652))  # 2036-03-14: one day short of ten years
    assert plan_purge(accounts, clock.now()).purge == ()

    clock.advance(timedelta(days=1))  # 2036-03-15 12:00: exactly ten years
    plan = plan_purge(accounts, clock.now())
    assert [str(a) for a in plan.addresses] == ["closed-long-ago@patient.pli.test"]
    assert plan.open_accounts == 1
    assert [str(i.address) for i in plan.retained] == [
        "doctor@patient.pli.test",
        "closed-later@patient.pli.test",
    ]

    clock.advance(timedelta(days=400))
    plan = plan_purge(accounts, clock.now())
    assert [str(a) for a in plan.addresses] == [
        "closed-long-ago@patient.pli.test",
        "doctor@patient.pli.test",
        "closed-later@patient.pli.test",
    ]
    assert plan.retained == () and plan.open_accounts == 1


def test_an_open_account_is_never_purged_however_old():
    ancient = account("ancient", created_at=datetime(1990, 1, 1, tzinfo=UTC))
    plan = plan_purge([ancient], datetime(2100, 1, 1, tzinfo=UTC))
    assert plan.purge == () and plan.retained == () and plan.open_accounts == 1


def test_a_closure_dated_in_the_future_is_kept():
    odd = account("odd", closed_at=T0 + timedelta(days=30))
    plan = plan_purge([odd], T0, RetentionPolicy(retention_years=0))
    assert plan.purge == () and len(plan.retained) == 1
    assert plan_purge([odd], T0 + timedelta(days=30), RetentionPolicy(retention_years=0)).addresses


def test_retention_counts_calendar_years_and_never_purges_early():
    assert add_years(datetime(2024, 2, 29, tzinfo=UTC), 10) == datetime(2034, 3, 1, tzinfo=UTC)
    assert add_years(T0, 10) == datetime(2036, 3, 15, 12, 0, tzinfo=UTC)
    leap = account("leap", closed_at=datetime(2024, 2, 29, tzinfo=UTC))
    assert plan_purge([leap], datetime(2034, 2, 28, 23, 59, tzinfo=UTC)).purge == ()
    assert plan_purge([leap], datetime(2034, 3, 1, tzinfo=UTC)).addresses == [leap.address]


def test_the_dry_run_report_lists_what_would_go_and_what_stays():
    now = T0 + timedelta(days=3653)
    accounts = [account("a", closed_at=T0), account("b", closed_at=now), account("c")]
    plan = plan_purge(accounts, now)
    french = plan.report()
    assert french.splitlines()[0] == (
        "Purge du 2036-03-15 12:00 UTC, conservation 10 ans : 1 compte(s) à purger, "
        "1 compte(s) fermé(s) conservé(s), 1 compte(s) ouvert(s) non concerné(s)."
    )
    assert "  purger    a@patient.pli.test (PAT) fermé le 2026-03-15, échéance 2036-03-15" in french
    assert "  conserver b@patient.pli.test (PAT) fermé le 2036-03-15, échéance 2046-03-15" in french
    english = plan.report("en")
    assert "1 account(s) to purge" in english
    assert "  retain b@patient.pli.test (PAT) closed 2036-03-15, due 2046-03-15" in english
    assert "c@patient.pli.test" not in english


def test_naive_times_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="timezone"):
        plan_purge([], datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        RetentionPolicy(retention_years=-1)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 20 * 366),
            st.one_of(st.none(), st.integers(0, 20 * 366)),
        ),
        max_size=12,
    ),
    st.integers(0, 25 * 366),
)
def test_the_plan_partitions_accounts_and_purges_exactly_the_expired_closed_ones(
    rows: list[tuple[int, int | None]], days: int
):
    base = datetime(2020, 1, 1, tzinfo=UTC)
    accounts = [
        account(
            f"p{i}",
            created_at=base + timedelta(days=created),
            closed_at=None if closed is None else base + timedelta(days=created + closed),
        )
        for i, (created, closed) in enumerate(rows)
    ]
    now = base + timedelta(days=days)
    plan = plan_purge(accounts, now)
    expected = {
        a.address for a in accounts if a.closed_at is not None and add_years(a.closed_at, 10) <= now
    }
    assert set(plan.addresses) == expected
    assert len(plan.purge) + len(plan.retained) + plan.open_accounts == len(accounts)


# --- opposition and closure ------------------------------------------------------------------


def test_an_objection_within_six_weeks_of_creation_is_accepted():
    clock = ManualClock(T0)
    fresh = account("fresh")
    clock.advance(timedelta(weeks=6))
    assert check_opposition(fresh, clock.now()) == []
    clock.advance(timedelta(seconds=1))
    (violation,) = check_opposition(fresh, clock.now())
    assert violation.code == "opposition-too-late"
    assert "6 semaines" in violation.reason and "2026-04-26" in violation.reason
    (english,) = check_opposition(fresh, clock.now(), lang="en")
    assert english.reason.startswith("The 6-week period")


def test_only_an_open_patient_account_can_be_objected_to():
    closed = account("closed", closed_at=T0)
    assert [v.code for v in check_opposition(closed, T0)] == ["opposition-closed"]
    doctor = account("doctor", kind=MailboxKind.PER)
    assert [v.code for v in check_opposition(doctor, T0)] == ["opposition-not-patient"]
    custom = RetentionPolicy(opposition_window=timedelta(weeks=8))
    assert check_opposition(account("x"), T0 + timedelta(weeks=7), custom) == []


def test_an_account_is_closed_once():
    fresh = account("fresh")
    assert check_closure(fresh, T0 + timedelta(days=400)) == []
    closed = replace(fresh, closed_at=T0)
    assert [v.code for v in check_closure(closed, T0)] == ["account-closed"]
