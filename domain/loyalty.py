"""A client's loyalty status and VIP (docs/retention.md, "Loyalty"), and the groups of
clients staff list (/segments) and write to (/broadcast).

Pure: the caller passes the counts and the amounts; no database and no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

REGULAR_FROM = 5  # completed visits: "more than 4 purchases makes a habit"
VIP_DAYS = 365  # VIP is decided by the spend over this many days


class Loyalty(StrEnum):
    new = "new"  # 1 completed visit
    returning = "returning"  # 2–4
    regular = "regular"  # 5 or more


def loyalty_status(completed_visits: int) -> Loyalty | None:
    """The status a number of completed visits gives; None before the first visit."""
    if completed_visits <= 0:
        return None
    if completed_visits == 1:
        return Loyalty.new
    if completed_visits < REGULAR_FROM:
        return Loyalty.returning
    return Loyalty.regular


def top_fifth(count: int) -> int:
    """How many clients the top 20 % of `count` is, rounded up (11 clients → 3)."""
    return -(-count // 5)


def vip_since(today: date) -> date:
    """The first local date whose visits count for VIP."""
    return today - timedelta(days=VIP_DAYS)


def vip_ranking(spend: Mapping[int, Decimal]) -> list[int]:
    """The VIP clients, the biggest spender first: the top 20 % (rounded up) of the clients
    with a completed visit in the last 365 days (`spend` maps each of them to what they
    spent then), by that spend. A client who spent nothing is never VIP; a tie at the
    boundary goes to the client who joined first (the lower id)."""
    ranked = sorted(spend.items(), key=lambda item: (-item[1], item[0]))
    return [client_id for client_id, amount in ranked[: top_fifth(len(ranked))] if amount > 0]


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
