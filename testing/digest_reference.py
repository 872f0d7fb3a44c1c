"""The owner's digest computed the plain way, the reference for the SQL tallies of
storage/digest.py (tests/test_digest_reference.py, bench/digest.py): every visit, client,
rating and win-back read as rows, each visit's previous completed visit found in Python, the
figures computed by domain/digest.py from full rows (`weekly_digest`)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import select

from bot.composition import Core
from domain.digest import (
    ClientRow,
    FeedbackRow,
    History,
    VisitRow,
    WinbackDecision,
    local_day,
    masters_with_fewer_returns,
    revenue_period,
    weekly_digest,
    weekly_points,
)
from domain.payroll import weekly_return_pay
from scheduler.digest import OwnerDigest, pay_rules
from storage.tables import Client, Feedback, Outbox, OutboxStatus, Visit, VisitStatus


async def plain_owner_digest(core: Core, as_of: date) -> OwnerDigest:
    """The owner's digest from every row, computed the plain way (without the due clients:
    they are one query both ways)."""
    config, tz = core.config, core.config.tz

    def before_d(moment: datetime) -> bool:
        return local_day(moment, tz) < as_of

    async with core.db.reading() as session:
        visits = list((await session.exec(select(Visit))).all())
        clients = list((await session.exec(select(Client))).all())
        feedback = list((await session.exec(select(Feedback))).all())
        outbox = list((await session.exec(select(Outbox))).all())
    completed: dict[int, list[Visit]] = defaultdict(list)
    for visit in sorted(visits, key=lambda v: v.starts_at):
        if visit.status == VisitStatus.completed and before_d(visit.starts_at):
            completed[visit.client_id].append(visit)
    starts = {client: [v.starts_at for v in theirs] for client, theirs in completed.items()}
    rows = []
    for visit in visits:
        if not before_d(visit.starts_at):
            continue
        theirs = completed[visit.client_id]
        earlier = bisect.bisect_left(starts.get(visit.client_id, []), visit.starts_at)
        previous = theirs[earlier - 1] if earlier else None
        rows.append(
            VisitRow(
                id=visit.id or 0,
                client_id=visit.client_id,
                master_id=visit.master_id,
                starts_at=visit.starts_at,
                status=visit.status,
                price=visit.price,
                previous_at=previous.starts_at if previous else None,
                previous_master_id=previous.master_id if previous else None,
                previous_price=previous.price if previous else None,
            )
        )
    year = revenue_period(as_of)
    client_rows = []
    for client in clients:
        theirs = completed[client.id or 0]
        in_year = [v.price for v in theirs if local_day(v.starts_at, tz) in year]
        client_rows.append(
            ClientRow(
                id=client.id or 0,
                in_base=client.deleted_at is None and before_d(client.created_at),
                last_completed_at=theirs[-1].starts_at if theirs else None,
                revenue_last_year=sum(in_year, Decimal(0)) if in_year else None,
            )
        )
    by_id = {v.id: v for v in visits}
    names = {c.id: c.name for c in clients}
    ratings = [
        FeedbackRow(
            f.visit_id,
            by_id[f.visit_id].master_id,
            f.rating,
            f.status,
            f.created_at,
            f.resolved_at,
            names[by_id[f.visit_id].client_id],
            f.comment,
        )
        for f in feedback
    ]
    decisions = [
        WinbackDecision(o.client_id or 0, o.due_at, o.status == OutboxStatus.held_out)
        for o in outbox
        if o.kind == "winback" and o.status in (OutboxStatus.sent, OutboxStatus.held_out)
    ]
    history = History(visits=rows, clients=client_rows, feedback=ratings, winbacks=decisions)
    masters = {m.id: m.name for m in core.deps.catalog.masters.values()}
    digest = weekly_digest(
        history,
        as_of=as_of,
        tz=tz,
        masters=masters,
        sleeping_after_days=config.retention.sleeping_after_days,
    )
    rules = pay_rules(config)
    return OwnerDigest(
        digest=digest,
        weeks=weekly_points(rows, as_of, tz),
        fewer_returns=masters_with_fewer_returns(rows, as_of, tz, masters),
        due_count=0,
        due=[],
        pay=None
        if rules is None
        else weekly_return_pay(rows, period=digest.period, masters=masters, rules=rules, tz=tz),
        masters=masters,
    )
