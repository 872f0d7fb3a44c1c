"""The owner's weekly digest: every figure of docs/digest.md computed from plain rows.

Pure: no database and no clock. ``as_of`` is a local date D and the report covers the seven
local days D−7 … D−1; instants in the rows are aware datetimes, turned into local dates in
the business time zone ``tz``. Money is Decimal; every rounding is half-up.

Two steps: the rows are reduced to `DigestFacts` (per-client and per-week tallies, the two
weeks of visits the masters' figures need), then `digest_of` computes every figure from
them. storage/digest.py does the reduction in SQL, over indexes, for a big history;
`facts_from_history` does it from full rows and is the reference (`weekly_digest`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from domain.retention import Segment, hot_since, segment_of, sleeping_before
from domain.slots import local_to_utc

COMPLETED = "completed"
NO_SHOW = "no_show"
CANCELLED = "cancelled"
LOW_RATING = 3  # a rating of 3 or less is a complaint
CHART_WEEKS = 12
_CENTS = Decimal("0.01")


# --- What the digest is computed from ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitRow:
    """A visit, with the client's previous completed visit (any master, any time)."""

    id: int
    client_id: int
    master_id: int
    starts_at: datetime
    status: str
    price: Decimal
    previous_at: datetime | None = None
    previous_master_id: int | None = None
    previous_price: Decimal | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def returning(self) -> bool:
        """The client had a completed visit before this one."""
        return self.previous_at is not None


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A client as of D: whether they count in the base (existed, not deleted), the last
    completed visit before D, and their revenue over [D−365, D) (None: no visit then)."""

    id: int
    in_base: bool
    last_completed_at: datetime | None
    revenue_last_year: Decimal | None


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    visit_id: int
    master_id: int
    rating: int
    status: str  # ok / open / resolved
    given_at: datetime
    resolved_at: datetime | None = None
    client_name: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class WinbackDecision:
    """A win-back the planner decided on: sent to the client, or recorded for the holdout."""

    client_id: int
    decided_at: datetime
    held_out: bool


@dataclass(frozen=True, slots=True)
class History:
    """Full rows for `weekly_digest`: `visits` holds at least every visit starting in the 90
    days before D, each with the client's previous completed visit."""

    visits: Sequence[VisitRow]
    clients: Sequence[ClientRow]
    feedback: Sequence[FeedbackRow]
    winbacks: Sequence[WinbackDecision]


@dataclass(frozen=True, slots=True)
class FirstVisit:
    """A client's first completed visit ever, and their next completed visit before D."""

    client_id: int
    at: datetime
    next_at: datetime | None


@dataclass(frozen=True, slots=True)
class WinbackOutcome:
    """A win-back decision and the client's first completed visit after it, before D."""

    decision: WinbackDecision
    returned_at: datetime | None


@dataclass(frozen=True, slots=True)
class DigestFacts:
    """What every figure of a digest as of D is computed from, already reduced.

    `visits`: at least every completed, no-show or cancelled visit starting in the 14 local
    days before D (the period and the week before), each with the client's previous
    completed visit. `segments`: the clients of the base as of D by segment.
    `first_visits`: the first completed visits ever on a day of `cohort_period(D)`.
    `winbacks`: the decisions on a day of `winback_period(D)`. `revenues`: how many clients
    brought each amount over `revenue_period(D)` (clients with a completed visit then).
    `weeks`: the chart's points.
    """

    visits: Sequence[VisitRow]
    feedback: Sequence[FeedbackRow]
    segments: Mapping[Segment, int]
    first_visits: Sequence[FirstVisit]
    winbacks: Sequence[WinbackOutcome]
    revenues: Mapping[Decimal, int]
    weeks: Sequence[WeekPoint]


# --- Periods and rounding ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates [start, end)."""

    start: date
    end: date

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day < self.end


@lru_cache(maxsize=1 << 16)
def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The local date of an instant. Memoised: visits start on a few slot times a day, and
    the digest asks for the same instants again and again (astimezone is slow)."""
    return moment.astimezone(tz).date()


def report_period(as_of: date) -> Period:
    """The seven local days before ``as_of``."""
    return Period(as_of - timedelta(days=7), as_of)


def two_weeks(as_of: date) -> Period:
    """The period and the week before it: the masters' returns are compared with it."""
    return Period(as_of - timedelta(days=14), as_of)


