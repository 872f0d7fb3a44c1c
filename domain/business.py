"""The business configuration: services, masters, hours and policies, validated.

Loaded from `business.toml` by the shell (`bot/config.py`); everything here is plain data and
validation, so every layer can read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from domain.retention import Caps, MessageClass, QuietHours, has_window
from domain.slots import SlotRules, WorkingHours

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOCALES = ("ru", "en")
_KEY = re.compile(r"^[a-z0-9_-]{1,24}$")
MAX_PRICE = Decimal(10_000_000)  # what staff may type as paid, too
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _count(unit: str, *, most: int, least: int = 1) -> BeforeValidator:
    """A whole number of `unit` from `least` to `most`. The upper bound matters: an absurd
    value (horizon_days = 100000) is accepted by every loop and makes each screen take
    seconds."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"must be a positive number of {unit}")
        if value < least:
            raise ValueError(f"must be at least {least} {unit}")
        if value > most:
            raise ValueError(f"must be at most {most} {unit}")
        return value

    return BeforeValidator(check)


def _non_negative_money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be an amount of money, e.g. 1500 or 1500.50")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("must be an amount of money, e.g. 1500 or 1500.50") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be an amount of money, e.g. 1500 or 1500.50")
    if amount > MAX_PRICE:
        raise ValueError(f"must be at most {MAX_PRICE}")
    return amount.quantize(Decimal("0.01"))


def _key(value: Any) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise ValueError("must be 1-24 characters of a-z, 0-9, '_' or '-'")
    return value


def _time_zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Moscow"
        ) from None
    return str(value)


def _region(value: Any) -> str:
    region = str(value).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {value!r}; use a two-letter code like RU")
    return region


def _day_hours(value: Any) -> list[tuple[time, time]]:
    """'10:00-20:00', '10:00-14:00, 15:00-20:00', or '' / 'off' for a day off."""
    if value is None:
        return []
    if not isinstance(value, str):
        raise ValueError("must be a string like '10:00-20:00' or 'off'")
    text = value.strip().lower()
    if text in ("", "off", "closed"):
        return []
    spans: list[tuple[time, time]] = []
    for part in text.split(","):
        match = _HOURS.match(part.strip())
        if not match:
            raise ValueError(f"{part.strip()!r} is not like '10:00-20:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r} is not a valid time range")
        opens = time(h1, m1)
        closes = time(23, 59) if h2 == 24 else time(h2, m2)
        if closes <= opens:
            raise ValueError(f"{part.strip()!r}: closing time must be after opening time")
        if spans and opens < spans[-1][1]:
            raise ValueError(f"{part.strip()!r} overlaps the range before it")
        spans.append((opens, closes))
    return spans


def localised(locale: str, text: str, text_en: str) -> str:
    """The English variant of a configured text for English readers, when there is one."""
    return text_en if locale == "en" and text_en else text


