"""A broadcast: what its clients read, and why a client of the chosen group does not get
it. The preview (handlers/staff_broadcast.py) and the sender's composer
(scheduler/messages.py) both build the message here, so the preview shows exactly what
goes out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain import vocabulary as press
from domain.loyalty import Group
from domain.replies import Button, Reply, rows
from domain.text import N_, Translator
from domain.vocabulary import Act

TEXT_MAX = 1000  # characters the owner may write: a message, not a newsletter
BIRTHDAY_FIRST_DAYS = 7  # a birthday this close (today included): the greeting goes first


class LeftOut(StrEnum):
    """Why a client of the group does not get the broadcast, in the order it is checked."""

    no_offers = "no_offers"  # did not agree to offers, or turned them off
    unreachable = "unreachable"  # deleted, no personal-data consent, no working chat
    whatsapp_window = "whatsapp_window"  # WhatsApp only, silent for 24 hours: no free text
    birthday = "birthday"  # the birthday greeting is days away and outranks it
    capped = "capped"  # the caps: 1 offer in 7 days, 4 in 30


@dataclass(frozen=True, slots=True)
class Audience:
    """A group sorted out for a broadcast going at `due`."""

    group_size: int
    recipients: tuple[int, ...]  # client ids, in id order
    left_out: Counter[LeftOut] = field(default_factory=Counter)
    due: datetime | None = None


def broadcast_reply(tr: Translator, text: str) -> Reply:
    """The message a client reading `tr` gets: the owner's text, how to stop offers, and
    a button to book."""
    stop = tr._("/stop — no more offers (reminders about your visits still come)")
    book = Button(tr._("Book a visit"), press.tap(Act.START_BOOKING))
    return Reply(f"{text}\n\n{stop}", buttons=rows([book]), kind="broadcast")


#: A group as a broadcast names it ("to hot clients").
GROUP_NAMES: Mapping[str, str] = {
    Group.hot: N_("hot clients"),
    Group.warm: N_("warm clients"),
    Group.sleeping: N_("sleeping clients"),
    Group.prospect: N_("clients who have not come yet"),
    Group.vip: N_("VIP clients"),
    Group.everyone: N_("everyone who accepts offers"),
}
WAITING = ("pending", "sending")  # outbox statuses of a row not yet settled


def outcome_text(
    tr: Translator, *, group: str, created_at: datetime, counts: Mapping[str, int]
) -> str:
    """How far a broadcast has got, from its outbox rows by status: 'The broadcast of
    November 23 to hot clients is done: 28 of 30 delivered; 2 not (…).'"""
    day = tr.day(tr.local(created_at).date())
    named = tr._(GROUP_NAMES.get(group, group))
    total = sum(counts.values())
    sent = counts.get("sent", 0)
    waiting = sum(counts.get(status, 0) for status in WAITING)
    if waiting:
        return tr._(
            "The broadcast of {day} to {group}: {sent} of {total} delivered so far, "
            "{waiting} waiting."
        ).format(day=day, group=named, sent=sent, total=total, waiting=waiting)
    if sent == total:
        return tr._(
            "The broadcast of {day} to {group} is done: {sent} of {total} delivered."
        ).format(day=day, group=named, sent=sent, total=total)
    return tr._(
        "The broadcast of {day} to {group} is done: {sent} of {total} delivered; {missed} "
        "not (turned offers off since, blocked the bot or could not be reached)."
    ).format(day=day, group=named, sent=sent, total=total, missed=total - sent)
