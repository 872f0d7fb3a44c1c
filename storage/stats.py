"""The per-client figures the planner and the digest read (completed visits, the first and
the last one, rhythm, the predicted next visit), refreshed from the visits whenever they
change: every writer of a completed visit (staff marking it, the planner completing it at
the end of the day, an import, the demo history) calls `refresh_client_stats`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.retention import personal_rhythm_days, predicted_next_visit
from storage.tables import Client, Visit, VisitStatus

_CHUNK = 500


async def refresh_client_stats(
    *,
    session: AsyncSession,
    tz: ZoneInfo,
    return_days: Mapping[int, int],
    client_ids: Iterable[int] | None = None,
) -> int:
    """Recompute the figures of these clients (all when None); `return_days` maps a
    service id to its usual return interval. Returns how many clients were updated."""
    ids = None if client_ids is None else sorted(set(client_ids))
    chunks = [None] if ids is None else [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
    updated = 0
    for chunk in chunks:
        query = (
            select(Visit.client_id, Visit.starts_at, Visit.service_id, Visit.master_id)
            .where(Visit.status == VisitStatus.completed)
            .order_by(col(Visit.client_id), col(Visit.starts_at))
        )
        if chunk is not None:
            query = query.where(col(Visit.client_id).in_(chunk))
        rows = (await session.exec(query)).all()
        seen: set[int] = set()
        values = []
        for client_id, visits in groupby(rows, key=lambda row: row[0]):
            history = list(visits)
            seen.add(client_id)
            values.append(_figures(client_id, history, tz, return_days))
        if chunk is not None:
            values += [_empty(client_id) for client_id in chunk if client_id not in seen]
        if values:  # one executemany by primary key, not a statement per client
            await session.exec(update(Client), params=values)
        updated += len(values)
    return updated


def _figures(
    client_id: int,
    history: list[tuple[int, datetime, int, int]],
    tz: ZoneInfo,
    return_days: Mapping[int, int],
) -> dict[str, object]:
    _, first_start, _, _ = history[0]
    _, last_start, service_id, master_id = history[-1]
    dates = [start.astimezone(tz).date() for _, start, _, _ in history]
    rhythm = personal_rhythm_days(dates, return_days.get(service_id, 30))
    return {
        "id": client_id,
        "completed_visits": len(history),
        "first_visit_at": first_start,
        "last_visit_at": last_start,
        "last_service_id": service_id,
        "last_master_id": master_id,
        "rhythm_days": rhythm,
        "next_visit_due": predicted_next_visit(dates[-1], rhythm),
    }


def _empty(client_id: int) -> dict[str, object]:
    return {
        "id": client_id,
        "completed_visits": 0,
        "first_visit_at": None,
        "last_visit_at": None,
        "last_service_id": None,
        "last_master_id": None,
        "rhythm_days": None,
        "next_visit_due": None,
    }
