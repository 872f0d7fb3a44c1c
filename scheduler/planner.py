"""The planner: what is due now, written to the outbox under a dedupe key per purpose.

One pass takes `now` and reads the database with a few indexed queries; running it twice
in the same minute, or after a restart, adds nothing. Transactional and staff messages are
planned when due (the sender holds client messages through the quiet hours); marketing is
planned only inside the marketing window, all candidates of a client together, so the
priority and the frequency caps decide between them.

Each message kind's timing is decided by one method here (`_reminders`, `_winbacks`, …);
docs/architecture.md lists them, docs/retention.md gives the rules they follow.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from domain.feedback import COMMENT_WAIT, REALERT_EVERY, REALERTS, alert_round
from domain.retention import (
    COUNTS_FOR_CAPS,
    KIND_CLASS,
    MessageClass,
    QuietHours,
    cap_allows,
    days_to_birthday,
    is_birthday_today,
    pick_by_priority,
    send_window_start,
    sleeping_before,
    winback_due,
    winbacks_this_dormancy,
)
from domain.slots import working_intervals
from storage.broadcasts import broadcasts_to_report, finish_broadcasts
from storage.catalog import Catalog
from storage.feedback import alert_row, alerted_staff
from storage.guards import marketable_sql, open_visit_sql, reachable_sql
from storage.loyalty import settle_visits
from storage.outbox import (
    dedupe_key,
    dedupe_key_sql,
    enqueue,
    marketing_times,
    next_due,
    planned_keys,
    planned_sql,
)
from storage.sqltime import days_after
from storage.stats import refresh_client_stats
from storage.tables import (
    ACTIVE_VISIT,
    Client,
    Feedback,
    FeedbackStatus,
    Outbox,
    OutboxStatus,
    Visit,
    VisitStatus,
)

MARKETING = [kind for kind, cls in KIND_CLASS.items() if cls is MessageClass.marketing]
LOOKBACK = timedelta(days=1)  # how far back a pass looks for what it may have missed
MARKETING_EVERY_MINUTES = 5
MARKED_WITHIN = timedelta(days=2)  # a visit is marked done within this long after it starts
# A birthday this many days ahead holds back lesser offers, and a nudge due within this many
# days of the birthday is carried by the greeting: the weekly cap would stop one of them.
BIRTHDAY_CARRIES_DAYS = 7
CARRIED_BY_BIRTHDAY = "carried by the birthday greeting"
# An offer a client could be planned, or None when its key is planned already.
Candidate = tuple[int, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class _ActiveVisit:
    id: int
    client_id: int
    master_id: int
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    client_reachable: bool
    status: str
    completed_at: datetime | None
    rescheduled_at: datetime | None

    @property
    def booked_at(self) -> datetime:
        """When the visit got its current time: booked, or moved."""
        return max(self.created_at, self.rescheduled_at or self.created_at)


@dataclass
class PlanResult:
    planned: Counter[str] = field(default_factory=Counter)
    held_out: int = 0
    completed_visits: int = 0

    @property
    def total(self) -> int:
        return sum(self.planned.values())


def quiet_hours(config: BusinessConfig) -> QuietHours:
    return config.retention.quiet_hours


def _not_snoozed(today: date) -> Any:
    """The client did not say "not now" to this cycle's nudge."""
    return or_(col(Client.nudge_snoozed_until).is_(None), col(Client.nudge_snoozed_until) <= today)


