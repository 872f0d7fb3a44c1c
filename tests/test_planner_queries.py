"""The planner's narrowing queries against the rules they narrow for: whatever a query
leaves out, the rule would have left out too (the rules decide on what the queries give).

Each test crafts clients around a rule's edges and compares what the planner plans with
the pure rule applied to every client's whole history."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import col, select

from bot.composition import Core
from domain.people import YEAR_UNKNOWN
from domain.retention import days_to_birthday, is_birthday_today, winback_due
from scheduler.planner import BIRTHDAY_CARRIES_DAYS, Planner
from storage.outbox import dedupe_key, dedupe_key_sql
from storage.tables import Client, Outbox
from tests.helpers import add_client, utc_visit

NOW = utc_visit(2026, 11, 24, 10)  # Tuesday 10:00 in Moscow: the marketing window is open
TODAY = date(2026, 11, 24)


def planner(core: Core) -> Planner:
    return Planner(config=core.config, catalog=core.deps.catalog)


async def a_client(core: Core, n: int, **fields: Any) -> int:
    values: dict[str, Any] = {
        "name": f"Client {n}",
        "phone": f"+7916111{n:04d}",
        "telegram_id": 8000 + n,
        "consent_at": NOW - timedelta(days=900),
        "marketing_opt_in_at": NOW - timedelta(days=900),
        **fields,
    }
    client = await add_client(core, **values)
    assert client.id is not None
    return client.id


async def winback(core: Core, client_id: int, due_at: datetime, status: str = "sent") -> None:
    async with core.db.transaction() as session:
        session.add(
            Outbox(
                kind="winback",
                client_id=client_id,
                due_at=due_at,
                status=status,
                dedupe_key=f"test-winback:{client_id}:{due_at.isoformat()}",
                created_at=due_at,
            )
        )


def local_day(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return utc_visit(day.year, day.month, day.day, hour, minute)


async def test_win_backs_the_query_narrows_to_are_exactly_those_the_rule_picks(
    core: Core,
) -> None:
    policy = core.config.retention
    gap, asleep = policy.winback_gap_days, policy.sleeping_after_days
    last = TODAY - timedelta(days=400)  # long asleep
    histories: dict[str, tuple[date, list[tuple[datetime, str]]]] = {
        "none yet": (last, []),
        "just fell asleep": (TODAY - timedelta(days=asleep + 1), []),
        "one long ago": (last, [(local_day(last + timedelta(days=121)), "sent")]),
        "one within the gap": (last, [(local_day(TODAY - timedelta(days=gap - 1)), "sent")]),
        "one exactly the gap ago": (last, [(local_day(TODAY - timedelta(days=gap)), "sent")]),
        "two this absence": (
            last,
            [
                (local_day(last + timedelta(days=121)), "sent"),
                (local_day(last + timedelta(181)), "sent"),
            ],
        ),
        "two, one held out": (
            last,
            [
                (local_day(last + timedelta(days=121)), "held_out"),
                (local_day(last + timedelta(days=181)), "sent"),
            ],
        ),
        "two, one skipped": (
            last,
            [
                (local_day(last + timedelta(days=121)), "skipped"),
                (local_day(last + timedelta(days=181)), "sent"),
            ],
        ),
        "two in an earlier absence": (
            last,
            [
                (local_day(last - timedelta(days=200)), "sent"),
                (local_day(last - timedelta(days=140)), "sent"),
            ],
        ),
        # The visit at 09:00 was entered after the 10:00 win-back of the same day: the rule
        # counts win-backs after the visit's local day only.
        "one the same day after the visit, one since": (
            last,
            [(local_day(last, 10), "sent"), (local_day(last + timedelta(days=121)), "sent")],
        ),
        "one the day after the visit": (
            last,
            [(local_day(last + timedelta(days=1), 0, 30), "sent")],
        ),
        "awake": (TODAY - timedelta(days=20), []),
    }
    ids: dict[int, str] = {}
    for n, (name, (last_day, sent)) in enumerate(histories.items(), start=1):
        client_id = await a_client(core, n, last_visit_at=local_day(last_day, 9))
        ids[client_id] = name
        for due_at, status in sent:
            await winback(core, client_id, due_at, status)

    async with core.db.reading() as session:
        found = await planner(core)._winbacks(session, NOW)
    planned = {ids[client_id] for client_id, row in found if row is not None}

    by_rule = set()
    tz = core.config.tz
    for name, (last_day, sent) in histories.items():
        counted = [due.astimezone(tz).date() for due, status in sent if status != "skipped"]
        if winback_due(
            last_completed_local=last_day,
            today=TODAY,
            previous_winbacks=counted,
            sleeping_after_days=asleep,
            max_per_dormancy=policy.winback_max_per_dormancy,
            gap_days=gap,
        ):
            by_rule.add(name)
    assert planned == by_rule
    assert by_rule == {
        "none yet",
        "just fell asleep",
        "one long ago",
        "one exactly the gap ago",
        "two, one skipped",
        "two in an earlier absence",
        "one the same day after the visit, one since",
        "one the day after the visit",
    }


async def test_birthdays_are_found_by_date_as_the_rule_finds_them(core: Core) -> None:
    born = [
        date(1990, 11, 24),
        date(YEAR_UNKNOWN, 11, 24),
        date(2001, 11, 25),
        date(1984, 11, 30),
        date(1984, 12, 1),
        date(1996, 2, 29),
        date(1990, 2, 28),
        date(1990, 3, 1),
        date(2004, 1, 2),
        date(1977, 12, 31),
    ]
    for n, day in enumerate(born, start=1):
        await a_client(core, n, birthday=day)
    await a_client(core, len(born) + 1)  # no birthday
    days = [
        TODAY,
        date(2027, 2, 28),  # not a leap year: 29 February birthdays are today
        date(2028, 2, 28),  # a leap year: they are tomorrow
        date(2028, 2, 29),
        date(2026, 12, 28),  # the week ahead runs into the new year
    ]
    for today in days:
        now = datetime.combine(today, time(10), core.config.tz)
        found = planner(core)
        async with core.db.reading() as session:
            birthdays = {c for c, row in await found._birthdays(session, now) if row is not None}
            soon = await found._birthday_within_a_week(session, today)
            clients = (await session.exec(select(col(Client.id), col(Client.birthday)))).all()
        assert birthdays == {c for c, b in clients if is_birthday_today(b, today)}, today
        week = range(1, BIRTHDAY_CARRIES_DAYS + 1)
        assert soon == {c for c, b in clients if b and days_to_birthday(b, today) in week}, today
        assert birthdays or today == date(2026, 12, 28)
        assert soon


async def test_a_dedupe_key_reads_the_same_in_sql(core: Core) -> None:
    due = date(2026, 12, 3)
    client_id = await a_client(core, 1, next_visit_due=due)
    twins = [
        (
            dedupe_key("return_nudge:client", client_id, due),
            dedupe_key_sql("return_nudge:client", col(Client.id), col(Client.next_visit_due)),
        ),
        (
            dedupe_key("birthday", 2026, "client", client_id),
            dedupe_key_sql("birthday", 2026, "client", col(Client.id)),
        ),
        (dedupe_key("only", 7, due), dedupe_key_sql("only", 7, due)),
    ]
    async with core.db.reading() as session:
        for in_python, in_sql in twins:
            query = select(in_sql).where(col(Client.id) == client_id)
            assert (await session.exec(query)).one() == in_python
    assert twins[0][0] == f"return_nudge:client:{client_id}:2026-12-03"
    assert twins[2][0] == "only:7:2026-12-03"


async def test_an_offer_planned_already_is_found_but_not_planned_again(core: Core) -> None:
    client_id = await a_client(core, 1, birthday=date(1990, 11, 24))
    async with core.db.transaction() as session:
        rows = await planner(core).plan(session, NOW)
    assert rows.planned == {"birthday": 1}
    async with core.db.reading() as session:
        again = await planner(core)._birthdays(session, NOW)
        stored = (await session.exec(select(Outbox.dedupe_key))).all()
    assert again == [(client_id, None)]
    assert stored == [f"birthday:2026:client:{client_id}"]
