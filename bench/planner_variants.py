"""The planner pass of `bench.planner` with proposed changes tried out, the app untouched.

    .venv/bin/python -m bench.planner_variants DB [--index NAME ...] [--patch NAME ...]
        [--explain] [--keep-indexes]

DB is a database seeded by `bench.planner --keep DIR`. `--index` creates one of INDEXES
before the passes (and drops it after, unless `--keep-indexes`); `--patch` swaps in one of
PATCHES for the pass. The two passes run as in `bench.planner` (the rows they plan are
deleted afterwards), in this process: run it once per variant, so each has its own peak.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, exists, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import scheduler.planner as planner_module
from bench.planner import copies_for, print_pass_report, run_passes
from domain.retention import Caps, cap_allows, pick_by_priority
from scheduler.planner import MARKETING, Planner
from storage.outbox import LIVE, planned_keys
from storage.tables import Client, Outbox, OutboxStatus, Visit, VisitStatus

INDEXES = {
    # marketing_times (client_id IN … AND kind IN … AND due_at > …) and the win-back
    # subqueries (client_id = … AND kind = 'winback'): seek the client's rows of a kind.
    "outbox_client_kind_due": (
        "CREATE INDEX ix_outbox_client_kind_due ON outbox (client_id, kind, due_at)"
    ),
    # _warm_offers: return nudges sent 10-17 days ago, not every sent row.
    "outbox_kind_sent": "CREATE INDEX ix_outbox_kind_sent ON outbox (kind, sent_at)",
    # _active_visits: visits completed in the last 27 hours, not every completed visit.
    "visit_status_completed": (
        "CREATE INDEX ix_visit_status_completed ON visit (status, completed_at)"
    ),
    # _birthdays: the expressions SQLAlchemy renders for extract('month'/'day', birthday).
    "client_birthday": (
        "CREATE INDEX ix_client_birthday ON client (CAST(STRFTIME('%m', birthday) AS INTEGER), "
        "CAST(STRFTIME('%d', birthday) AS INTEGER))"
    ),
    # _winbacks: the sleeping clients only (a range of last_visit_at), not a scan.
    "client_last_visit": "CREATE INDEX ix_client_last_visit ON client (last_visit_at)",
}


_COLUMNS_WITH_DEFAULTS: dict[str, Any] = {
    "client_id": None,
    "staff_id": None,
    "channel": None,
    "status": OutboxStatus.pending,
    "last_error": None,
    "payload": {},
    "campaign": None,
}


async def enqueue_many(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """storage.outbox.enqueue as one prepared INSERT run for every row (executemany), not
    one INSERT with a VALUES list of every row compiled afresh on each pass."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    connection = await session.connection()
    result = await connection.execute(statement, [{**_COLUMNS_WITH_DEFAULTS, **r} for r in rows])
    return int(result.rowcount or 0)


async def marketing_of_waiting(
    self: Planner, session: AsyncSession, now: datetime
) -> list[dict[str, Any]]:
    """Planner._marketing, reading the frequency-cap history only of the clients with an
    offer not planned yet (after the dedupe), not of every candidate."""
    candidates: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in (
        await self._birthdays(session, now)
        + await self._winbacks(session, now)
        + await self._warm_offers(session, now)
        + await self._return_nudges(session, now)
        + await self._care_tips(session, now)
    ):
        candidates[row["client_id"]].setdefault(row["kind"], row)
    if not candidates:
        return []
    keys = [row["dedupe_key"] for kinds in candidates.values() for row in kinds.values()]
    known = await planned_keys(session=session, keys=keys)
    waiting = {
        client_id: {kind: row for kind, row in kinds.items() if row["dedupe_key"] not in known}
        for client_id, kinds in candidates.items()
    }
    waiting = {client_id: kinds for client_id, kinds in waiting.items() if kinds}
    if not waiting:
        return []
    history = await planner_module.marketing_times(
        session=session, client_ids=waiting, kinds=MARKETING, since=now - timedelta(days=30)
    )
    caps = Caps(self.policy.marketing_per_7_days, self.policy.marketing_per_30_days)
    chosen = []
    for client_id, kinds in waiting.items():
        kind = pick_by_priority(kinds)
        if kind is None:
            continue
        row = kinds[kind]
        if row.get("status") == OutboxStatus.held_out or cap_allows(
            history.get(client_id, []), now, caps
        ):
            chosen.append(row)
    return chosen


async def marketing_times_by_client(
    *, session: AsyncSession, client_ids: Iterable[int], kinds: Iterable[str], since: datetime
) -> dict[int, list[datetime]]:
    """storage.outbox.marketing_times with the status checked here, not in SQL: with
    `status IN (…)` in the query SQLite (no ANALYZE statistics) picks ix_outbox_status_due
    and reads every live row of the last 30 days for each chunk of 500 clients."""
    times: dict[int, list[datetime]] = defaultdict(list)
    ids, wanted, live = list(client_ids), list(kinds), set(LIVE)
    for start in range(0, len(ids), 500):
        result = await session.exec(
            select(Outbox.client_id, Outbox.due_at, Outbox.status).where(
                col(Outbox.client_id).in_(ids[start : start + 500]),
                col(Outbox.kind).in_(wanted),
                col(Outbox.due_at) > since,
            )
        )
        for client_id, due_at, status in result.all():
            if client_id is not None and status in live:
                times[client_id].append(due_at)
    return times