class Planner:
    def __init__(self, *, config: BusinessConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.tz = config.tz
        self.policy = config.retention
        self.hours = quiet_hours(config)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def at_local(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, self.tz).astimezone(UTC)

    async def plan(self, session: AsyncSession, now: datetime) -> PlanResult:
        result = PlanResult()
        visits = await self._active_visits(session, now)
        result.completed_visits = await self._autocomplete(session, now, visits)
        rows: list[dict[str, Any]] = []
        rows += self._reminders(visits, now)
        rows += self._visit_checks(visits, now)
        rows += self._feedback_requests(visits, now)
        rows += self._day_plans(now)
        rows += self._digests(now)
        rows += await self._broadcast_reports(session, now)
        rows += await self._complaint_alerts(session, now)
        if rows:
            known = await planned_keys(session=session, keys=[row["dedupe_key"] for row in rows])
            rows = [row for row in rows if row["dedupe_key"] not in known]
        # Offers depend on dates, not minutes: planning them every five minutes is enough
        # and keeps a pass cheap. They come unplanned already (`_marketing` made sure).
        if now.minute % MARKETING_EVERY_MINUTES == 0 and self._marketing_window(now):
            rows += await self._marketing(session, now)
        if rows:
            await enqueue(session=session, rows=rows, now=now, count=False)
        for row in rows:
            result.planned[row["kind"]] += 1
            result.held_out += row.get("status") == OutboxStatus.held_out
        return result

    # Visits: completed at the end of the day when the master did not answer.

    async def _active_visits(
        self, session: AsyncSession, now: datetime, *, ahead: timedelta = timedelta(0)
    ) -> list[_ActiveVisit]:
        """In one query, every visit a pass looks at: booked ones that have passed or start
        within the longest reminder offset (reminders, visit checks, end-of-day completion)
        and those completed recently enough to ask for a rating; `ahead` widens the first
        part (what a simulation needs to know of the coming hours)."""
        longest = timedelta(hours=max(self.policy.reminder_hours, default=0)) + ahead
        feedback_after = timedelta(hours=self.policy.feedback_after_hours)
        connection = await session.connection()
        rows = await connection.execute(
            sa_select(
                col(Visit.id),
                col(Visit.client_id),
                col(Visit.master_id),
                col(Visit.starts_at),
                col(Visit.ends_at),
                col(Visit.created_at),
                reachable_sql().label("reachable"),
                col(Visit.status),
                col(Visit.completed_at),
                col(Visit.rescheduled_at),
            )
            .join(Client, col(Client.id) == col(Visit.client_id))
            .where(
                or_(
                    and_(
                        col(Visit.status).in_(ACTIVE_VISIT), col(Visit.starts_at) <= now + longest
                    ),
                    and_(
                        col(Visit.status) == VisitStatus.completed,
                        # Bounds the index range: a visit is marked done within a day or two.
                        col(Visit.starts_at) > now - feedback_after - LOOKBACK - MARKED_WITHIN,
                        col(Visit.completed_at) > now - feedback_after - LOOKBACK,
                    ),
                )
            )
        )
        return [_ActiveVisit(*row) for row in rows.all()]

    async def _autocomplete(
        self, session: AsyncSession, now: datetime, visits: list[_ActiveVisit]
    ) -> int:
        """A visit nobody marked counts as done at the end of its day (23:00 by default)."""
        done = [
            visit
            for visit in visits
            if visit.status in ACTIVE_VISIT
            and visit.ends_at <= now
            and now >= self._autocomplete_at(visit)
        ]
        if not done:
            return 0
        await session.exec(
            update(Visit)
            .where(col(Visit.id).in_([visit.id for visit in done]))
            .values(status=VisitStatus.completed, completed_at=now)
        )
        await refresh_client_stats(
            session=session,
            tz=self.tz,
            return_days=self.return_days,
            client_ids=[visit.client_id for visit in done],
        )
        # Completed visits earn their stamps or points (and a friend's first, the referral).
        await settle_visits(
            session=session, config=self.config, visit_ids=[visit.id for visit in done], now=now
        )
        finished = {visit.id for visit in done}
        visits[:] = [
            replace(visit, status=VisitStatus.completed, completed_at=now)
            if visit.id in finished
            else visit
            for visit in visits
        ]
        return len(done)

    def _autocomplete_at(self, visit: _ActiveVisit) -> datetime:
        local_day = self.local(visit.ends_at).date()
        deadline = self.at_local(local_day, self.policy.visit_autocomplete_at)
        if deadline < visit.ends_at:  # a visit ending after the deadline closes next day
            deadline = self.at_local(
                local_day + timedelta(days=1), self.policy.visit_autocomplete_at
            )
        return deadline

    async def next_moment(self, session: AsyncSession, now: datetime) -> datetime:
        """The earliest moment after `now` when a pass may plan something or a planned
        message falls due. Passes at the moments in between would find nothing to do, so a
        simulation jumps from one such moment to the next instead of minute by minute."""
        horizon = now + timedelta(days=1)
        moments = [horizon, self._next_marketing_mark(now)]
        check_after = timedelta(minutes=self.policy.visit_check_after_minutes)
        feedback_after = timedelta(hours=self.policy.feedback_after_hours)
        for visit in await self._active_visits(session, now, ahead=horizon - now):
            if visit.status in ACTIVE_VISIT:
                moments += [
                    visit.starts_at - timedelta(hours=h) for h in self.policy.reminder_hours
                ]
                moments += [visit.ends_at + check_after, self._autocomplete_at(visit)]
            elif visit.completed_at is not None:
                moments.append(visit.completed_at + feedback_after)
        moments += self._day_plan_moments(now) + self._digest_moments(now)
        if await broadcasts_to_report(session=session, now=now):
            moments.append(now + timedelta(minutes=1))
        moments += await self._complaint_moments(session, now)
        due = await next_due(session=session)
        if due is not None:
            moments.append(max(due, now + timedelta(minutes=1)))  # a backlog: soon again
        return min(moment for moment in moments if moment > now)

    def _next_marketing_mark(self, now: datetime) -> datetime:
        step = timedelta(minutes=MARKETING_EVERY_MINUTES)
        mark = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5) + step
        opens = send_window_start(mark, MessageClass.marketing, self.tz, self.hours)
        late = (opens - mark) % step
        return opens + (step - late if late else timedelta(0))

    def _day_plan_moments(self, now: datetime) -> list[datetime]:
        before = timedelta(minutes=self.policy.day_plan_before_opening_minutes)
        today = self.local(now).date()
        moments = []
        for master in self.catalog.masters.values():
            if not master.telegram_id:
                continue
            for day in (today, today + timedelta(days=1)):
                shifts = working_intervals(day, master.hours, self.tz)
                if shifts:
                    moments.append(shifts[0].start - before)
        return moments

    @property
    def return_days(self) -> dict[int, int]:
        return {s.id: s.return_interval_days for s in self.catalog.services.values()}

    # Transactional.

    def _reminders(self, visits: list[_ActiveVisit], now: datetime) -> list[dict[str, Any]]:
        offsets = sorted(self.policy.reminder_hours)  # nearest first: 2 h, then 24 h
        window = send_window_start(now, MessageClass.transactional, self.tz, self.hours)
        rows = []
        for visit in visits:
            active = visit.status in ACTIVE_VISIT
            if not active or not visit.client_reachable or visit.starts_at <= now - LOOKBACK:
                continue
            superseded = False
            for hours in offsets:
                due = visit.starts_at - timedelta(hours=hours)
                if due > now or visit.booked_at > due:  # not yet, or booked after that moment
                    continue
                # The key names the visit's time too: a moved visit is reminded again.
                start = int(visit.starts_at.timestamp() // 60)
                row = {
                    "kind": "reminder",
                    "client_id": visit.client_id,
                    "due_at": due,
                    "dedupe_key": f"reminder:{hours}h:visit:{visit.id}:{start}",
                    "payload": {"visit_id": visit.id, "hours": hours},
                }
                if visit.starts_at <= now:
                    row |= {"status": OutboxStatus.skipped, "last_error": "the visit has begun"}
                elif superseded:
                    row |= {"status": OutboxStatus.skipped, "last_error": "a nearer reminder"}
                elif window >= visit.starts_at:
                    row |= {"status": OutboxStatus.skipped, "last_error": "quiet hours until then"}
                rows.append(row)
                superseded = True
        return rows

    def _feedback_requests(self, visits: list[_ActiveVisit], now: datetime) -> list[dict[str, Any]]:
        after = timedelta(hours=self.policy.feedback_after_hours)
        return [
            {
                "kind": "feedback_request",
                "client_id": visit.client_id,
                "due_at": visit.completed_at + after,
                "dedupe_key": f"feedback:visit:{visit.id}",
                "payload": {"visit_id": visit.id},
            }
            for visit in visits
            if visit.status == VisitStatus.completed
            and visit.client_reachable
            and visit.completed_at is not None
            and now - after - LOOKBACK < visit.completed_at <= now - after
        ]

    # Staff.

    def _visit_checks(self, visits: list[_ActiveVisit], now: datetime) -> list[dict[str, Any]]:
        after = timedelta(minutes=self.policy.visit_check_after_minutes)
        with_chat = {m.id for m in self.catalog.masters.values() if m.telegram_id}
        return [
            {
                "kind": "visit_check",
                "staff_id": visit.master_id,
                "channel": "telegram",
                "due_at": visit.ends_at + after,
                "dedupe_key": f"visit_check:visit:{visit.id}",
                "payload": {"visit_id": visit.id},
            }
            for visit in visits
            if visit.status in ACTIVE_VISIT
            and visit.master_id in with_chat
            and now - LOOKBACK < visit.ends_at <= now - after
        ]

    def _day_plans(self, now: datetime) -> list[dict[str, Any]]:
        before = timedelta(minutes=self.policy.day_plan_before_opening_minutes)
        today = self.local(now).date()
        rows = []
        for master in self.catalog.masters.values():
            if not master.telegram_id:
                continue
            shifts = working_intervals(today, master.hours, self.tz)
            if not shifts:
                continue
            due = shifts[0].start - before
            if due <= now < shifts[0].start:
                rows.append(
                    {
                        "kind": "staff_day_plan",
                        "staff_id": master.id,
                        "channel": "telegram",
                        "due_at": due,
                        "dedupe_key": f"staff_day_plan:{today.isoformat()}:staff:{master.id}",
                        "payload": {"day": today.isoformat()},
                    }
                )
        return rows

    def _digest_due(self, day: date) -> datetime | None:
        """When the owner's weekly digest is due on this local day, if it is its weekday."""
        plan = self.config.digest
        return self.at_local(day, plan.at) if day.weekday() == plan.weekday_index else None

    def _digest_moments(self, now: datetime) -> list[datetime]:
        today = self.local(now).date()
        due = [self._digest_due(today + timedelta(days=n)) for n in range(8)]
        return [moment for moment in due if moment is not None]

    def _digests(self, now: datetime) -> list[dict[str, Any]]:
        """The digest of the week before today, to every owner with a chat, once a week
        (later on that day if the bot was down at the hour)."""
        today = self.local(now).date()
        due = self._digest_due(today)
        if due is None or now < due:
            return []
        return [
            {
                "kind": "digest",
                "staff_id": master.id,
                "channel": "telegram",
                "due_at": due,
                "dedupe_key": f"digest:{today.isoformat()}:staff:{master.id}",
                "payload": {"as_of": today.isoformat()},
            }
            for master in self.catalog.masters.values()
            if master.role == "owner" and master.telegram_id
        ]

    async def _broadcast_reports(
        self, session: AsyncSession, now: datetime
    ) -> list[dict[str, Any]]:
        """Once every message of a broadcast is sent or skipped, whoever sent it is told
        how it went."""
        return [
            {
                "kind": "broadcast_report",
                "staff_id": broadcast.created_by,
                "channel": "telegram",
                "due_at": now,
                "dedupe_key": f"broadcast_report:{broadcast.id}",
                "payload": {"broadcast_id": broadcast.id},
            }
            for broadcast in await finish_broadcasts(session=session, now=now)
        ]

    async def _open_complaints(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[int, datetime]]:
        """Open complaints young enough to be alerted or alerted again (id, given at)."""
        oldest = now - REALERT_EVERY * REALERTS - LOOKBACK
        rows = await session.exec(
            select(Feedback.id, Feedback.created_at).where(
                col(Feedback.status) == FeedbackStatus.open, col(Feedback.created_at) > oldest
            )
        )
        return [(feedback_id, given) for feedback_id, given in rows.all() if feedback_id]

    async def _complaint_alerts(self, session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
        """An open complaint goes to the owner and the administrators at once (the
        conversation sends it when the client has said what went wrong; here, when they
        did not answer within COMMENT_WAIT), and to the owner again every 24 hours while it
        is open, for a week: one alert per complaint per day."""
        complaints = [
            (feedback_id, given)
            for feedback_id, given in await self._open_complaints(session, now)
            if given <= now - COMMENT_WAIT
        ]
        if not complaints:
            return []
        first = await alerted_staff(session=session)
        again = await alerted_staff(session=session, repeat=True)
        rows = []
        for feedback_id, given in complaints:
            stage = alert_round(given, now)
            due = given + COMMENT_WAIT if stage == 0 else given + stage * REALERT_EVERY
            rows += [
                alert_row(feedback_id=feedback_id, staff_id=staff_id, due_at=due, stage=stage)
                for staff_id in (again if stage else first)
            ]
        return rows

    async def _complaint_moments(self, session: AsyncSession, now: datetime) -> list[datetime]:
        moments = []
        for _, given in await self._open_complaints(session, now):
            stage = alert_round(given, now)
            if given + COMMENT_WAIT > now:
                moments.append(given + COMMENT_WAIT)
            elif stage < REALERTS:
                moments.append(given + (stage + 1) * REALERT_EVERY)
        return moments

    # Marketing.

    def _marketing_window(self, now: datetime) -> bool:
        return send_window_start(now, MessageClass.marketing, self.tz, self.hours) == now

    async def _marketing(self, session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
        # Of a client's offers of one kind the first found counts; planned already, it
        # leaves that kind nothing to plan.
        candidates: dict[int, dict[str, dict[str, Any] | None]] = defaultdict(dict)
        for offer, found in (
            ("birthday", await self._birthdays(session, now)),
            ("winback", await self._winbacks(session, now)),
            ("warm_offer", await self._warm_offers(session, now)),
            ("return_nudge", await self._return_nudges(session, now)),
            ("care_tip", await self._care_tips(session, now)),
        ):
            for client_id, row in found:
                candidates[client_id].setdefault(offer, row)
        waiting = {
            client_id: unplanned
            for client_id, kinds in candidates.items()
            if (unplanned := {k: r for k, r in kinds.items() if r is not None})
        }
        if not waiting:
            return []
        # Cap history only for the clients who still have something to be planned.
        history = await marketing_times(
            session=session,
            client_ids=waiting,
            kinds=[*MARKETING, *COUNTS_FOR_CAPS],
            since=now - timedelta(days=30),
        )
        caps = self.policy.caps
        today = self.local(now).date()
        birthday_soon = await self._birthday_within_a_week(session, today) & waiting.keys()
        chosen = []
        for client_id, unplanned in waiting.items():
            kind = pick_by_priority(unplanned)
            if kind is None:
                continue
            row = unplanned[kind]
            if row.get("status") == OutboxStatus.held_out:
                chosen.append(row)  # held out: recorded, not sent, so it counts for no cap
            elif kind != "birthday" and client_id in birthday_soon:
                continue  # the birthday, days away, outranks it and would be capped by it
            elif cap_allows(history.get(client_id, []), now, caps):
                chosen.append(row)
        chosen = await self._first_winbacks_within_the_day(session, now, chosen)
        return chosen + await self._nudges_carried_by_birthdays(session, now, chosen)

    async def _first_winbacks_within_the_day(
        self, session: AsyncSession, now: datetime, chosen: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """At most `winbacks_per_day` first win-backs a local day (the most recently lapsed
        first), so a base with many sleeping clients is written to over days and the shop
        is not flooded with returns at once. The others wait for the next days."""
        first = [r for r in chosen if r["kind"] == "winback" and r["payload"].get("number") == 1]
        if not first:
            return chosen
        today = self.local(now).date()
        sent_today = await session.exec(
            select(func.count()).where(
                col(Outbox.kind) == "winback",
                col(Outbox.dedupe_key).like("winback:1:%"),
                col(Outbox.due_at) >= self.at_local(today, time()),
            )
        )
        room = max(0, self.policy.winbacks_per_day - sent_today.one())
        # The dormancy date ends the key: the latest lapse first.
        first.sort(key=lambda r: (r["dedupe_key"].rsplit(":", 1)[-1], r["client_id"]), reverse=True)
        later = {id(row) for row in first[room:]}
        return [row for row in chosen if id(row) not in later]

    async def _birthday_within_a_week(self, session: AsyncSession, today: date) -> set[int]:
        """Clients whose birthday is in the coming 7 days (not today)."""
        days = [today + timedelta(days=n) for n in range(1, BIRTHDAY_CARRIES_DAYS + 1)]
        born = await self._born_on(session, days)
        if not born:
            return set()
        result = await session.exec(
            select(col(Client.id), col(Client.birthday)).where(col(Client.birthday).in_(born))
        )
        return {
            client_id
            for client_id, birthday in result.all()
            if client_id is not None
            and birthday is not None
            and days_to_birthday(birthday, today) in range(1, BIRTHDAY_CARRIES_DAYS + 1)
        }

    async def _nudges_carried_by_birthdays(
        self, session: AsyncSession, now: datetime, chosen: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A nudge due within a week of a birthday rides on the birthday greeting (its
        one-tap booking) instead of following it: the nudge is recorded as carried."""
        birthdays = {row["client_id"]: row for row in chosen if row["kind"] == "birthday"}
        if not birthdays:
            return []
        nudges = await self._return_nudges(
            session, now, extra_days=BIRTHDAY_CARRIES_DAYS, client_ids=list(birthdays)
        )
        carried = []
        for client_id, nudge in nudges:
            if nudge is None:
                continue  # that nudge went out already
            birthday = birthdays[client_id]
            birthday["payload"] = {**birthday["payload"], **nudge["payload"]}
            carried.append(
                nudge | {"status": OutboxStatus.skipped, "last_error": CARRIED_BY_BIRTHDAY}
            )
        return carried

    def _offer(
        self, kind: str, client_id: int, key: tuple[Any, ...], now: datetime, **payload: Any
    ) -> dict[str, Any]:
        """An offer to plan; `key` holds the parts of its dedupe key (`dedupe_key`)."""
        return {
            "kind": kind,
            "client_id": client_id,
            "due_at": now,
            "dedupe_key": dedupe_key(*key),
            "payload": payload,
            "campaign": kind,
        }

    async def _birthdays(self, session: AsyncSession, now: datetime) -> list[Candidate]:
        local = self.local(now)
        if local.time() < self.policy.birthday_at:
            return []
        today = local.date()
        born = await self._born_on(session, [today])
        if not born:
            return []
        key = ("birthday", today.year, "client")
        clients = await session.exec(
            select(
                col(Client.id),
                col(Client.birthday),
                planned_sql(dedupe_key_sql(*key, col(Client.id))),
            ).where(col(Client.birthday).in_(born), marketable_sql())
        )
        return [
            (
                client_id,
                None if planned else self._offer("birthday", client_id, (*key, client_id), now),
            )
            for client_id, birthday, planned in clients.all()
            if client_id is not None and is_birthday_today(birthday, today)
        ]

    async def _born_on(self, session: AsyncSession, days: list[date]) -> list[date]:
        """Every birth date whose birthday falls on one of these days (29 February on 28
        February of a non-leap year), in the years the stored birthdays span: a few index
        probes instead of reading every client."""
        first = await session.exec(select(func.min(Client.birthday)))
        last = await session.exec(select(func.max(Client.birthday)))
        since, until = first.one(), last.one()
        if since is None or until is None:
            return []
        dates = {(day.month, day.day) for day in days}
        dates |= {(2, 29) for day in days if day == _feb28(day)}
        born = []
        for year in range(since.year, until.year + 1):
            for month, day in sorted(dates):
                try:
                    born.append(date(year, month, day))
                except ValueError:  # 29 February of a non-leap year
                    continue
        return born

    def _sleeping_since(self, today: date) -> datetime:
        """The instant before which a last visit makes a client sleeping (`segment_of`)."""
        return self.at_local(sleeping_before(today, self.policy.sleeping_after_days), time())

    async def _winbacks(self, session: AsyncSession, now: datetime) -> list[Candidate]:
        """Sleeping clients the tested rule `winback_due` says are due today.

        One query narrows the field: sleeping clients who may get offers, without those
        who surely are not due — `winback_max_per_dormancy` win-backs already since the
        last visit, or one within `winback_gap_days` — and gives each of the rest with the
        win-backs sent (or held out) to them since their last visit; `winback_due` decides.
        The narrowing counts only win-backs two days or more after the last visit (surely
        on a later local day, as the rule counts them), so it never drops a client the
        rule would pick."""
        policy = self.policy
        if policy.winback_max_per_dormancy == 0:
            return []
        today = self.local(now).date()
        counted = (*_LIVE, OutboxStatus.held_out)
        surely_this_dormancy = and_(
            col(Outbox.client_id) == col(Client.id),
            col(Outbox.kind) == "winback",
            col(Outbox.due_at) >= days_after(col(Client.last_visit_at), 2),
            col(Outbox.status).in_(counted),
        )
        within_the_gap = self.at_local(today - timedelta(days=policy.winback_gap_days - 1), time())
        maybe_due = (
            sa_select(col(Client.id), col(Client.last_visit_at), col(Client.holdout))
            .outerjoin(Outbox, surely_this_dormancy)
            .where(
                marketable_sql(),
                col(Client.last_visit_at) < self._sleeping_since(today),
                ~open_visit_sql(many=True),
            )
            .group_by(col(Client.id), col(Client.last_visit_at), col(Client.holdout))
            .having(
                func.count(col(Outbox.id)) < policy.winback_max_per_dormancy,
                or_(
                    func.max(col(Outbox.due_at)).is_(None),
                    func.max(col(Outbox.due_at)) < within_the_gap,
                ),
            )
            .subquery()
        )
        # Win-backs after the last visit's instant: a superset of those after its local
        # day, which `winbacks_this_dormancy` keeps.
        since_the_visit = and_(
            col(Outbox.client_id) == maybe_due.c.id,
            col(Outbox.kind) == "winback",
            col(Outbox.due_at) > maybe_due.c.last_visit_at,
            col(Outbox.status).in_(counted),
        )
        connection = await session.connection()
        found = await connection.execute(
            sa_select(maybe_due, col(Outbox.due_at)).outerjoin(Outbox, since_the_visit)
        )
        clients: dict[int, tuple[datetime, bool, list[date]]] = {}
        for client_id, last_visit_at, holdout, sent_at in found:
            client = clients.setdefault(client_id, (last_visit_at, holdout, []))
            if sent_at is not None:
                client[2].append(self.local(sent_at).date())
        rows = []
        for client_id, (last_visit_at, holdout, previous) in clients.items():
            last = self.local(last_visit_at).date()
            if not winback_due(
                last_completed_local=last,
                today=today,
                previous_winbacks=previous,
                sleeping_after_days=policy.sleeping_after_days,
                max_per_dormancy=policy.winback_max_per_dormancy,
                gap_days=policy.winback_gap_days,
            ):
                continue
            number = len(winbacks_this_dormancy(last, previous)) + 1
            row = self._offer(
                "winback",
                client_id,
                ("winback", number, "client", client_id, last),
                now,
                number=number,
                # The answer gives what this message offered, whatever the config says later.
                discount_percent=self.config.offers.winback_discount_percent,
            )
            if holdout:
                row["status"] = OutboxStatus.held_out
            rows.append(row)
        known = await planned_keys(session=session, keys=[row["dedupe_key"] for row in rows])
        return [(row["client_id"], None if row["dedupe_key"] in known else row) for row in rows]

    async def _warm_offers(self, session: AsyncSession, now: datetime) -> list[Candidate]:
        after = timedelta(days=self.policy.warm_offer_after_days)
        # The nudge worked if the client booked after it, or came in after it (a visit
        # already under way when the nudge went out counts: the client was in the chair).
        answered = exists().where(
            col(Visit.client_id) == col(Outbox.client_id),
            or_(
                col(Visit.created_at) > col(Outbox.sent_at),
                and_(
                    col(Visit.status) == VisitStatus.completed,
                    col(Visit.ends_at) > col(Outbox.sent_at),
                ),
            ),
        )
        key = ("warm_offer:client", col(Outbox.client_id), "nudge", col(Outbox.id))
        nudges = await session.exec(
            select(col(Outbox.id), col(Outbox.client_id), planned_sql(dedupe_key_sql(*key)))
            .join(Client, col(Client.id) == col(Outbox.client_id))
            .where(
                Outbox.kind == "return_nudge",
                Outbox.status == OutboxStatus.sent,
                col(Outbox.sent_at) <= now - after,
                col(Outbox.sent_at) > now - after - timedelta(days=7),
                ~answered,
                marketable_sql(),
                _not_snoozed(self.local(now).date()),
                ~open_visit_sql(),
            )
        )
        return [
            (
                client_id,
                None
                if planned
                else self._offer(
                    "warm_offer",
                    client_id,
                    ("warm_offer:client", client_id, "nudge", nudge_id),
                    now,
                ),
            )
            for nudge_id, client_id, planned in nudges.all()
            if client_id is not None
        ]

    async def _return_nudges(
        self,
        session: AsyncSession,
        now: datetime,
        *,
        extra_days: int = 0,
        client_ids: list[int] | None = None,
    ) -> list[Candidate]:
        """Clients whose predicted visit is `nudge_lead_days` away or nearer (or, with
        `extra_days`, that many days further) and who may be nudged."""
        today = self.local(now).date()
        lead = timedelta(days=self.policy.nudge_lead_days + extra_days)
        only = [col(Client.id).in_(client_ids)] if client_ids is not None else []
        key = ("return_nudge:client", col(Client.id), col(Client.next_visit_due))
        clients = await session.exec(
            select(
                col(Client.id), col(Client.next_visit_due), planned_sql(dedupe_key_sql(*key))
            ).where(
                marketable_sql(),
                col(Client.next_visit_due) <= today + lead,
                col(Client.next_visit_due) > today - timedelta(days=14),
                col(Client.last_visit_at) >= self._sleeping_since(today),
                _not_snoozed(today),
                ~open_visit_sql(many=True),
                *only,
            )
        )
        return [
            (
                client_id,
                None
                if planned
                else self._offer(
                    "return_nudge",
                    client_id,
                    ("return_nudge:client", client_id, due),
                    now,
                    predicted=due.isoformat(),
                ),
            )
            for client_id, due, planned in clients.all()
            if client_id is not None and due is not None
        ]

    async def _care_tips(self, session: AsyncSession, now: datetime) -> list[Candidate]:
        with_tip = [s.id for s in self.catalog.services.values() if s.care_tip]
        if not with_tip:
            return []
        after = timedelta(days=self.policy.care_tip_after_days)
        key = ("care_tip:visit", col(Visit.id))
        visits = await session.exec(
            select(col(Visit.id), col(Visit.client_id), planned_sql(dedupe_key_sql(*key)))
            .join(Client, col(Client.id) == col(Visit.client_id))
            .where(
                Visit.status == VisitStatus.completed,
                col(Visit.service_id).in_(with_tip),
                col(Visit.starts_at) <= now - after,
                col(Visit.starts_at) > now - after - timedelta(days=7),
                marketable_sql(),
            )
        )
        return [
            (
                client_id,
                None
                if planned
                else self._offer(
                    "care_tip", client_id, ("care_tip:visit", visit_id), now, visit_id=visit_id
                ),
            )
            for visit_id, client_id, planned in visits.all()
            if visit_id is not None
        ]


_LIVE = (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.sent)


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    """Ids in slices small enough for one IN (...) on every database."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _feb28(today: date) -> date:
    """28 February of a non-leap year (when 29 February birthdays are celebrated), else a
    date that never equals `today`."""
    if today.month == 2 and today.day == 28:
        try:
            date(today.year, 2, 29)
        except ValueError:
            return today
    return date.min
