"""Facts about a person typed into a chat: birthdays."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

# A birthday given without a year is kept with this (leap) year, so 29.02 stays valid.
YEAR_UNKNOWN = 1904

_DAY_FIRST = re.compile(r"^(\d{1,2})[./\-\s](\d{1,2})(?:[./\-\s](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


class BirthdayMistake(StrEnum):
    """Why a typed birthday was not taken: the person is told what to fix."""

    UNREADABLE = "unreadable"
    NO_SUCH_DATE = "no_such_date"  # 31.02
    IN_FUTURE = "in_future"
    TOO_EARLY = "too_early"  # before 1900 or more than 120 years ago: a typo in the year


def parse_birthday(text: str, *, today: date) -> date | None:
    """'27.11', '27.11.1990', '27/11/90' or '1990-11-27' → a date; None when unreadable,
    in the future or more than 120 years ago. Without a year the year is YEAR_UNKNOWN."""
    born = read_birthday(text, today=today)
    return born if isinstance(born, date) else None


def read_birthday(text: str, *, today: date) -> date | BirthdayMistake:
    """As parse_birthday, but says what is wrong with a date it does not take."""
    parts = _date_parts(text.strip(), today)
    if parts is None:
        return BirthdayMistake.UNREADABLE
    year, month, day = parts
    try:
        born = date(year, month, day)
    except ValueError:
        return BirthdayMistake.NO_SUCH_DATE
    if year == YEAR_UNKNOWN:
        return born
    if born > today:
        return BirthdayMistake.IN_FUTURE
    if year < 1900 or today.year - year > 120:
        return BirthdayMistake.TOO_EARLY
    return born


def _date_parts(text: str, today: date) -> tuple[int, int, int] | None:
    """(year, month, day) as typed, not yet checked to be a date."""
    iso = _ISO.match(text)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
        return year, month, day
    match = _DAY_FIRST.match(text)
    if not match:
        return None
    day, month = int(match.group(1)), int(match.group(2))
    raw_year = match.group(3)
    if raw_year is None:
        return YEAR_UNKNOWN, month, day
    if len(raw_year) == 4:
        return int(raw_year), month, day
    year = 2000 + int(raw_year)  # '90' is 1990 and '05' 2005: the nearest past year
    return (year - 100 if year > today.year else year), month, day


def birthday_known_year(born: date) -> bool:
    return born.year != YEAR_UNKNOWN


def first_name(name: str) -> str:
    """What a friendly message calls the client: the first word of the name they gave
    ("Виктор" of "Виктор Зайцев"); staff see the whole name."""
    words = name.split()
    return words[0] if words else ""
