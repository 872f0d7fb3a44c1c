from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bot.composition import Core
from storage.outbox import enqueue
from storage.tables import Outbox, OutboxStatus, Staff
from tests.helpers import add_client


async def test_one_pass_can_plan_staff_and_client_messages_together(core: Core) -> None:
    now = datetime(2026, 11, 23, 7, tzinfo=UTC)
    client = await add_client(core, name="Anna", phone="+79160000001", consent_at=now)
    async with core.db.transaction() as session:
        staff = (await session.exec(select(Staff))).first()
        assert staff is not None
        rows: list[dict[str, Any]] = [
            {
                "kind": "staff_day_plan",
                "staff_id": staff.id,
                "channel": "telegram",
                "due_at": now,
                "dedupe_key": "plan:1",
                "payload": {"day": "2026-11-23"},
            },
            {
                "kind": "birthday",
                "client_id": client.id,
                "due_at": now,
                "dedupe_key": "bday:1",
                "campaign": "birthday",
            },
            {
                "kind": "reminder",
                "client_id": client.id,
                "due_at": now,
                "dedupe_key": "rem:1",
                "status": OutboxStatus.skipped,
                "last_error": "the visit has begun",
            },
        ]
        assert await enqueue(session=session, rows=rows, now=now) == 3
        assert await enqueue(session=session, rows=rows, now=now) == 0  # planned twice: nothing new
    async with core.db.reading() as session:
        stored = {r.dedupe_key: r for r in (await session.exec(select(Outbox))).all()}
    assert all(row.created_at == now for row in stored.values())
    assert stored["plan:1"].staff_id == staff.id and stored["plan:1"].client_id is None
    assert stored["bday:1"].campaign == "birthday" and stored["bday:1"].status == "pending"
    assert (
        stored["rem:1"].status == "skipped" and stored["rem:1"].last_error == "the visit has begun"
    )


async def test_rows_enqueued_without_counting_are_inserted_once(core: Core) -> None:
    now = datetime(2026, 11, 23, 7, tzinfo=UTC)
    client = await add_client(core, name="Anna", phone="+79160000001", consent_at=now)
    rows: list[dict[str, Any]] = [
        {"kind": "care_tip", "client_id": client.id, "due_at": now, "dedupe_key": f"tip:{n}"}
        for n in range(3)
    ]
    async with core.db.transaction() as session:
        assert await enqueue(session=session, rows=rows, now=now, count=False) == 0
        await enqueue(
            session=session,
            rows=[*rows[1:], rows[0] | {"dedupe_key": "tip:3"}],
            now=now,
            count=False,
        )
    async with core.db.reading() as session:
        keys = sorted((await session.exec(select(Outbox.dedupe_key))).all())
    assert keys == ["tip:0", "tip:1", "tip:2", "tip:3"]
