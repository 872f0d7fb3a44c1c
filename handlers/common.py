"""Pieces every conversation module uses: the registries' types and shared replies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from domain import vocabulary as press
from domain.replies import Button, Reply, rows
from domain.text import without_format_characters
from domain.vocabulary import Act
from handlers.events import Contact, Text
from handlers.turn import Turn
from storage.tables import Visit

Action = Callable[[Turn, list[str]], Awaitable[list[Reply]]]
View = Callable[[Turn], Awaitable[Reply]]
TextStep = Callable[[Turn, Text | Contact], Awaitable[list[Reply]]]

NAME_MAX = 60

# The languages the bot speaks, each named in itself so its reader finds it.
LANGUAGES = {"ru": "Русский", "en": "English"}


def menu_button(turn: Turn) -> Button:
    return Button(turn._("« Main menu"), press.tap(Act.MAIN_MENU))


def with_hint(hint: str, view: Reply) -> Reply:
    """The current step shown again, with a short line on top saying what went wrong."""
    return replace(view, text=f"{hint}\n\n{view.text}")


def typed(event: Text | Contact) -> str:
    """What a person typed, trimmed and without invisible format characters; "" for a
    shared contact, which is no text to keep."""
    if not isinstance(event, Text):
        return ""
    return without_format_characters(event.text).strip()


def too_long(turn: Turn, text: str, limit: int) -> str | None:
    """The polite refusal for text over `limit` characters, or None when it fits."""
    if len(text) <= limit:
        return None
    return turn._("That is {length} characters; the limit is {limit}. Please shorten it.").format(
        length=len(text), limit=limit
    )


# A visit booked by mistake can be undone at once, even one starting within the cutoff:
# the master has not planned around it yet.
CHANGE_GRACE = timedelta(minutes=15)


def can_change(turn: Turn, visit: Visit) -> bool:
    """The client may still cancel or move the visit in the bot: it is further away than
    the cutoff, or it was booked (or last moved) less than CHANGE_GRACE ago."""
    cutoff = timedelta(hours=turn.config.booking.cancel_cutoff_hours)
    if visit.starts_at - turn.now >= cutoff:
        return True
    booked = max(visit.created_at, visit.rescheduled_at or visit.created_at)
    return turn.now - booked <= CHANGE_GRACE


def too_late_to_change(turn: Turn, visit: Visit) -> Reply | None:
    """The answer when the visit is too close to change in the bot, or None."""
    if can_change(turn, visit):
        return None
    text = turn._(
        "It is less than {hours} h before your visit, so it cannot be changed in the bot. "
        "Please call us: {phone}."
    ).format(hours=turn.config.booking.cancel_cutoff_hours, phone=turn.config.business.phone or "—")
    return Reply(text, buttons=rows([Button(turn._("« My visits"), press.tap(Act.MY_VISITS))]))
