"""The booking_confirmation message's words: what, who, when, how long, the price, the
address, the comment and the reminders still ahead. Written once for the confirmation a
client reads in the chat right after booking (handlers/booking.py) and for the one the
outbox sends when staff book or move a visit for them (scheduler/messages.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.business import BusinessConfig
from domain.retention import reminders_ahead
from domain.text import Translator, upper_first


def confirmation_lines(
    tr: Translator,
    config: BusinessConfig,
    *,
    headline: str,
    service: str,
    master: str,
    starts_at: datetime,
    minutes: int,
    price: Decimal,
    comment: str,
    booked_at: datetime,
    price_text: str | None = None,
) -> list[str]:
    lines = [
        headline,
        "",
        f"{service} · {master}",
        upper_first(tr.when(starts_at)),
        tr._("Duration: {duration}").format(duration=tr.minutes(minutes)),
        price_text or tr._("Price: {price}").format(price=tr.money(price)),
    ]
    if config.business.address:
        lines.append(tr._("Address: {address}").format(address=config.business.where(tr.locale)))
    if comment:
        lines.append(tr._("Comment: {comment}").format(comment=comment))
    promise = reminder_promise(tr, config, starts_at=starts_at, booked_at=booked_at)
    if promise:
        lines += ["", promise]
    return lines


def reminder_promise(
    tr: Translator, config: BusinessConfig, *, starts_at: datetime, booked_at: datetime
) -> str:
    """The reminders still ahead of this visit, and only those (none for a visit in an
    hour: the client has just booked it)."""
    policy = config.retention
    ahead = reminders_ahead(
        starts_at=starts_at,
        booked_at=booked_at,
        hours_before=policy.reminder_hours,
        tz=config.tz,
        hours=policy.quiet_hours,
    )
    moments = [
        tr._("the day before")
        if before == 24
        else tr.n_("{n} hour before", "{n} hours before", before).format(n=before)
        for before in ahead
    ]
    if not moments:
        return ""
    when = moments[0]
    for later in moments[1:]:
        when = tr._("{earlier} and {later}").format(earlier=when, later=later)
    return tr._("We will remind you {when}.").format(when=when)


def visit_price_text(
    tr: Translator,
    config: BusinessConfig,
    *,
    price: Decimal,
    discount: Decimal | None,
    source: str | None,
    staff: bool = False,
) -> str:
    """A visit's price line: 'Price: ₽1,440 instead of ₽1,800 (20% off: welcome back)',
    or just the price when nothing was taken off. `staff`: worded for staff ("birthday
    gift", not "your birthday gift")."""
    if not discount or not source:
        return tr._("Price: {price}").format(price=tr.money(price))
    full = price + discount
    percent = int((discount * 100 / full).to_integral_value()) if full else None
    return discounted_price_text(
        tr,
        config,
        price=price,
        full=full,
        source=source,
        percent=percent,
        spends=int(discount),
        staff=staff,
    )


def discounted_price_text(
    tr: Translator,
    config: BusinessConfig,
    *,
    price: Decimal,
    full: Decimal,
    source: str,
    percent: int | None,
    spends: int,
    staff: bool = False,
) -> str:
    """'Price: {price} instead of {full} ({why})': why names the offer, the reward or the
    points the discount came from (`source`, as a visit stores it)."""
    reason = source.split(":", 1)[0]
    programme = config.loyalty
    if reason == "winback":
        if staff:
            why = tr._("{discount} off: the win-back offer").format(discount=f"{percent}%")
        else:
            why = tr._("{discount} off: welcome back").format(discount=f"{percent}%")
    elif reason == "birthday":
        if staff:
            why = tr._("{discount} off: birthday gift").format(discount=f"{percent}%")
        else:
            why = tr._("{discount} off: your birthday gift").format(discount=f"{percent}%")
    elif reason == "reward" and programme is not None:
        reward = programme.reward_title(tr.locale)
        if staff:
            why = tr._("the loyalty reward: {reward}").format(reward=reward)
        else:
            why = tr._("your reward: {reward}").format(reward=reward)
    elif reason == "points":
        why = tr.n_("{n} bonus point used", "{n} bonus points used", spends).format(n=spends)
    else:
        why = tr._("a discount")
    return tr._("Price: {price} instead of {full} ({why})").format(
        price=tr.money(price), full=tr.money(full), why=why
    )