def cohort_period(as_of: date) -> Period:
    """The days whose first visits the second-visit rate follows: [D−90, D−60)."""
    return Period(as_of - timedelta(days=90), as_of - timedelta(days=60))


def winback_period(as_of: date) -> Period:
    """The days whose win-back decisions are measured: [D−90, D−30)."""
    return Period(as_of - timedelta(days=90), as_of - timedelta(days=30))


def revenue_period(as_of: date) -> Period:
    """The year the clients' revenue is summed over: [D−365, D)."""
    return Period(as_of - timedelta(days=365), as_of)


def chart_week_starts(as_of: date, weeks: int = CHART_WEEKS) -> list[date]:
    """The first days of the chart's seven-day weeks before D, oldest first."""
    return [as_of - timedelta(days=7 * (weeks - week)) for week in range(weeks)]


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day (its midnight, or the end of a DST gap over it)."""
    return local_to_utc(day, time(), tz)


@dataclass(frozen=True, slots=True)
class Span:
    """Instants [start, end): the first instants of a period's first day and of its end."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, period: Period, tz: ZoneInfo) -> Span:
        return cls(day_start(period.start, tz), day_start(period.end, tz))


@dataclass(frozen=True, slots=True)
class DigestWindows:
    """The instants a query for `DigestFacts` as of D compares with. An instant is on a
    local day or later exactly when it is at or after that day's first instant, so these
    draw the same lines as the local dates of the definitions (as long as the zone's clocks
    never go back across a midnight)."""

    end: datetime  # D: nothing on or after it counts
    visits: Span  # `two_weeks`
    period_start: datetime  # feedback given since then
    cohort: Span
    winbacks: Span
    year_start: datetime
    week_starts: Sequence[tuple[date, datetime]]  # the chart's weeks; the last ends at `end`
    hot_since: datetime  # a last visit on or after it: hot
    warm_since: datetime  # …on or after it: warm; before it: sleeping

    @classmethod
    def of(cls, as_of: date, tz: ZoneInfo, *, sleeping_after_days: int = 120) -> DigestWindows:
        return cls(
            end=day_start(as_of, tz),
            visits=Span.of(two_weeks(as_of), tz),
            period_start=day_start(report_period(as_of).start, tz),
            cohort=Span.of(cohort_period(as_of), tz),
            winbacks=Span.of(winback_period(as_of), tz),
            year_start=day_start(revenue_period(as_of).start, tz),
            week_starts=[(day, day_start(day, tz)) for day in chart_week_starts(as_of)],
            hot_since=day_start(hot_since(as_of), tz),
            warm_since=day_start(sleeping_before(as_of, sleeping_after_days), tz),
        )


def share(part: int, whole: int, places: int = 3) -> Decimal | None:
    """part / whole rounded half-up to ``places`` decimals; None when ``whole`` is 0."""
    if whole == 0:
        return None
    return round_half_up(Decimal(part) / Decimal(whole), places)


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(value: Decimal) -> Decimal:
    return value.quantize(_CENTS, rounding=ROUND_HALF_UP)


# --- The figures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MasterFigures:
    master_id: int
    name: str
    visits: int
    revenue: Decimal
    rating_average: Decimal | None
    returns: int


@dataclass(frozen=True, slots=True)
class Winback:
    offered: int
    offered_returned: int
    held_out: int
    held_out_returned: int

    @property
    def uplift(self) -> Decimal | None:
        """Offered return rate minus held-out return rate, from the exact rates."""
        if not self.offered or not self.held_out:
            return None
        exact = Decimal(self.offered_returned) / self.offered - (
            Decimal(self.held_out_returned) / self.held_out
        )
        return round_half_up(exact, 3)


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """One bar of the chart: completed visits of a week, by new and returning clients."""

    start: date
    new: int
    returning: int

    @property
    def returning_share(self) -> Decimal | None:
        return share(self.returning, self.new + self.returning)


