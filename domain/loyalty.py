"""Loyalty rules: the client's status, the ledger's balance and what lapses, what a visit
earns, and the discount a booking gets. Pure: no database, no clock (``now`` is an
argument). The programme's settings are `domain.business.Loyalty`; docs/loyalty.md tells
the whole story (where entries are written, and when).

The ledger is a list of entries in the programme's unit (stamps or points), each with a
signed ``delta``; the balance is their sum. Earnings lapse ``valid_days`` after they were
earned: replaying the entries in order (`replay`) says what is still live, what has lapsed
without an ``expire`` entry yet (``pending_expiry``, which the writer then records), and
when the next part lapses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from domain.retention import birthday_in_year
from domain.text import Translator

__all__ = [
    "REGULAR_FROM",
    "RETURNING_FROM",
    "Discount",
    "Entry",
    "Ledger",
    "Status",
    "amount_text",
    "best_discount",
    "birthday_gift_covers",
    "earned_by_visit",
    "percent_off",
    "points_discount",
    "replay",
    "status_of",
    "vip_ids",
]

RETURNING_FROM = 2  # completed visits: 1 new, 2–4 returning, 5 and more regular
REGULAR_FROM = 5
VIP_SHARE_DIVISOR = 5  # the top fifth (20 %) of clients by revenue, rounded up


class Status(StrEnum):
    """Where a client stands (DESIGN.md section 6); VIP is the top 20 % by revenue."""

    new = "new"
    returning = "returning"
    regular = "regular"
    vip = "vip"


def status_of(completed_visits: int, *, vip: bool = False) -> Status | None:
    """The client's status from their completed visits; None before the first one. VIP
    (the top 20 % by revenue over the last 365 days) comes first."""
    if vip:
        return Status.vip
    if completed_visits >= REGULAR_FROM:
        return Status.regular
    if completed_visits >= RETURNING_FROM:
        return Status.returning
    if completed_visits >= 1:
        return Status.new
    return None


def vip_ids(revenues: Mapping[int, Decimal]) -> set[int]:
    """The clients in the top 20 % by revenue (rounded up: 11 clients → 3), counting only
    clients with some revenue. A tie at the boundary goes to the client who joined first
    (the lower id), so the share stays 20 % even when many spent alike."""
    paying = sorted(
        ((amount, client_id) for client_id, amount in revenues.items() if amount > 0),
        key=lambda pair: (-pair[0], pair[1]),
    )
    top = -(-len(paying) // VIP_SHARE_DIVISOR)
    return {client_id for _, client_id in paying[:top]}


def amount_text(tr: Translator, kind: str, amount: int) -> str:
    """'2 stamps' / '300 bonus points': an amount in the programme's unit."""
    if kind == "stamps":
        return tr.n_("{n} stamp", "{n} stamps", amount).format(n=amount)
    return tr.n_("{n} bonus point", "{n} bonus points", amount).format(n=amount)


# --- the ledger ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line as the rules need it (storage.tables.LoyaltyEntry)."""

    id: int
    kind: str  # earn / spend / expire / reverse
    delta: int
    created_at: datetime
    expires_at: datetime | None = None
    visit_id: int | None = None


@dataclass(slots=True)
class _Lot:
    """What is left of one earning (or of a spend given back)."""

    left: int
    expires_at: datetime | None
    visit_id: int | None


@dataclass(frozen=True, slots=True)
class Ledger:
    """The balance replayed as of a moment.

    ``balance`` is what the client has (live earnings minus any debt a reversal left);
    ``pending_expiry`` has lapsed but has no ``expire`` entry yet: once it is written, the
    sum of the entries is ``balance`` again. ``lapsing`` lists the live parts that lapse,
    soonest first, as (moment, amount).
    """

    balance: int
    pending_expiry: int
    lapsing: tuple[tuple[datetime, int], ...] = field(default=())

    @property
    def next_lapse(self) -> tuple[datetime, int] | None:
        """The soonest moment part of the balance lapses, and how much lapses then."""
        if not self.lapsing or self.balance <= 0:
            return None
        moment = self.lapsing[0][0]
        amount = sum(left for when, left in self.lapsing if when == moment)
        return moment, min(amount, self.balance)