Minutes = Annotated[int, _count("minutes", most=24 * 60)]
Hours = Annotated[int, _count("hours", most=14 * 24)]
Days = Annotated[int, _count("days", most=3 * 365)]
Money = Annotated[Decimal, BeforeValidator(_non_negative_money)]
Key = Annotated[str, BeforeValidator(_key)]
DayHours = Annotated[list[tuple[time, time]], BeforeValidator(_day_hours)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeeklyHours(_Strict):
    mon: DayHours = []
    tue: DayHours = []
    wed: DayHours = []
    thu: DayHours = []
    fri: DayHours = []
    sat: DayHours = []
    sun: DayHours = []

    def working_hours(self) -> list[WorkingHours]:
        return [
            WorkingHours(weekday=index, opens=opens, closes=closes)
            for index, day in enumerate(WEEKDAYS)
            for opens, closes in getattr(self, day)
        ]


class Business(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    timezone: Annotated[str, AfterValidator(_time_zone)] = "Europe/Moscow"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    phone_region: Annotated[str, BeforeValidator(_region)] = "RU"
    default_locale: Literal["ru", "en"] = "ru"
    address: str = ""
    address_en: str = ""
    phone: str = ""
    consent_text: Annotated[str, Field(min_length=1)] = (
        "Я согласен на обработку персональных данных для записи и напоминаний."
    )
    consent_url: str = ""
    review_url: str = ""

    def where(self, locale: str) -> str:
        """The address as a reader of `locale` can find it on a map."""
        return localised(locale, self.address, self.address_en)


class Booking(_Strict):
    slot_step: Annotated[int, _count("minutes", least=5, most=240)] = 15
    min_lead: Annotated[int, Field(ge=0, le=30 * 24 * 60)] = 60
    horizon_days: Annotated[int, _count("days", most=90)] = 14
    cancel_cutoff_hours: Annotated[int, Field(ge=0, le=168)] = 3
    comment_max_length: Annotated[int, Field(ge=10, le=4000)] = 500
    # One client must not be able to empty the calendar with the bot's own buttons.
    max_upcoming_visits: Annotated[int, Field(ge=1, le=20)] = 3
    max_bookings_per_day: Annotated[int, Field(ge=1, le=100)] = 10  # per chat, local day

    def rules(self) -> SlotRules:
        return SlotRules(
            step=timedelta(minutes=self.slot_step),
            lead=timedelta(minutes=self.min_lead),
            horizon_days=self.horizon_days,
        )


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = re.match(r"^(\d{1,2}):(\d{2})$", str(value).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError("must be a time of day like '22:00'")
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time, BeforeValidator(_clock)]


class Retention(_Strict):
    """When each message kind goes out, and the guards (docs/retention.md)."""

    reminder_hours: Annotated[list[Hours], Field(max_length=4)] = [24, 2]
    visit_check_after_minutes: Minutes = 60
    visit_autocomplete_at: ClockTime = time(23, 0)
    feedback_after_hours: Hours = 3
    care_tip_after_days: Days = 7
    nudge_lead_days: Annotated[int, Field(ge=0, le=30)] = 3
    warm_offer_after_days: Days = 10
    sleeping_after_days: Days = 120
    winback_max_per_dormancy: Annotated[int, Field(ge=0, le=5)] = 2
    winback_gap_days: Days = 60
    # First win-backs a day at most: a big sleeping base is written to over several days.
    winbacks_per_day: Annotated[int, Field(ge=1, le=10_000)] = 20
    birthday_at: ClockTime = time(10, 0)
    day_plan_before_opening_minutes: Annotated[int, _count("minutes", most=12 * 60)] = 30
    quiet_from: ClockTime = time(22, 0)
    quiet_to: ClockTime = time(8, 0)
    marketing_from: ClockTime = time(10, 0)
    marketing_to: ClockTime = time(20, 0)
    marketing_per_7_days: Annotated[int, Field(ge=0, le=7)] = 1
    marketing_per_30_days: Annotated[int, Field(ge=0, le=30)] = 4
    holdout_share: Annotated[float, Field(ge=0, le=0.5)] = 0.10

    @property
    def quiet_hours(self) -> QuietHours:
        return QuietHours(self.quiet_from, self.quiet_to, self.marketing_from, self.marketing_to)

    @property
    def caps(self) -> Caps:
        return Caps(self.marketing_per_7_days, self.marketing_per_30_days)

    @model_validator(mode="after")
    def _windows(self) -> Retention:
        hours = self.quiet_hours
        if not has_window(MessageClass.transactional, hours):
            raise ValueError("quiet_from/quiet_to leave no time of day for reminders")
        if not has_window(MessageClass.marketing, hours):
            raise ValueError(
                "marketing_from/marketing_to leave no time for offers outside the quiet hours"
            )
        return self


class Offers(_Strict):
    """What the offers give; the texts around them are in the catalogs."""

    warm_offer_gift: str = "бесплатное мытьё головы и укладка к следующему визиту"
    warm_offer_gift_en: str = "a free wash and styling with your next visit"
    winback_discount_percent: Annotated[int, Field(ge=1, le=90)] = 20
    offer_valid_days: Days = 30
    birthday_gift: str = "скидка 15% на любую услугу"
    birthday_gift_en: str = "15% off any service"
    birthday_valid_days: Annotated[int, Field(ge=0, le=31)] = 7
    # The gift as a percent off a visit within birthday_valid_days of the birthday, taken
    # off at booking (docs/loyalty.md); 0: the gift is not a discount (staff give it).
    birthday_discount_percent: Annotated[int, Field(ge=0, le=100)] = 15

    def warm_gift(self, locale: str) -> str:
        return localised(locale, self.warm_offer_gift, self.warm_offer_gift_en)

    def birthday_present(self, locale: str) -> str:
        return localised(locale, self.birthday_gift, self.birthday_gift_en)


class DigestPlan(_Strict):
    """When the owner gets the weekly digest (docs/digest.md): Monday 09:00 local by default."""

    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    at: ClockTime = time(9, 0)

    @property
    def weekday_index(self) -> int:
        return WEEKDAYS.index(self.weekday)


def _share(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("must be a share from 0 to 1, e.g. 0.25") from None
    if isinstance(value, bool) or not amount.is_finite() or not 0 <= amount <= 1:
        raise ValueError("must be a share from 0 to 1, e.g. 0.25")
    return amount


def _percent(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("must be a percent from 0 to 100, e.g. 10") from None
    if isinstance(value, bool) or not amount.is_finite() or not 0 <= amount <= 100:
        raise ValueError("must be a percent from 0 to 100, e.g. 10")
    return amount


class Payroll(_Strict):
    """The master's bonus and its part deferred until the client returns (docs/digest.md)."""

    bonus_percent: Annotated[Decimal, BeforeValidator(_percent)]
    return_share: Annotated[Decimal, BeforeValidator(_share)] = Decimal("0.25")
    return_within_days: Days = 60
    winback_bonus: Money = Decimal("0")


class Loyalty(_Strict):
    """The loyalty programme and the referral reward (docs/loyalty.md). `kind` chooses
    which keys apply: a stamp card (`stamps_per_reward`, `reward…`) or points
    (`points_percent`, `points_max_percent`); `valid_days` and `referral_reward` apply to
    both, in the programme's unit (stamps or points)."""

    kind: Literal["stamps", "points"] = "stamps"
    valid_days: Days = 365  # stamps and points lapse this long after they were earned
    stamps_per_reward: Annotated[int, Field(ge=2, le=50)] = 6
    reward: Annotated[str, Field(min_length=1, max_length=100)] = "бесплатная стрижка"
    reward_en: str = "a free haircut"
    reward_percent: Annotated[int, Field(ge=1, le=100)] = 100  # off the visit it is used on
    reward_services: list[Key] = []  # the services the reward is for; empty: any
    points_percent: Annotated[Decimal, BeforeValidator(_percent)] = Decimal(5)
    points_max_percent: Annotated[int, Field(ge=1, le=100)] = 50  # of a visit's price
    referral_reward: Annotated[int, Field(ge=0, le=100_000)] = 0  # each, friend and referrer

    def reward_title(self, locale: str) -> str:
        return localised(locale, self.reward, self.reward_en)


TEMPLATE_VALUES = (
    "name",
    "service",
    "master",
    "when",
    "date",
    "gift",
    "discount",
    "days",
    "tip",
    "address",
    "friend",
)
PROACTIVE_KINDS = (
    "booking_confirmation",
    "reminder",
    "feedback_request",
    "next_visit_offer",
    "care_tip",
    "return_nudge",
    "warm_offer",
    "winback",
    "birthday",
    "referral_reward",
)


class Template(_Strict):
    """An approved WhatsApp message template: used for a kind outside the 24-hour window."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "ru"
    params: list[Literal[TEMPLATE_VALUES]] = []  # type: ignore[valid-type]


def _whatsapp_number(value: Any) -> str:
    """The business's WhatsApp number in international form, kept as digits (wa.me/<it>)."""
    text = str(value).strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text if text.startswith("+") else "+" + text, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError("must be a phone number in international form, e.g. +7 912 345-67-89")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


class WhatsApp(_Strict):
    """Templates by message kind; a kind without one is not sent outside the window. The
    number is the business's WhatsApp number, for the wa.me links of referrals."""

    number: Annotated[str, BeforeValidator(_whatsapp_number)] = ""
    templates: dict[Literal[PROACTIVE_KINDS], Template] = {}  # type: ignore[valid-type]


class Service(_Strict):
    key: Key
    name: Annotated[str, Field(min_length=1, max_length=60)]
    name_en: str = ""
    duration: Annotated[int, _count("minutes", most=12 * 60)]
    price: Money
    return_interval_days: Days = 30
    care_tip: str = ""
    care_tip_en: str = ""
    # Services offered with this one at booking ("add a beard trim?"), by key: the first
    # one a master doing both has time for is offered, once per booking.
    pairs_with: list[Key] = []

    def title(self, locale: str) -> str:
        return localised(locale, self.name, self.name_en)


class Master(_Strict):
    key: Key
    name: Annotated[str, Field(min_length=1, max_length=60)]
    name_en: str = ""
    role: Literal["master", "admin", "owner"] = "master"
    telegram_id: Annotated[int, Field(gt=0, lt=2**53)] | None = None
    services: list[Key] = []  # empty: every service
    hours: WeeklyHours | None = None  # None: the business's hours


def reference_problems(data: Mapping[str, Any]) -> list[str]:
    """What refers to something missing or repeats what must be unique, each as 'path:
    reason'. Works on the raw file too (whatever the types), so a file's every problem is
    reported in one run alongside the value errors."""
    problems = []
    sections = {kind: data.get(kind) for kind in ("services", "masters")}
    items = {kind: v if isinstance(v, list) else [] for kind, v in sections.items()}
    for kind, rows in items.items():
        seen: dict[object, int] = {}
        for index, item in enumerate(rows):
            key = item.get("key") if isinstance(item, Mapping) else None
            if key is not None and key in seen:
                problems.append(
                    f"{kind}[{index}].key: {key!r} is used twice (also {kind}[{seen[key]}])"
                )
            seen.setdefault(key, index)
    known = {s.get("key") for s in items["services"] if isinstance(s, Mapping)}
    for index, service in enumerate(items["services"]):
        pairs = service.get("pairs_with") if isinstance(service, Mapping) else None
        for key in pairs if isinstance(pairs, list) else []:
            if key == service.get("key"):
                problems.append(f"services[{index}].pairs_with: {key!r} is the service itself")
            elif key not in known:
                problems.append(f"services[{index}].pairs_with: unknown service {key!r}")
    chats: dict[object, int] = {}
    for index, master in enumerate(items["masters"]):
        if not isinstance(master, Mapping):
            continue
        wanted = master.get("services")
        for key in wanted if isinstance(wanted, list) else []:
            if key not in known:
                problems.append(f"masters[{index}].services: unknown service {key!r}")
        chat = master.get("telegram_id")
        if chat is not None and chat in chats:
            problems.append(f"masters[{index}].telegram_id: also given to masters[{chats[chat]}]")
        chats.setdefault(chat, index)
    loyalty = data.get("loyalty")
    wanted = loyalty.get("reward_services") if isinstance(loyalty, Mapping) else None
    for key in wanted if isinstance(wanted, list) else []:
        if key not in known:
            problems.append(f"loyalty.reward_services: unknown service {key!r}")
    return problems


class BusinessConfig(_Strict):
    business: Business
    booking: Booking = Booking()
    retention: Retention = Retention()
    offers: Offers = Offers()
    whatsapp: WhatsApp = WhatsApp()
    digest: DigestPlan = DigestPlan()
    payroll: Payroll | None = None  # no [payroll]: the digest shows no bonus lines
    loyalty: Loyalty | None = None  # no [loyalty]: no "My bonus", no "Invite a friend"
    hours: WeeklyHours
    services: Annotated[list[Service], Field(min_length=1)]
    masters: Annotated[list[Master], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> BusinessConfig:
        problems = reference_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business.timezone)

    def service(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)

    def master(self, key: str) -> Master | None:
        return next((m for m in self.masters if m.key == key), None)

    def hours_of(self, master: Master) -> list[WorkingHours]:
        return (master.hours or self.hours).working_hours()

    def masters_for(self, service_key: str) -> list[Master]:
        return [m for m in self.masters if not m.services or service_key in m.services]