@dataclass(frozen=True, slots=True)
class Digest:
    period: Period
    visits_completed: int
    revenue: Decimal
    new_clients: int
    returning_visits: int
    no_shows: int
    cancellations: int
    segments: Mapping[Segment, int]
    second_visit_rate: Decimal | None
    ratings: int
    rating_average: Decimal | None
    low_ratings: int
    complaints_open: int
    winback: Winback
    pareto_top20_share: Decimal | None
    staff: Sequence[MasterFigures]
    open_complaints: Sequence[FeedbackRow] = field(default=(), compare=False)

    @property
    def average_check(self) -> Decimal:
        if not self.visits_completed:
            return Decimal("0.00")
        return money(self.revenue / self.visits_completed)

    @property
    def returning_share(self) -> Decimal | None:
        return share(self.returning_visits, self.visits_completed)

    @property
    def no_show_rate(self) -> Decimal | None:
        return share(self.no_shows, self.visits_completed + self.no_shows)

    def as_json(self) -> dict[str, Any]:
        """Exactly the keys of docs/digest.md: money as strings with 2 decimals, shares and
        averages as numbers already rounded, null where there is nothing to measure."""
        return {
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.last.isoformat(),
            "visits_completed": self.visits_completed,
            "revenue": str(money(self.revenue)),
            "average_check": str(self.average_check),
            "new_clients": self.new_clients,
            "returning_share": _number(self.returning_share),
            "no_shows": self.no_shows,
            "no_show_rate": _number(self.no_show_rate),
            "cancellations": self.cancellations,
            "segments": {
                "hot": self.segments.get(Segment.hot, 0),
                "warm": self.segments.get(Segment.warm, 0),
                "sleeping": self.segments.get(Segment.sleeping, 0),
                "prospects": self.segments.get(Segment.prospect, 0),
            },
            "second_visit_rate": _number(self.second_visit_rate),
            "rating_average": _number(self.rating_average),
            "ratings": self.ratings,
            "low_ratings": self.low_ratings,
            "complaints_open": self.complaints_open,
            "winback": {
                "offered": self.winback.offered,
                "offered_returned": self.winback.offered_returned,
                "held_out": self.winback.held_out,
                "held_out_returned": self.winback.held_out_returned,
                "uplift": _number(self.winback.uplift),
            },
            "pareto_top20_share": _number(self.pareto_top20_share),
            "staff": [
                {
                    "name": master.name,
                    "visits": master.visits,
                    "revenue": str(money(master.revenue)),
                    "rating_average": _number(master.rating_average),
                    "returns": master.returns,
                }
                for master in self.staff
            ],
        }


def _number(value: Decimal | None) -> float | None:
    # Already rounded: the float prints as the rounded decimal (0.667, 4.5).
    return None if value is None else float(value)


def weekly_digest(
    history: History,
    *,
    as_of: date,
    tz: ZoneInfo,
    masters: Mapping[int, str],
    sleeping_after_days: int = 120,
) -> Digest:
    """Every figure of the digest as of ``as_of`` (docs/digest.md) from full rows; ``masters``
    maps a master's id to the name shown, in the order shown."""
    facts = facts_from_history(history, as_of=as_of, tz=tz, sleeping_after_days=sleeping_after_days)
    return digest_of(facts, as_of=as_of, tz=tz, masters=masters)


def facts_from_history(
    history: History, *, as_of: date, tz: ZoneInfo, sleeping_after_days: int = 120
) -> DigestFacts:
    """The reduction storage/digest.py does in SQL, done from full rows: the reference."""
    return DigestFacts(
        visits=history.visits,
        feedback=history.feedback,
        segments=segment_counts(history.clients, as_of, tz, warm_days=sleeping_after_days),
        first_visits=first_visits(history.visits, as_of, tz),
        winbacks=winback_outcomes(history.winbacks, history.visits),
        revenues=Counter(
            c.revenue_last_year for c in history.clients if c.revenue_last_year is not None
        ),
        weeks=weekly_points(history.visits, as_of, tz),
    )


