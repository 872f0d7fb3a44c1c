"""Words, dates and money for one reader: gettext lookups plus Babel formatting.

A `Translator` is a value: the catalogs are loaded once by the shell (`bot/i18n.py`) and
handed in, so conversations, the scheduler and every channel format the same way.
"""

from __future__ import annotations

import gettext
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import format_decimal, format_percent, get_currency_symbol

# Babel parses the pattern on every call, and a screen shows the same days and times again
# and again: the results are kept.
_skeleton = lru_cache(maxsize=8192)(format_skeleton)
_date = lru_cache(maxsize=4096)(format_date)


def translator_for(
    translators: Mapping[str, Translator], locale: str | None, default: str
) -> Translator:
    """The reader's translator; the business's default language for an unknown or
    missing locale."""
    return translators.get(locale or default) or translators[default]


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (translated where shown)."""
    return message


# Translated where shown ("on Friday" → "в пятницу": Russian needs the accusative after
# "в", which Babel's weekday names do not give).
_ON_WEEKDAY = (
    N_("on Monday"),
    N_("on Tuesday"),
    N_("on Wednesday"),
    N_("on Thursday"),
    N_("on Friday"),
    N_("on Saturday"),
    N_("on Sunday"),
)


def without_format_characters(text: str) -> str:
    """`text` without Unicode format characters (zero-width spaces, direction marks, …):
    invisible, they make a name look empty or reorder what staff read."""
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def one_line(text: str) -> str:
    """Client text as one line for a staff message: line breaks, control and format
    characters become single spaces, so a note cannot fake lines of the day plan."""
    spaced = "".join(" " if unicodedata.category(char)[0] in "CZ" else char for char in text)
    return " ".join(spaced.split())


def folded(text: str) -> str:
    """`text` as a search compares it: any case, and ё read as е ("Пётр" is found by
    "петр")."""
    return text.casefold().replace("ё", "е")


def search_form(text: str | None) -> str | None:
    """A name as a search compares it: folded, its spaces single (None stays None)."""
    return None if text is None else folded(" ".join(text.split()))


def has_letter(text: str) -> bool:
    """A name needs a letter: digits, dots or emoji alone are no name."""
    return any(char.isalpha() for char in text)


def upper_first(text: str) -> str:
    """'в пятницу' → 'В пятницу' (str.capitalize would lower the rest: 'November' → 'november')."""
    return text[:1].upper() + text[1:]


class Translator:
    """gettext and Babel formatting for one locale, in one time zone and currency."""

    def __init__(
        self,
        *,
        locale: str,
        catalog: gettext.NullTranslations,
        tz: tzinfo,
        currency: str,
        currency_locale: str = "ru",
    ) -> None:
        self.locale = locale
        self.tz = tz
        self.currency = currency
        self._catalog = catalog
        self._babel = Locale.parse(locale)
        # The symbol people see on the price list (₽), not "RUB", in every language.
        self._symbol = get_currency_symbol(currency, currency_locale)

    def _(self, message: str) -> str:
        return self._catalog.gettext(message)

    def n_(self, singular: str, plural: str, n: int) -> str:
        return self._catalog.ngettext(singular, plural, n)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def day(self, value: date) -> str:
        """'27 ноября' / 'November 27'."""
        return _skeleton("MMMMd", value, locale=self._babel)

    def day_with_year(self, value: date) -> str:
        """'23 ноября 2027 г.' / 'November 23, 2027' — a date a year or more away."""
        return _date(value, "long", locale=self._babel)

    def on_weekday(self, weekday: int) -> str:
        """'в пятницу' / 'on Friday' (0 = Monday)."""
        return self._(_ON_WEEKDAY[weekday])

    def full_date(self, value: date) -> str:
        """'27 нояб. 2026 г.' / 'Nov 27, 2026' — a date that may be in another year."""
        return _skeleton("yMMMd", value, locale=self._babel)

    def weekday_day(self, value: date) -> str:
        """'в пятницу, 27 ноября' / 'on Friday, November 27'."""
        return f"{self.on_weekday(value.weekday())}, {self.day(value)}"

    def long_day(self, value: date) -> str:
        """'12 марта 2025 г.' / 'March 12, 2025' — a date that may be in another year."""
        return _date(value, "long", locale=self._babel)

    def full_day(self, value: date) -> str:
        """'Понедельник, 23 ноября' / 'Monday, November 23' — a heading."""
        weekday = _date(value, "EEEE", locale=self._babel)
        return upper_first(f"{weekday}, {self.day(value)}")

    def short_day(self, value: date) -> str:
        """'пт, 27 нояб.' / 'Fri, Nov 27' — for buttons."""
        return _skeleton("MMMEd", value, locale=self._babel)

    def short_date(self, value: date) -> str:
        """'23 нояб.' / 'Nov 23' — for a chart's axis."""
        return _skeleton("MMMd", value, locale=self._babel)

    def clock(self, moment: datetime) -> str:
        """'15:30', local."""
        local = self.local(moment)
        # Only the hour and minute are shown: any day at that time formats alike.
        at = datetime(2000, 1, 1, local.hour, local.minute, tzinfo=UTC)
        return _skeleton("Hm", at, locale=self._babel)

    def when(self, moment: datetime) -> str:
        """'в пятницу, 27 ноября, 15:30' / 'on Friday, November 27, 15:30', local."""
        local = self.local(moment)
        return f"{self.weekday_day(local.date())}, {self.clock(local)}"

    def money(self, amount: Decimal) -> str:
        """'1 500 ₽' / '₽1,500'; kopecks only when there are some."""
        pattern = self._babel.currency_formats["standard"].pattern.split(";")[0]
        if amount == amount.to_integral_value():
            pattern = pattern.replace(".00", "")
            amount = amount.to_integral_value()
        number_pattern = pattern.replace("¤", "").strip("\xa0 ")
        number = format_decimal(amount, format=number_pattern, locale=self._babel)
        return pattern.replace(number_pattern, number).replace("¤", self._symbol)

    def percent(self, share: Decimal | None) -> str:
        """0.667 → '66,7 %' / '66.7%'; '—' when there is nothing to measure."""
        if share is None:
            return "—"
        return format_percent(share, format="#,##0.0%", locale=self._babel)

    def number(self, value: Decimal | None) -> str:
        """4.50 → '4,5' / '4.5'; '—' when there is nothing to measure."""
        return "—" if value is None else format_decimal(value, locale=self._babel)

    def minutes(self, total: int) -> str:
        """'1 ч 30 мин' / '1 h 30 min'."""
        hours, minutes = divmod(total, 60)
        parts = []
        if hours:
            parts.append(self._("{n} h").format(n=hours))
        if minutes or not hours:
            parts.append(self._("{n} min").format(n=minutes))
        return " ".join(parts)