def replay(entries: Iterable[Entry], now: datetime) -> Ledger:
    """The ledger of one client as of `now`, from their entries in any order.

    - ``earn`` adds a lot that lapses at its ``expires_at`` (after paying any debt);
    - ``spend`` takes from the live lots, the soonest to lapse first; what they cannot
      cover becomes debt (a reversed earning that was already spent);
    - ``reverse`` with a negative delta undoes an earning: from that visit's lot first,
      then the other live lots, then as debt; with a positive delta it gives a spend
      back, into the lots it was taken from (with their own lapse times);
    - ``expire`` records what has lapsed.
    """
    lots: list[_Lot] = []
    lapsed = 0  # lapsed, not yet recorded by an expire entry
    debt = 0
    taken: dict[int | None, list[tuple[datetime | None, int]]] = {}

    def lapse_until(moment: datetime) -> None:
        nonlocal lapsed
        for lot in lots:
            if lot.left and lot.expires_at is not None and lot.expires_at <= moment:
                lapsed += lot.left
                lot.left = 0

    def take(amount: int, *, visit_id: int | None, own_first: bool) -> list[_Lot]:
        """Take `amount` from the live lots; the lots taken from, with what each gave."""
        nonlocal debt
        order = sorted(
            (lot for lot in lots if lot.left),
            key=lambda lot: (
                not (own_first and lot.visit_id == visit_id),
                lot.expires_at is None,
                lot.expires_at or now,
            ),
        )
        given = []
        for lot in order:
            if amount <= 0:
                break
            used = min(lot.left, amount)
            lot.left -= used
            amount -= used
            given.append(_Lot(used, lot.expires_at, lot.visit_id))
        debt += amount
        return given

    def add(amount: int, expires_at: datetime | None, visit_id: int | None) -> None:
        nonlocal debt
        paid = min(debt, amount)
        debt -= paid
        if amount - paid:
            lots.append(_Lot(amount - paid, expires_at, visit_id))

    for entry in sorted(entries, key=lambda e: (e.created_at, e.id)):
        lapse_until(entry.created_at)
        if entry.kind == "earn" and entry.delta > 0:
            add(entry.delta, entry.expires_at, entry.visit_id)
        elif entry.kind == "expire":
            lapsed = max(0, lapsed + entry.delta)
        elif entry.delta < 0:  # a spend, or a reversed earning
            own = entry.kind == "reverse"
            given = take(-entry.delta, visit_id=entry.visit_id, own_first=own)
            if entry.kind == "spend":
                spent = taken.setdefault(entry.visit_id, [])
                spent += [(lot.expires_at, lot.left) for lot in given]
        elif entry.delta > 0:  # a spend given back
            back = entry.delta
            for expires_at, amount in taken.pop(entry.visit_id, []):
                part = min(amount, back)
                if part:
                    add(part, expires_at, entry.visit_id)
                    back -= part
            if back:  # taken as debt, or a spend the ledger has no record of
                add(back, None, entry.visit_id)
        lapse_until(entry.created_at)
    lapse_until(now)
    live = sorted((lot for lot in lots if lot.left), key=lambda lot: lot.expires_at or now)
    lapsing = tuple((lot.expires_at, lot.left) for lot in live if lot.expires_at is not None)
    return Ledger(
        balance=sum(lot.left for lot in live) - debt, pending_expiry=lapsed, lapsing=lapsing
    )


def earned_by_visit(*, kind: str, paid: Decimal, points_percent: Decimal) -> int:
    """What one completed visit earns: a stamp, or a percent of what was paid in whole
    points (1 point = 1 unit of the currency, rounded down)."""
    if kind == "stamps":
        return 1
    return int((paid * points_percent / 100).to_integral_value(rounding=ROUND_FLOOR))


# --- discounts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discount:
    """What a booking gets off its list price, and why.

    ``source`` is stored on the visit: ``winback:<outbox id>``, ``birthday:<outbox id>``
    (an offer, used once), ``reward`` or ``points`` (paid from the ledger: ``spends``
    stamps or points)."""

    source: str
    amount: Decimal
    percent: int | None = None
    spends: int = 0

    @property
    def reason(self) -> str:
        return self.source.split(":", 1)[0]


def percent_off(price: Decimal, percent: int | Decimal) -> Decimal:
    """`percent` of `price`, to the kopeck (half up), never more than the price."""
    amount = (price * Decimal(percent) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return min(max(amount, Decimal(0)), price)


def points_discount(*, balance: int, price: Decimal, max_percent: int) -> int:
    """How many points a visit at `price` takes: all there are, up to `max_percent` of the
    price in whole units."""
    cap = int((price * max_percent / 100).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, min(balance, cap))


def best_discount(candidates: Sequence[Discount]) -> Discount | None:
    """One discount per visit: the largest; on a tie the earlier candidate (offers are
    listed before what the ledger pays, so a tie keeps the client's stamps and points)."""
    best: Discount | None = None
    for candidate in candidates:
        if candidate.amount > 0 and (best is None or candidate.amount > best.amount):
            best = candidate
    return best


def birthday_gift_covers(*, born: date, greeted_on: date, visit_day: date, valid_days: int) -> bool:
    """The birthday gift greeted on `greeted_on` covers a visit on `visit_day`: within
    `valid_days` of that birthday (the one nearest the greeting, so a greeting sent on
    31 December for a 1 January birthday counts)."""
    nearest = min(
        (
            birthday_in_year(born, year)
            for year in (greeted_on.year - 1, greeted_on.year, greeted_on.year + 1)
        ),
        key=lambda day: abs((day - greeted_on).days),
    )
    return abs((visit_day - nearest).days) <= valid_days


# --- VIP over a year, and the groups staff list (/segments) and write to (/broadcast)

VIP_DAYS = 365  # VIP is decided by the spend over this many days


def vip_since(today: date) -> date:
    """The first local date whose visits count for VIP."""
    return today - timedelta(days=VIP_DAYS)


def vip_ranking(spend: Mapping[int, Decimal]) -> list[int]:
    """The VIP clients (`vip_ids`), the biggest spender first: `spend` maps each client
    with a completed visit in the last 365 days to what they spent then."""
    return sorted(vip_ids(spend), key=lambda client_id: (-spend[client_id], client_id))


class Group(StrEnum):
    """A group of clients: a segment of docs/retention.md, VIP, or everyone."""

    hot = "hot"
    warm = "warm"
    sleeping = "sleeping"
    prospect = "prospect"
    vip = "vip"
    everyone = "all"


SEGMENT_GROUPS: tuple[str, ...] = tuple(g.value for g in Group if g is not Group.everyone)
BROADCAST_GROUPS: tuple[str, ...] = tuple(g.value for g in Group)