def _patch_history_query() -> None:
    planner_module.marketing_times = marketing_times_by_client


def _not_planned(key: Any) -> Any:
    return ~exists().where(col(Outbox.dedupe_key) == key)


async def return_nudges_not_planned(
    self: Planner, session: AsyncSession, now: datetime
) -> list[dict[str, Any]]:
    """Planner._return_nudges without the clients whose nudge for this predicted date is
    in the outbox already (a probe of the dedupe key's unique index per row, in SQL), so a
    pass reads and dedupes the new ones only, not the whole 17-day window."""
    today = self.local(now).date()
    lead = timedelta(days=self.policy.nudge_lead_days)
    sleeping_since = self.at_local(
        today - timedelta(days=self.policy.sleeping_after_days), clock_time()
    )
    key = (
        literal("return_nudge:client:")
        + cast(col(Client.id), String)
        + ":"
        + cast(col(Client.next_visit_due), String)
    )
    clients = await session.exec(
        select(col(Client.id), col(Client.next_visit_due)).where(
            planner_module._marketing_allowed(),
            col(Client.next_visit_due) <= today + lead,
            col(Client.next_visit_due) > today - timedelta(days=14),
            col(Client.last_visit_at) >= sleeping_since,
            planner_module._not_snoozed(today),
            planner_module._no_future_booking(now),
            _not_planned(key),
        )
    )
    return [
        self._offer(
            "return_nudge",
            client_id,
            f"return_nudge:client:{client_id}:{due.isoformat()}",
            now,
            predicted=due.isoformat(),
        )
        for client_id, due in clients.all()
        if client_id is not None and due is not None
    ]


async def care_tips_not_planned(
    self: Planner, session: AsyncSession, now: datetime
) -> list[dict[str, Any]]:
    """Planner._care_tips without the visits whose tip is in the outbox already."""
    with_tip = [s.id for s in self.catalog.services.values() if s.care_tip]
    if not with_tip:
        return []
    after = timedelta(days=self.policy.care_tip_after_days)
    visits = await session.exec(
        select(Visit.id, Visit.client_id)
        .join(Client, col(Client.id) == col(Visit.client_id))
        .where(
            Visit.status == VisitStatus.completed,
            col(Visit.service_id).in_(with_tip),
            col(Visit.starts_at) <= now - after,
            col(Visit.starts_at) > now - after - timedelta(days=7),
            planner_module._marketing_allowed(),
            _not_planned(literal("care_tip:visit:") + cast(col(Visit.id), String)),
        )
    )
    return [
        self._offer("care_tip", client_id, f"care_tip:visit:{visit_id}", now, visit_id=visit_id)
        for visit_id, client_id in visits.all()
    ]


def _patch_dedupe_in_sql() -> None:
    Planner._return_nudges = return_nudges_not_planned  # type: ignore[method-assign]
    Planner._care_tips = care_tips_not_planned  # type: ignore[method-assign]


def _patch_enqueue() -> None:
    planner_module.enqueue = enqueue_many


def _patch_marketing() -> None:
    Planner._marketing = marketing_of_waiting  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "enqueue-many": _patch_enqueue,
    "history-of-waiting": _patch_marketing,
    "history-without-status": _patch_history_query,
    "dedupe-in-sql": _patch_dedupe_in_sql,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.planner_variants", description=__doc__)
    parser.add_argument("db", type=Path)
    parser.add_argument("--index", action="append", default=[], choices=sorted(INDEXES))
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--keep-indexes", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="cProfile of pass 1")
    args = parser.parse_args(argv)

    with closing(sqlite3.connect(args.db, isolation_level=None)) as db:
        clients = db.execute("SELECT count(*) FROM client").fetchone()[0]
        existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        for name in args.index:
            if f"ix_{name}" not in existing:
                started = time.perf_counter()
                db.execute(INDEXES[name])
                print(f"  created ix_{name} in {time.perf_counter() - started:.1f} s")
    for name in args.patch:
        PATCHES[name]()
    print(
        f"  indexes: {', '.join(args.index) or 'none'}; patches: {', '.join(args.patch) or 'none'}"
    )
    try:
        report = asyncio.run(
            run_passes(
                args.db,
                copies_for(clients),
                explain=args.explain,
                restore=True,
                profile=args.profile,
            )
        )
        print_pass_report(report)
    finally:
        if not args.keep_indexes:
            with closing(sqlite3.connect(args.db, isolation_level=None)) as db:
                for name in args.index:
                    db.execute(f"DROP INDEX IF EXISTS ix_{name}")


if __name__ == "__main__":
    main()
