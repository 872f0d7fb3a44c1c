"""The retention engine over a crafted history: the clock moves minute by minute through
twelve days; every message kind appears exactly when it should, once, and every
guard holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.composition import Core, build_core_on
from domain.business import BusinessConfig
from domain.replies import Reply
from scheduler.delivery import Recipient
from scheduler.engine import Engine
from storage.db import Database
from storage.stats import refresh_client_stats
from storage.tables import Client, Outbox, OutboxStatus, Visit
from tests.helpers import add_client, add_visit, utc_visit

START = utc_visit(2026, 11, 23, 0)  # Monday 00:00 in Moscow
MASTERS_CHAT = {"artem": 7001, "ilya": 7002, "marina": 7003}


@dataclass
class Recorder:
    now: datetime = START
    sent: list[tuple[datetime, str, Reply]] = field(default_factory=list)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.sent.append((self.now, recipient.address, reply))


def _with_staff_chats(config: BusinessConfig) -> BusinessConfig:
    masters = [m.model_copy(update={"telegram_id": MASTERS_CHAT[m.key]}) for m in config.masters]
    return config.model_copy(update={"masters": masters})


@dataclass
class World:
    core: Core
    engine: Engine
    recorder: Recorder
    ids: dict[str, int]

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.core.config.tz).strftime("%m-%d %H:%M")

    def sent_to(self, name: str) -> list[tuple[str, str]]:
        """(local time, kind) of every message the client got."""
        chat = str(9000 + self.ids[name])
        return [
            (self.local(at), str(reply.kind))
            for at, address, reply in self.recorder.sent
            if address == chat
        ]

    def staff_got(self, master: str) -> list[tuple[str, str]]:
        chat = str(MASTERS_CHAT[master])
        return [
            (self.local(at), str(reply.kind))
            for at, address, reply in self.recorder.sent
            if address == chat
        ]


async def _client(core: Core, name: str, n: int, **fields: Any) -> int:
    defaults: dict[str, Any] = {
        "name": name,
        "phone": f"+7916000{n:04d}",
        "telegram_id": 9000 + n,
        "consent_at": START - timedelta(days=400),
        "marketing_opt_in_at": START - timedelta(days=400),
        "locale": "en",
        "created_at": START - timedelta(days=400),
    }
    client = await add_client(core, **{**defaults, **fields})
    assert client.id == n
    return n


async def _history(
    core: Core, client_id: int, master: str, service: str, starts: list[datetime]
) -> None:
    for start in starts:
        await add_visit(core, client_id=client_id, master=master, service=service, start=start)


async def _booked(
    core: Core, client_id: int, master: str, service: str, start: datetime, created: datetime
) -> int:
    visit = await add_visit(
        core, client_id=client_id, master=master, service=service, start=start, status="booked"
    )
    async with core.db.transaction() as session:
        row = await session.get(Visit, visit.id)
        assert row is not None
        row.created_at = created
        session.add(row)
    assert visit.id is not None
    return visit.id


@pytest.fixture
async def world(db: Database, config: BusinessConfig) -> World:
    config = _with_staff_chats(config)
    core = await build_core_on(db=db, config=config)
    ids: dict[str, int] = {}
    long_ago = START - timedelta(days=60)
    # Anna: a regular, haircut with Ilya every 28 days → next visit due Fri 27 Nov.
    ids["anna"] = await _client(core, "Anna", 1)
    await _history(
        core,
        1,
        "ilya",
        "haircut",
        [utc_visit(2026, 9, 4, 15), utc_visit(2026, 10, 2, 15), utc_visit(2026, 10, 30, 15)],
    )
    # Boris: booked a fade with Ilya on Wed 25 Nov 15:00 long ago; no offers wanted.
    ids["boris"] = await _client(core, "Boris", 2, marketing_opt_in_at=None)
    await _booked(core, 2, "ilya", "fade", utc_visit(2026, 11, 25, 15), long_ago)
    # Vera: has not come since July: sleeping → win-back.
    ids["vera"] = await _client(core, "Vera", 3)
    await _history(
        core, 3, "marina", "haircut", [utc_visit(2026, 6, 1, 11), utc_visit(2026, 7, 1, 11)]
    )
    # Gleb: sleeping too, but in the holdout group.
    ids["gleb"] = await _client(core, "Gleb", 4, holdout=True)
    await _history(
        core, 4, "artem", "haircut", [utc_visit(2026, 6, 2, 12), utc_visit(2026, 7, 2, 12)]
    )
    # Dasha: birthday on Thu 26 Nov, and her return nudge is due the same days.
    ids["dasha"] = await _client(core, "Dasha", 5, birthday=date(1995, 11, 26))
    await _history(
        core,
        5,
        "marina",
        "kids",
        [utc_visit(2026, 8, 20, 11), utc_visit(2026, 9, 24, 11), utc_visit(2026, 10, 29, 11)],
    )
    # Egor: a beard trim a week ago (the service has a care tip), one visit only.
    ids["egor"] = await _client(core, "Egor", 6)
    await _history(core, 6, "artem", "beard", [utc_visit(2026, 11, 16, 12)])
    # Zhanna: due for a nudge, but already booked ahead.
    ids["zhanna"] = await _client(core, "Zhanna", 7)
    await _history(
        core,
        7,
        "marina",
        "haircut",
        [utc_visit(2026, 9, 1, 10), utc_visit(2026, 9, 29, 10), utc_visit(2026, 10, 27, 10)],
    )
    await _booked(core, 7, "marina", "haircut", utc_visit(2026, 12, 15, 10), long_ago)
    # Ivan deleted his data, Kira blocked the bot: both sleeping and opted in.
    ids["ivan"] = await _client(core, "Ivan", 8, deleted_at=START - timedelta(days=10))
    ids["kira"] = await _client(core, "Kira", 9, unreachable_since=START - timedelta(days=10))
    for n in (8, 9):
        await _history(core, n, "artem", "haircut", [utc_visit(2026, 5, 5, 12)])
    # Lev booked on Tuesday 24 Nov at 10:00 only at 09:00 the same morning.
    ids["lev"] = await _client(core, "Lev", 10, marketing_opt_in_at=None)
    await _booked(
        core, 10, "artem", "shave", utc_visit(2026, 11, 24, 10), utc_visit(2026, 11, 24, 9)
    )
    async with core.db.transaction() as session:
        await refresh_client_stats(
            session=session,
            tz=config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )
    recorder = Recorder()
    engine = core.engine(channels={"telegram": recorder}, clock=lambda: recorder.now, paces=None)
    return World(core, engine, recorder, ids)


async def _run(world: World, until: datetime) -> None:
    while world.recorder.now < until:
        await world.engine.plan()
        await world.engine.send()
        world.recorder.now += timedelta(minutes=1)


async def test_every_kind_goes_out_once_at_its_moment_and_the_guards_hold(world: World) -> None:
    await _run(world, START + timedelta(days=12))
    anna, boris, vera, dasha, egor = (
        world.sent_to(n) for n in ("anna", "boris", "vera", "dasha", "egor")
    )

    # Anna: "time to come back" 3 days before Fri 27 Nov, at 10:00 when offers may go out;
    # no booking followed, so 10 days later a gift.
    assert anna == [("11-24 10:00", "return_nudge"), ("12-04 10:00", "warm_offer")]
    # Boris: reminders 24 h and 2 h before; the master is asked an hour after the end; no
    # answer, so at 23:00 the visit counts as done; the rating request waits for 08:00.
    # He never opted in to offers: no care tip for the fade.
    assert boris == [
        ("11-24 15:00", "reminder"),
        ("11-25 13:00", "reminder"),
        ("11-26 08:00", "feedback_request"),
    ]
    assert ("11-25 17:15", "visit_check") in world.staff_got("ilya")
    # Vera: one win-back when she is found sleeping; the second would be 60 days later.
    assert vera == [("11-23 10:00", "winback")]
    # Dasha: the birthday wins over the nudge the same day; the nudge waits out the cap
    # of one offer per 7 days.
    assert dasha == [("11-26 10:00", "birthday"), ("12-03 10:00", "return_nudge")]
    # Egor: the care tip 7 days after the beard trim (12:00), then his nudge.
    assert egor[0] == ("11-23 12:00", "care_tip")
    assert [kind for _, kind in egor] == ["care_tip", "return_nudge"]
    # Lev booked at 09:00 for 10:00: too late for the 24 h reminder, and the 2 h one
    # would have been due before he booked. Nobody marked the visit, so it counted as done
    # at 23:00 and the rating request waited for the morning.
    assert world.sent_to("lev") == [("11-25 08:00", "feedback_request")]
    # Nothing to the held-out, the booked-ahead, the deleted or the unreachable.
    for name in ("gleb", "zhanna", "ivan", "kira"):
        assert world.sent_to(name) == [], name

    # Every master got the day plan 30 minutes before opening on each working day.
    plans = [at for at, kind in world.staff_got("ilya") if kind == "staff_day_plan"]
    assert plans[:3] == ["11-24 11:30", "11-25 11:30", "11-26 11:30"]  # Ilya is off on Mondays

    # Nothing was sent twice: one message per outbox row that says sent.
    async with world.core.db.reading() as session:
        rows = (await session.exec(select(Outbox))).all()
    sent_rows = [r for r in rows if r.status == OutboxStatus.sent]
    assert len(sent_rows) == len(world.recorder.sent)
    held = [r for r in rows if r.status == OutboxStatus.held_out]
    assert [(r.kind, r.client_id) for r in held] == [("winback", world.ids["gleb"])]
    # No client message went out during the quiet hours, no offer outside 10:00-20:00.
    for at, _, reply in world.recorder.sent:
        hour = at.astimezone(world.core.config.tz).hour
        if reply.kind in ("visit_check", "staff_day_plan"):
            continue
        assert 8 <= hour < 22, (reply.kind, at)
        if reply.kind in ("care_tip", "return_nudge", "warm_offer", "winback", "birthday"):
            assert 10 <= hour < 20, (reply.kind, at)
    # The autocompleted visit is in the database as completed.
    async with world.core.db.reading() as session:
        visit = (
            await session.exec(select(Visit).where(Visit.client_id == world.ids["boris"]))
        ).one()
    assert visit.status == "completed"
    assert visit.completed_at == utc_visit(2026, 11, 25, 23)


async def test_planning_the_same_minute_twice_or_after_a_restart_adds_nothing(world: World) -> None:
    world.recorder.now = utc_visit(2026, 11, 24, 10)
    first = await world.engine.plan()
    assert first.total > 0
    again = await world.engine.plan()
    assert again.total == 0
    restarted = world.core.engine(
        channels={"telegram": world.recorder}, clock=lambda: world.recorder.now, paces=None
    )
    assert (await restarted.plan()).total == 0


async def test_after_hours_of_downtime_reminders_still_ahead_go_once_and_stale_ones_are_skipped(
    world: World,
) -> None:
    # The bot was off from Monday until Wednesday 25 Nov 14:30; Boris's visit is at 15:00.
    world.recorder.now = utc_visit(2026, 11, 25, 14, 30)
    await world.engine.plan()
    await world.engine.send()
    await world.engine.plan()
    await world.engine.send()
    assert world.sent_to("boris") == [("11-25 14:30", "reminder")]
    async with world.core.db.reading() as session:
        rows = (await session.exec(select(Outbox).where(Outbox.kind == "reminder"))).all()
    statuses = Counter((r.client_id, r.payload["hours"], r.status) for r in rows)
    assert statuses[(world.ids["boris"], 2, OutboxStatus.sent)] == 1
    assert statuses[(world.ids["boris"], 24, OutboxStatus.skipped)] == 1  # a nearer one went
    # Lev's visit on Tuesday has passed: nothing is sent for it.
    assert world.sent_to("lev") == []


async def test_a_booking_made_after_the_nudge_stops_the_warm_offer(world: World) -> None:
    await _run(world, utc_visit(2026, 11, 24, 10, 1))
    assert world.sent_to("anna") == [("11-24 10:00", "return_nudge")]
    async with world.core.db.transaction() as session:
        client = await session.get(Client, world.ids["anna"])
        assert client is not None
    await _booked(
        world.core,
        world.ids["anna"],
        "ilya",
        "haircut",
        utc_visit(2026, 11, 27, 15),
        utc_visit(2026, 11, 24, 11),
    )
    world.recorder.now = utc_visit(2026, 12, 4, 9, 59)
    await _run(world, utc_visit(2026, 12, 4, 10, 5))
    assert [kind for _, kind in world.sent_to("anna")] == ["return_nudge"]


async def test_the_nudge_offers_a_one_tap_booking_with_the_usual_master(world: World) -> None:
    world.recorder.now = utc_visit(2026, 11, 24, 10)
    await world.engine.plan()
    await world.engine.send()
    nudge = next(r for _, a, r in world.recorder.sent if a == str(9000 + world.ids["anna"]))
    assert nudge.text.startswith("Anna, it is nearly time for your Men's haircut.")
    assert "Илья" in nudge.text
    labels = [b.label for b in nudge.flat_buttons]
    # Her usual Friday 15:00 on the predicted day, Friday 27 November.
    assert labels[0] == "Book Fri, Nov 27, 15:00"
    assert labels[1:] == ["Other time", "Not now"]
    assert nudge.flat_buttons[0].payload.startswith("1:ok:")


def test_start_is_a_monday_in_moscow() -> None:
    assert START.astimezone(UTC).isoformat() == "2026-11-22T21:00:00+00:00"


async def _at(world: World, moment: datetime) -> None:
    world.recorder.now = moment
    await world.engine.plan()
    await world.engine.send()


async def test_a_birthday_is_not_lost_to_the_weekly_cap(world: World) -> None:
    async with world.core.db.transaction() as session:
        egor = await session.get(Client, world.ids["egor"])
        assert egor is not None
        egor.birthday = date(1990, 11, 25)
        session.add(egor)
    await _at(world, utc_visit(2026, 11, 23, 12))  # the care tip goes out
    await _at(world, utc_visit(2026, 11, 25, 10))  # two days later: his birthday
    assert world.sent_to("egor") == [("11-23 12:00", "care_tip"), ("11-25 10:00", "birthday")]


async def test_a_moved_visit_gets_its_reminders_again(world: World) -> None:
    await _at(world, utc_visit(2026, 11, 24, 15))  # 24 h before Wednesday 15:00
    async with world.core.db.transaction() as session:
        visit = (
            await session.exec(select(Visit).where(Visit.client_id == world.ids["boris"]))
        ).one()
        visit.starts_at, visit.ends_at = (
            utc_visit(2026, 11, 27, 15),
            utc_visit(2026, 11, 27, 16, 15),
        )
        visit.rescheduled_at = utc_visit(2026, 11, 24, 16)
        session.add(visit)
    await _at(world, utc_visit(2026, 11, 26, 15))  # 24 h before the new time
    await _at(world, utc_visit(2026, 11, 27, 13))  # 2 h before
    assert world.sent_to("boris") == [
        ("11-24 15:00", "reminder"),
        ("11-26 15:00", "reminder"),
        ("11-27 13:00", "reminder"),
    ]
    texts = [reply.text for _, address, reply in world.recorder.sent if address == str(9002)]
    assert "on Friday, November 27, 15:00" in texts[-1]
