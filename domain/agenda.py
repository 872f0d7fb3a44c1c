"""A day's visits as staff read them (/today, /day, the morning day plan): pure wording
of rows that storage/staff.py returns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from domain.people import _DAY_FIRST, _ISO
from domain.text import N_, Translator, one_line

STATUS_NAMES = {
    "booked": N_("booked"),
    "confirmed": N_("confirmed"),
    "completed": N_("came"),
    "no_show": N_("no-show"),
    "cancelled": N_("cancelled"),
}


@dataclass(frozen=True, slots=True)
class AgendaVisit:
    visit_id: int
    master_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    service: str
    client: str
    phone: str | None
    visits_before: int  # the client's completed visits before this one
    notes: tuple[str, ...]  # the client's preferences, staff notes, the booking comment


def read_day(text: str, *, today: date) -> date | None:
    """'2026-12-01', '01.12.2026', '1.12' (this year) or 'today' / 'tomorrow' (either
    language) → a date; None when it is not one."""
    typed = text.strip().lower()
    if typed in ("", "today", "сегодня"):
        return today
    if typed in ("tomorrow", "завтра"):
        return today + timedelta(days=1)
    iso = _ISO.match(typed)
    match = _DAY_FIRST.match(typed)
    try:
        if iso:
            year, month, day = (int(g) for g in iso.groups())
            return date(year, month, day)
        if match:
            raw = match.group(3)
            year = today.year if raw is None else int(raw) if len(raw) == 4 else 2000 + int(raw)
            return date(year, int(match.group(2)), int(match.group(1)))
    except ValueError:
        return None
    return None


_RANGE_SEPARATOR = re.compile(r"\s+(?:to|till|until|до|по|-|–|—)\s+|\s*(?:–|—|\.\.)\s*")


def read_days(text: str, *, today: date) -> tuple[date, date] | None:
    """'2026-12-01', '2026-12-01 to 2026-12-03', '1.12 - 3.12', '01.12 по 03.12' → the
    first and the last day (the same for one day); None when it is not that. The order is
    not checked: the caller says what is wrong with an end before the start."""
    parts = _RANGE_SEPARATOR.split(text.strip())
    if len(parts) > 2 or not parts[0]:
        return None
    days = [read_day(part, today=today) for part in parts]
    if any(day is None for day in days):
        return None
    first, last = days[0], days[-1]
    assert first is not None and last is not None
    return first, last


def visit_lines(tr: Translator, visit: AgendaVisit, *, status: bool = True) -> list[str]:
    """'10:00–11:00 — Name, +7…, Haircut · first visit · booked' and the notes below."""
    line = f"{tr.clock(visit.starts_at)}–{tr.clock(visit.ends_at)} — {one_line(visit.client)}"
    if visit.phone:
        line += f", {visit.phone}"
    history = (
        tr.n_("{n} visit before", "{n} visits before", visit.visits_before).format(
            n=visit.visits_before
        )
        if visit.visits_before
        else tr._("first visit")
    )
    line += f", {visit.service} · {history}"
    if status and visit.status in STATUS_NAMES:
        line += f" · {tr._(STATUS_NAMES[visit.status])}"
    quote = "«{}»" if tr.locale == "ru" else "“{}”"
    return [line, *("   " + quote.format(one_line(note)) for note in visit.notes if note)]