def digest_of(
    facts: DigestFacts, *, as_of: date, tz: ZoneInfo, masters: Mapping[int, str]
) -> Digest:
    """Every figure of the digest as of ``as_of`` (docs/digest.md) from its facts."""
    period = report_period(as_of)

    def local(moment: datetime) -> date:
        return local_day(moment, tz)

    in_period = [v for v in facts.visits if local(v.starts_at) in period]
    done = [v for v in in_period if v.completed]
    given = [f for f in facts.feedback if local(f.given_at) in period]
    open_now = [f for f in facts.feedback if _open_as_of(f, as_of, local)]
    return Digest(
        period=period,
        visits_completed=len(done),
        revenue=sum((v.price for v in done), Decimal(0)),
        new_clients=sum(1 for v in done if not v.returning),
        returning_visits=sum(1 for v in done if v.returning),
        no_shows=sum(1 for v in in_period if v.status == NO_SHOW),
        cancellations=sum(1 for v in in_period if v.status == CANCELLED),
        segments=dict(facts.segments),
        second_visit_rate=second_visit_share(facts.first_visits, as_of, tz),
        ratings=len(given),
        rating_average=_mean_rating(given),
        low_ratings=sum(1 for f in given if f.rating <= LOW_RATING),
        complaints_open=len(open_now),
        winback=winback_tally(facts.winbacks, as_of, tz),
        pareto_top20_share=pareto_share(facts.revenues),
        staff=staff_figures(facts.visits, facts.feedback, period, tz, masters),
        open_complaints=sorted(open_now, key=lambda f: f.given_at),
    )


def _open_as_of(feedback: FeedbackRow, as_of: date, local: Callable[[datetime], date]) -> bool:
    """A complaint given before D and not resolved before D."""
    if feedback.status == "ok" or local(feedback.given_at) >= as_of:
        return False
    return feedback.resolved_at is None or local(feedback.resolved_at) >= as_of


def _mean_rating(feedback: Sequence[FeedbackRow]) -> Decimal | None:
    if not feedback:
        return None
    return round_half_up(Decimal(sum(f.rating for f in feedback)) / len(feedback), 2)


def segment_counts(
    clients: Iterable[ClientRow], as_of: date, tz: ZoneInfo, *, warm_days: int = 120
) -> dict[Segment, int]:
    """How many clients of the base are hot / warm / sleeping / prospects as of D."""
    counts = dict.fromkeys(Segment, 0)
    for client in clients:
        if not client.in_base:
            continue
        last = client.last_completed_at
        day = local_day(last, tz) if last is not None else None
        counts[segment_of(day, as_of, warm_days=warm_days)] += 1
    return counts


def _completed_starts(visits: Iterable[VisitRow]) -> dict[int, list[datetime]]:
    starts: dict[int, list[datetime]] = defaultdict(list)
    for visit in visits:
        if visit.completed:
            starts[visit.client_id].append(visit.starts_at)
    return starts


def first_visits(visits: Iterable[VisitRow], as_of: date, tz: ZoneInfo) -> list[FirstVisit]:
    """The first completed visits ever on a day of `cohort_period`, each with the client's
    next completed visit among ``visits``."""
    visits = list(visits)
    starts = _completed_starts(visits)
    cohort = cohort_period(as_of)
    return [
        FirstVisit(
            visit.client_id,
            visit.starts_at,
            min((at for at in starts[visit.client_id] if at > visit.starts_at), default=None),
        )
        for visit in visits
        if visit.completed and not visit.returning and local_day(visit.starts_at, tz) in cohort
    ]


def second_visit_share(firsts: Iterable[FirstVisit], as_of: date, tz: ZoneInfo) -> Decimal | None:
    """Among clients whose first completed visit ever was in [D−90, D−60), the share with a
    second completed visit within 60 days of the first."""
    cohort = cohort_period(as_of)
    came_back = total = 0
    for first in firsts:
        day = local_day(first.at, tz)
        if day not in cohort:
            continue
        total += 1
        came_back += first.next_at is not None and (local_day(first.next_at, tz) - day).days <= 60
    return share(came_back, total)


def second_visit_rate(visits: Iterable[VisitRow], as_of: date, tz: ZoneInfo) -> Decimal | None:
    """`second_visit_share` from full rows."""
    return second_visit_share(first_visits(visits, as_of, tz), as_of, tz)


def winback_outcomes(
    decisions: Iterable[WinbackDecision], visits: Iterable[VisitRow]
) -> list[WinbackOutcome]:
    """Each decision with the client's first completed visit after it among ``visits``."""
    starts = _completed_starts(visits)
    return [
        WinbackOutcome(
            decision,
            min(
                (at for at in starts[decision.client_id] if at > decision.decided_at), default=None
            ),
        )
        for decision in decisions
    ]


