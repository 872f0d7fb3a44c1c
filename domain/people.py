"""Facts about a person typed into a chat: birthdays."""

from __future__ import annotations

import re
from datetime import date

# A birthday given without a year is kept with this (leap) year, so 29.02 stays valid.
YEAR_UNKNOWN = 1904

_DAY_FIRST = re.compile(r"^(\d{1,2})[./\-\s](\d{1,2})(?:[./\-\s](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_birthday(text: str, *, today: date) -> date | None:
    """'27.11', '27.11.1990', '27/11/90' or '1990-11-27' → a date; None when unreadable,
    in the future or more than 120 years ago. Without a year the year is YEAR_UNKNOWN."""
    text = text.strip()
    iso = _ISO.match(text)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    else:
        match = _DAY_FIRST.match(text)
        if not match:
            return None
        day, month = int(match.group(1)), int(match.group(2))
        raw_year = match.group(3)
        if raw_year is None:
            year = YEAR_UNKNOWN
        elif len(raw_year) == 2:
            year = 2000 + int(raw_year)
            if year > today.year:
                year -= 100
        else:
            year = int(raw_year)
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    if year != YEAR_UNKNOWN and (born > today or today.year - born.year > 120):
        return None
    return born


def birthday_known_year(born: date) -> bool:
    return born.year != YEAR_UNKNOWN


def first_name(name: str) -> str:
    """What a friendly message calls the client: the first word of the name they gave
    ("Виктор" of "Виктор Зайцев"); staff see the whole name."""
    words = name.split()
    return words[0] if words else ""
