"""Retention rules: segments, personal rhythm, message classes, send windows, caps, holdout.

Everything here is pure: no I/O, no database and no clock (``now``/``today`` are always
arguments). Instants passed in are timezone-aware datetimes and instants returned are aware
UTC; local wall-clock logic takes the business time zone as a :class:`zoneinfo.ZoneInfo`.
See docs/retention.md (message kinds, guards, caps, segments and rhythm).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo

from domain.slots import local_to_utc
from domain.text import N_

__all__ = [
    "CHURN_REASONS",
    "COUNTS_FOR_CAPS",
    "KIND_CLASS",
    "MARKETING_PRIORITY",
    "WHATSAPP_WINDOW",
    "Caps",
    "MessageClass",
    "QuietHours",
    "Segment",
    "birthday_in_year",
    "cap_allows",
    "days_to_birthday",
    "hot_since",
    "in_holdout",
    "in_whatsapp_window",
    "is_birthday_today",
    "personal_rhythm_days",
    "pick_by_priority",
    "predicted_next_visit",
    "reminders_ahead",
    "segment_dates",
    "segment_of",
    "send_window_start",
    "sleeping_before",
    "winback_due",
    "winbacks_this_dormancy",
]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


# --- Segments and rhythm (docs/retention.md) ---------------------------------------------


class Segment(StrEnum):
    """Where a client stands by days since the last completed visit."""

    hot = "hot"
    warm = "warm"
    sleeping = "sleeping"
    prospect = "prospect"


def segment_of(
    last_completed_local: date | None,
    today: date,
    *,
    hot_days: int = 30,
    warm_days: int = 120,
) -> Segment:
    """The client's segment from the local date of the last completed visit.

    ``days = today - last``: hot when ``days <= hot_days``, warm up to ``warm_days``
    inclusive, sleeping beyond; a client with no completed visit is a prospect. A last visit
    dated after ``today`` (clock skew) counts as hot.
    """
    if last_completed_local is None:
        return Segment.prospect
    if last_completed_local >= hot_since(today, hot_days):
        return Segment.hot
    if last_completed_local >= sleeping_before(today, warm_days):
        return Segment.warm
    return Segment.sleeping


def hot_since(today: date, hot_days: int = 30) -> date:
    """A last completed visit on this local day or later keeps the client hot: the boundary
    `segment_of` draws, for a query over many clients."""
    return today - timedelta(days=hot_days)


def sleeping_before(today: date, warm_days: int = 120) -> date:
    """A last completed visit on a local day before this one makes the client sleeping:
    the boundary `segment_of` draws, for a query over many clients."""
    return today - timedelta(days=warm_days)


def segment_dates(
    segment: Segment, today: date, *, hot_days: int = 30, warm_days: int = 120
) -> tuple[date | None, date | None]:
    """The local dates of the last completed visit that put a client in `segment`, as
    `[first, before)` (None: no bound), for a query over many clients; `segment_of` draws
    the same lines. Prospects have no completed visit at all: (None, None)."""
    hot_from = today - timedelta(days=hot_days)
    sleeping = min(sleeping_before(today, warm_days), hot_from)
    bounds: dict[Segment, tuple[date | None, date | None]] = {
        Segment.hot: (hot_from, None),
        Segment.warm: (sleeping, hot_from),
        Segment.sleeping: (None, sleeping),
        Segment.prospect: (None, None),
    }
    return bounds[segment]


def personal_rhythm_days(
    completed_local_dates: Sequence[date],
    default_days: int,
    *,
    min_visits: int = 3,
    last_gaps: int = 5,
) -> int:
    """The client's own return interval in whole days.

    Visit dates are de-duplicated (several visits on one day count once) and sorted. With at
    least ``min_visits`` distinct dates, the result is the median of the last (up to)
    ``last_gaps`` gaps between consecutive visits, an even-count median of ``x.5`` rounded
    half up. Otherwise it is ``default_days`` (the service's return interval). Never below 1.
    """
    if last_gaps < 1:
        raise ValueError(f"last_gaps must be at least 1, got {last_gaps}")
    days = sorted(set(completed_local_dates))
    gaps = [(later - earlier).days for earlier, later in pairwise(days)]
    if len(days) < min_visits or not gaps:
        return max(1, default_days)
    recent = sorted(gaps[-last_gaps:])
    middle = len(recent) // 2
    # An even count takes half the sum of the middle two, rounded half up, in integers.
    median = recent[middle] if len(recent) % 2 else (recent[middle - 1] + recent[middle] + 1) // 2
    return max(1, median)


def predicted_next_visit(last_completed_local: date, rhythm_days: int) -> date:
    """The predicted date of the next visit: the last completed visit plus the rhythm."""
    return last_completed_local + timedelta(days=rhythm_days)


# --- Message kinds and classes (docs/retention.md) ---------------------------------------


class MessageClass(StrEnum):
    """What consent a message needs and which send window applies to it."""

    transactional = "transactional"
    marketing = "marketing"
    staff = "staff"


#: The class of every proactive message kind (read-only).
KIND_CLASS: Mapping[str, MessageClass] = MappingProxyType(
    {
        "booking_confirmation": MessageClass.transactional,
        "reminder": MessageClass.transactional,
        "visit_cancelled": MessageClass.transactional,
        "feedback_request": MessageClass.transactional,
        "next_visit_offer": MessageClass.transactional,
        "referral_reward": MessageClass.transactional,
        "care_tip": MessageClass.marketing,
        "return_nudge": MessageClass.marketing,
        "warm_offer": MessageClass.marketing,
        "winback": MessageClass.marketing,
        "birthday": MessageClass.marketing,
        "broadcast": MessageClass.marketing,
        "visit_check": MessageClass.staff,
        "staff_day_plan": MessageClass.staff,
        "complaint_alert": MessageClass.staff,
        "digest": MessageClass.staff,
        "broadcast_report": MessageClass.staff,
    }
)

#: Kinds that are not marketing but take a marketing message's place in the frequency caps:
#: the next-visit offer sent when a visit is marked came, so a return nudge never follows
#: it in the same week.
COUNTS_FOR_CAPS: tuple[str, ...] = ("next_visit_offer",)

# The next-visit offer: three free times on different days around the predicted visit,
# from this many days before it to this many after, never further ahead than the maximum.
NEXT_VISIT_DAYS_BEFORE = 3
NEXT_VISIT_DAYS_AFTER = 10
NEXT_VISIT_MAX_DAYS = 120

#: Marketing kinds, highest priority first: on a cap collision the earlier one wins.
MARKETING_PRIORITY: tuple[str, ...] = (
    "birthday",
    "winback",
    "warm_offer",
    "return_nudge",
    "care_tip",
    "broadcast",
)


def pick_by_priority(kinds: Iterable[str]) -> str | None:
    """The highest-priority marketing kind among ``kinds``; ``None`` if there is none.

    Kinds that are not in :data:`MARKETING_PRIORITY` (transactional, staff, unknown) are
    ignored.
    """
    candidates = set(kinds)
    for kind in MARKETING_PRIORITY:
        if kind in candidates:
            return kind
    return None


#: The answers a win-back offers to "why did you stop coming?", kept as churn reasons.
CHURN_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "moved": N_("I moved away"),
        "price": N_("Too expensive"),
        "quality": N_("Did not like it"),
        "time": N_("No time"),
        "other": N_("Other reason"),
    }
)


# --- Send windows -----------------------------------------------------------------------

#: WhatsApp lets a business write freely for this long after the person's last message;
#: outside it only an approved template goes.
WHATSAPP_WINDOW = timedelta(hours=24)


def in_whatsapp_window(last_inbound: datetime | None, at: datetime) -> bool:
    """Whether a free-form WhatsApp message may go at ``at`` to a chat whose person last
    wrote at ``last_inbound`` (never, when they never wrote)."""
    return last_inbound is not None and at - last_inbound < WHATSAPP_WINDOW


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local send windows for messages to clients.

    Nothing goes to clients in ``[quiet_from, quiet_to)`` (wrapping past midnight when
    ``quiet_from > quiet_to``); marketing additionally only in ``[marketing_from,
    marketing_to)``. A window whose two ends are equal is empty.
    """

    quiet_from: time = time(22, 0)
    quiet_to: time = time(8, 0)
    marketing_from: time = time(10, 0)
    marketing_to: time = time(20, 0)


def _in_window(wall: time, start: time, end: time) -> bool:
    """Whether ``wall`` lies in the half-open local window ``[start, end)``, maybe wrapping."""
    if start <= end:
        return start <= wall < end
    return wall >= start or wall < end


def _allowed(wall: time, message_class: MessageClass, hours: QuietHours) -> bool:
    if message_class is MessageClass.staff:
        return True
    if _in_window(wall, hours.quiet_from, hours.quiet_to):
        return False
    if message_class is MessageClass.marketing:
        return _in_window(wall, hours.marketing_from, hours.marketing_to)
    return True


def has_window(message_class: MessageClass, hours: QuietHours) -> bool:
    """Whether messages of this class may go out at some minute of the day at all."""
    return any(
        _allowed(time(minute // 60, minute % 60), message_class, hours) for minute in range(1440)
    )


def send_window_start(
    due: datetime,
    message_class: MessageClass,
    tz: ZoneInfo,
    hours: QuietHours,
) -> datetime:
    """The earliest instant at or after ``due`` (aware UTC) when a message may go out.

    That is ``due`` itself when its local time in ``tz`` is inside the class's window;
    otherwise the next local opening of that window (``quiet_to`` for transactional
    messages; ``marketing_from`` or ``quiet_to``, whichever opens the allowed time, for
    marketing), the same or the next local day. Opening wall times are built in ``tz``, so
    DST changes are respected. Staff messages are never held. Raises ``ValueError`` when
    ``due`` is naive or the configured hours leave the class no window at all.
    """
    _require_aware(due, "due")
    due_utc = due.astimezone(UTC)
    if _allowed(due_utc.astimezone(tz).time(), message_class, hours):
        return due_utc
    # An allowed stretch can only begin where the quiet window ends or the marketing window
    # begins; the allowed pattern repeats daily, so the next opening is within a day.
    openings = {hours.quiet_to}
    if message_class is MessageClass.marketing:
        openings.add(hours.marketing_from)
    local_day = due_utc.astimezone(tz).date()
    candidates = []
    for offset in range(3):
        day = local_day + timedelta(days=offset)
        for wall in openings:
            at = local_to_utc(day, wall, tz)
            if at >= due_utc and _allowed(at.astimezone(tz).time(), message_class, hours):
                candidates.append(at)
    if not candidates:
        raise ValueError(f"{hours!r} leave no send window for {message_class} messages")
    return min(candidates)


def reminders_ahead(
    *,
    starts_at: datetime,
    booked_at: datetime,
    hours_before: Iterable[int],
    tz: ZoneInfo,
    hours: QuietHours,
) -> list[int]:
    """Which reminders (hours before the start, farthest first) a visit booked at
    ``booked_at`` will get: those due at or after the booking whose send window opens
    before the visit starts. The planner applies the same two conditions when it plans
    them; a booking confirmation promises exactly these."""
    ahead = []
    for before in sorted(set(hours_before), reverse=True):
        due = starts_at - timedelta(hours=before)
        if due < booked_at:
            continue  # booked too late for it
        if send_window_start(due, MessageClass.transactional, tz, hours) >= starts_at:
            continue  # quiet hours would hold it past the start
        ahead.append(before)
    return ahead


# --- Frequency caps -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caps:
    """At most this many marketing messages per client in any rolling 7 / 30 days."""

    per_7_days: int = 1
    per_30_days: int = 4


def cap_allows(sent_marketing: Sequence[datetime], at: datetime, caps: Caps) -> bool:
    """Whether one more marketing message at ``at`` keeps the client within ``caps``.

    True when fewer than ``caps.per_7_days`` of ``sent_marketing`` fall in ``(at - 7 days,
    at]`` and fewer than ``caps.per_30_days`` in ``(at - 30 days, at]``. A message sent
    exactly 7 (30) days before ``at`` no longer counts; messages after ``at`` are ignored.
    """
    _require_aware(at, "at")
    for sent in sent_marketing:
        _require_aware(sent, "sent_marketing item")
    windows = ((timedelta(days=7), caps.per_7_days), (timedelta(days=30), caps.per_30_days))
    for length, limit in windows:
        in_window = sum(1 for sent in sent_marketing if at - length < sent <= at)
        if in_window >= limit:
            return False
    return True


# --- Holdout ------------------------------------------------------------------------------


def in_holdout(
    client_key: int | str, share: float = 0.10, *, salt: str = "regulars-holdout-v1"
) -> bool:
    """Whether the client belongs to the stable holdout group (no win-back offers sent).

    ``sha256(f"{salt}:{client_key}")``; its first 8 bytes, big-endian, divided by 2**64 give
    a uniform number in ``[0, 1)``, and the client is held out when it is below ``share``.
    The same key and salt give the same answer in every process (``hash()`` is not used);
    ``42`` and ``"42"`` are the same key. ``share`` must be in ``[0, 1]``.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    digest = hashlib.sha256(f"{salt}:{client_key}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return fraction < share


# --- Birthdays ----------------------------------------------------------------------------


def birthday_in_year(born: date, year: int) -> date:
    """The date the birthday falls on in ``year``: 29 February becomes 28 February in
    non-leap years."""
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return date(year, 2, 28)


def days_to_birthday(born: date, today: date) -> int:
    """Days from ``today`` to the client's next birthday (0 when it is today)."""
    this_year = birthday_in_year(born, today.year)
    if this_year < today:
        this_year = birthday_in_year(born, today.year + 1)
    return (this_year - today).days


def is_birthday_today(born: date | None, today: date) -> bool:
    """Whether ``today`` is the client's birthday (never, when the birth date is unknown)."""
    return born is not None and birthday_in_year(born, today.year) == today


# --- Win-back -----------------------------------------------------------------------------


def winback_due(
    *,
    last_completed_local: date | None,
    today: date,
    previous_winbacks: Sequence[date],
    sleeping_after_days: int = 120,
    max_per_dormancy: int = 2,
    gap_days: int = 60,
) -> bool:
    """Whether a win-back should go to the client today (local dates throughout).

    Due when the client is sleeping (``today - last_completed_local > sleeping_after_days``),
    fewer than ``max_per_dormancy`` win-backs were sent strictly after the last completed
    visit (those of earlier dormancies do not count: a new visit resets the count), and the
    latest of them was at least ``gap_days`` ago. Prospects (no completed visit) never are.
    """
    if last_completed_local is None:
        return False
    if last_completed_local >= sleeping_before(today, sleeping_after_days):
        return False
    this_dormancy = winbacks_this_dormancy(last_completed_local, previous_winbacks)
    if len(this_dormancy) >= max_per_dormancy:
        return False
    return not this_dormancy or (today - max(this_dormancy)).days >= gap_days


def winbacks_this_dormancy(
    last_completed_local: date, previous_winbacks: Sequence[date]
) -> list[date]:
    """The win-backs sent since the last completed visit: a new visit starts the count anew."""
    return [sent for sent in previous_winbacks if sent > last_completed_local]