def winback_tally(outcomes: Iterable[WinbackOutcome], as_of: date, tz: ZoneInfo) -> Winback:
    """Win-backs decided in [D−90, D−30) and whether each client came back (a completed
    visit after the decision, within 30 days of its local date)."""
    window = winback_period(as_of)
    counts = {True: [0, 0], False: [0, 0]}  # held out → [decided, returned]
    for outcome in outcomes:
        decision, back = outcome.decision, outcome.returned_at
        decided = local_day(decision.decided_at, tz)
        if decided not in window:
            continue
        counts[decision.held_out][0] += 1
        counts[decision.held_out][1] += (
            back is not None and (local_day(back, tz) - decided).days <= 30
        )
    return Winback(counts[False][0], counts[False][1], counts[True][0], counts[True][1])


def winback_effect(
    decisions: Iterable[WinbackDecision], visits: Iterable[VisitRow], as_of: date, tz: ZoneInfo
) -> Winback:
    """`winback_tally` from full rows."""
    return winback_tally(winback_outcomes(decisions, visits), as_of, tz)


def pareto_share(clients_by_revenue: Mapping[Decimal, int]) -> Decimal | None:
    """The revenue share of the top 20 % of clients (rounded up: 11 clients → 3), from how
    many clients brought each amount. Ties do not change it: tied clients bring the same
    amount whichever of them is taken."""
    clients = sum(clients_by_revenue.values())
    total = sum((amount * n for amount, n in clients_by_revenue.items()), Decimal(0))
    if not clients or total <= 0:
        return None
    left = -(-clients // 5)
    best = Decimal(0)
    for amount in sorted(clients_by_revenue, reverse=True):
        taken = min(left, clients_by_revenue[amount])
        best += amount * taken
        left -= taken
        if not left:
            break
    return round_half_up(best / total, 3)


def pareto_top20_share(revenues: Sequence[Decimal]) -> Decimal | None:
    """`pareto_share` of the clients' revenues, one each."""
    return pareto_share(Counter(revenues))


def staff_figures(
    visits: Iterable[VisitRow],
    feedback: Iterable[FeedbackRow],
    period: Period,
    tz: ZoneInfo,
    masters: Mapping[int, str],
) -> list[MasterFigures]:
    """Per master: completed visits, revenue, mean rating of the feedback given in the
    period on their visits, and `returns`: the period's completed visits whose client's
    previous completed visit was with this master (whoever served them now)."""
    count: dict[int, int] = defaultdict(int)
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    returns: dict[int, int] = defaultdict(int)
    for visit in visits:
        if not visit.completed or local_day(visit.starts_at, tz) not in period:
            continue
        count[visit.master_id] += 1
        revenue[visit.master_id] += visit.price
        if visit.previous_master_id is not None:
            returns[visit.previous_master_id] += 1
    ratings: dict[int, list[FeedbackRow]] = defaultdict(list)
    for item in feedback:
        if local_day(item.given_at, tz) in period:
            ratings[item.master_id].append(item)
    return [
        MasterFigures(
            master_id=master_id,
            name=name,
            visits=count[master_id],
            revenue=revenue[master_id],
            rating_average=_mean_rating(ratings[master_id]),
            returns=returns[master_id],
        )
        for master_id, name in masters.items()
    ]


def weekly_points(
    visits: Iterable[VisitRow], as_of: date, tz: ZoneInfo, weeks: int = CHART_WEEKS
) -> list[WeekPoint]:
    """Completed visits of each of the last ``weeks`` seven-day periods before D (oldest
    first), split by whether the client had come before."""
    first = chart_week_starts(as_of, weeks)[0]
    new = [0] * weeks
    returning = [0] * weeks
    for visit in visits:
        if not visit.completed:
            continue
        offset = (local_day(visit.starts_at, tz) - first).days
        if 0 <= offset < 7 * weeks:
            (returning if visit.returning else new)[offset // 7] += 1
    return [
        WeekPoint(first + timedelta(days=7 * week), new[week], returning[week])
        for week in range(weeks)
    ]


def masters_with_fewer_returns(
    visits: Sequence[VisitRow], as_of: date, tz: ZoneInfo, masters: Mapping[int, str]
) -> list[tuple[MasterFigures, MasterFigures]]:
    """(this week, the week before) for each master whose `returns` fell."""
    now = staff_figures(visits, (), report_period(as_of), tz, masters)
    before = staff_figures(visits, (), report_period(as_of - timedelta(days=7)), tz, masters)
    return [(a, b) for a, b in zip(now, before, strict=True) if a.returns < b.returns]
