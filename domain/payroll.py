"""The masters' pay for returns (docs/digest.md, "Payroll"): a bonus on every completed
visit, part of it paid now and part deferred until the client comes back; a fixed bonus for
bringing back a sleeping client.

Pure: ``today`` (a local date) decides what is still pending; dates compared are local.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.digest import Period, VisitRow, local_day, money


@dataclass(frozen=True, slots=True)
class PayRules:
    bonus_percent: Decimal  # of the visit's price
    return_share: Decimal  # the deferred part of the bonus, 0…1
    return_within_days: int
    winback_bonus: Decimal
    sleeping_after_days: int = 120  # a client away longer than this was sleeping

    def bonus(self, price: Decimal) -> Decimal:
        return price * self.bonus_percent / 100

    def deferred(self, price: Decimal) -> Decimal:
        return self.bonus(price) * self.return_share


@dataclass(frozen=True, slots=True)
class PaidVisit:
    """A completed visit with the client's completed visits around it (any master)."""

    master_id: int
    starts_at: datetime
    price: Decimal
    previous_at: datetime | None
    next_at: datetime | None  # the next completed visit up to today, if any


@dataclass(frozen=True, slots=True)
class MasterPay:
    name: str
    visits: int
    revenue: Decimal
    bonus: Decimal
    paid_now: Decimal
    released: Decimal
    pending: Decimal
    forfeited: Decimal
    winbacks: int
    winback_bonuses: Decimal

    @property
    def total(self) -> Decimal:
        """What the master has earned so far: paid now, released and win-back bonuses."""
        return self.paid_now + self.released + self.winback_bonuses

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "visits": self.visits,
            "revenue": str(self.revenue),
            "bonus": str(self.bonus),
            "paid_now": str(self.paid_now),
            "released": str(self.released),
            "pending": str(self.pending),
            "forfeited": str(self.forfeited),
            "winbacks": self.winbacks,
            "winback_bonuses": str(self.winback_bonuses),
            "total": str(self.total),
        }


def month_period(month: str) -> Period:
    """'2026-11' → the local dates 1–30 November 2026."""
    first = date.fromisoformat(f"{month}-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(first, following)


def payroll(
    visits: Iterable[PaidVisit],
    *,
    masters: Mapping[int, str],
    rules: PayRules,
    today: date,
    tz: ZoneInfo,
) -> list[MasterPay]:
    """Each master's pay for these visits (one local month's), as of ``today``.

    The deferred part of a visit's bonus is released when the client has a later completed
    visit within ``return_within_days`` of it, forfeited when that time has passed without
    one, pending otherwise. Sums are rounded half-up to cents once, per master.
    """
    sums: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    winbacks: dict[int, int] = defaultdict(int)
    for visit in visits:
        day = local_day(visit.starts_at, tz)
        figures = sums[visit.master_id]
        figures["visits"] += 1
        figures["revenue"] += visit.price
        figures["bonus"] += rules.bonus(visit.price)
        figures["paid_now"] += rules.bonus(visit.price) - rules.deferred(visit.price)
        figures[_deferred_fate(visit, day, rules, today, tz)] += rules.deferred(visit.price)
        if _brought_back(visit.previous_at, day, rules, tz):
            winbacks[visit.master_id] += 1
    return [
        _master_pay(name, sums[master_id], winbacks[master_id], rules)
        for master_id, name in masters.items()
    ]


def _deferred_fate(visit: PaidVisit, day: date, rules: PayRules, today: date, tz: ZoneInfo) -> str:
    deadline = day + timedelta(days=rules.return_within_days)
    if visit.next_at is not None and local_day(visit.next_at, tz) <= deadline:
        return "released"
    return "forfeited" if today > deadline else "pending"


def _brought_back(previous_at: datetime | None, day: date, rules: PayRules, tz: ZoneInfo) -> bool:
    """The client's previous completed visit was more than `sleeping_after_days` before."""
    if previous_at is None:
        return False
    return (day - local_day(previous_at, tz)).days > rules.sleeping_after_days


def _master_pay(
    name: str, sums: Mapping[str, Decimal], winbacks: int, rules: PayRules
) -> MasterPay:
    return MasterPay(
        name=name,
        visits=int(sums["visits"]),
        revenue=money(sums["revenue"]),
        bonus=money(sums["bonus"]),
        paid_now=money(sums["paid_now"]),
        released=money(sums["released"]),
        pending=money(sums["pending"]),
        forfeited=money(sums["forfeited"]),
        winbacks=winbacks,
        winback_bonuses=money(rules.winback_bonus * winbacks),
    )


@dataclass(frozen=True, slots=True)
class WeeklyReturnPay:
    """What one master's past work earned this week through returns."""

    master_id: int
    returns_released: int
    released: Decimal
    winbacks: int
    winback_bonuses: Decimal


def weekly_return_pay(
    visits: Iterable[VisitRow],
    *,
    period: Period,
    masters: Mapping[int, str],
    rules: PayRules,
    tz: ZoneInfo,
) -> list[WeeklyReturnPay]:
    """The deferred bonus released this week, credited to the master of the visit the
    client came back after (within ``return_within_days``), and the win-back bonuses of the
    week's visits to the master who served them."""
    released: dict[int, Decimal] = defaultdict(Decimal)
    returns: dict[int, int] = defaultdict(int)
    winbacks: dict[int, int] = defaultdict(int)
    for visit in visits:
        day = local_day(visit.starts_at, tz)
        if not visit.completed or day not in period or visit.previous_at is None:
            continue
        gap = (day - local_day(visit.previous_at, tz)).days
        if gap <= rules.return_within_days and visit.previous_master_id is not None:
            released[visit.previous_master_id] += rules.deferred(visit.previous_price or Decimal(0))
            returns[visit.previous_master_id] += 1
        if gap > rules.sleeping_after_days:
            winbacks[visit.master_id] += 1
    return [
        WeeklyReturnPay(
            master_id=master_id,
            returns_released=returns[master_id],
            released=money(released[master_id]),
            winbacks=winbacks[master_id],
            winback_bonuses=money(rules.winback_bonus * winbacks[master_id]),
        )
        for master_id in masters
    ]
