"""The booking limits of business.toml [booking]: how many visits one client may hold,
never two at once, and how many bookings one chat may make in a day. Each refusal says
why and gives the shop's phone, since calling is still the way to book more."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from domain import vocabulary as press
from domain.replies import Button, Reply, rows
from domain.slots import Interval
from domain.vocabulary import Act, Step
from handlers.common import menu_button
from handlers.turn import Turn
from storage.queries import booked_in, clashing_visit, upcoming_count
from storage.tables import Visit


async def booking_refusal(
    turn: Turn, interval: Interval | None = None, moving: Visit | None = None
) -> Reply | None:
    """Why this client cannot book `interval` (or anything, when None) now, or None.
    Moving a visit keeps the count the same, so only the overlap is checked then."""
    assert turn.client is not None and turn.client.id is not None
    client_id = turn.client.id
    if moving is None:
        if refusal := await _too_many_upcoming(turn, client_id):
            return refusal
        if refusal := await _too_many_today(turn, client_id):
            return refusal
    if interval is None:
        return None
    clash = await clashing_visit(
        session=turn.session,
        client_id=client_id,
        interval=interval,
        moving=moving.id if moving else None,
    )
    if clash is None:
        return None
    text = turn._(
        "You already have a visit at that time: {when}. Please choose another time or "
        "call us: {phone}."
    ).format(when=turn.tr.when(clash.starts_at), phone=_phone(turn))
    return _refusal(turn, text)


async def _too_many_upcoming(turn: Turn, client_id: int) -> Reply | None:
    limit = turn.config.booking.max_upcoming_visits
    if await upcoming_count(session=turn.session, client_id=client_id, now=turn.now) < limit:
        return None
    text = turn._(
        "You already have {count} upcoming visits, the most the bot can book at once. "
        "To book another one, please call us: {phone}."
    ).format(count=limit, phone=_phone(turn))
    return _refusal(turn, text)


async def _too_many_today(turn: Turn, client_id: int) -> Reply | None:
    limit = turn.config.booking.max_bookings_per_day
    tz = turn.config.tz
    day = turn.now.astimezone(tz).date()
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    booked = await booked_in(
        session=turn.session,
        client_id=client_id,
        source=turn.inbound.channel,
        start=start,
        end=start + timedelta(days=1),
    )
    if booked < limit:
        return None
    text = turn._(
        "Bookings made today: {count}, the most the bot takes in one day. "
        "Please try again tomorrow or call us: {phone}."
    ).format(count=limit, phone=_phone(turn))
    return _refusal(turn, text)


def _refusal(turn: Turn, text: str) -> Reply:
    turn.goto(Step.MENU)
    buttons = [Button(turn._("My visits"), press.tap(Act.MY_VISITS)), menu_button(turn)]
    return Reply(text, buttons=rows(buttons, 2), edit=True)


def _phone(turn: Turn) -> str:
    return turn.config.business.phone or "—"
