"""Staff take time off (/off): whole local days recorded as TimeOff rows, which the
availability service reads, so clients are offered no time then. The bookings already in
those days are listed, each with "Move" (staff pick the new time on the booking screens of
handlers/staff_booking.py; the client gets the confirmation) and "Cancel, tell the client"
(handlers/staff_day.py `cancel_for_client`)."""

from __future__ import annotations

from datetime import date

from domain import vocabulary as press
from domain.agenda import read_day, read_days
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.text import N_, one_line, upper_first
from domain.vocabulary import Act, MovedVisit, Step, decode_day, encode_target
from handlers.booking import slot_label
from handlers.common import with_hint
from handlers.flows import Flow, StaffCommand
from handlers.staff_booking import (
    EVERYONE,
    back_to_time_off,
    buttons_please,
    may_move,
    out_of_date,
    staff_menu_button,
    time_off_of,
    view_days,
    who_is,
    with_menu,
)
from handlers.staff_day import (
    DAYS_AROUND,
    cancel_for_client,
    day_bounds,
    master_name,
    service_title,
    today,
)
from handlers.staff_menu import is_manager, refuse
from handlers.turn import Turn
from storage.catalog import MasterInfo
from storage.staff import add_time_off, agenda
from storage.tables import ACTIVE_VISIT, Client, Visit

OFF_AT_MOST = 60  # days of time off at once
OFF_SHOWN = 20  # bookings listed with buttons under one /off


async def command_off(turn: Turn, args: str) -> list[Reply]:
    """/off 2026-12-01 [to 2026-12-03]; the owner and administrators: /off ilya 2026-12-01."""
    assert turn.staff is not None and turn.staff.id is not None
    words = args.split()
    master_id = turn.staff.id
    if words and read_day(words[0], today=today(turn)) is None:
        named = _master_named(turn, words[0])
        if named is None:
            return [Reply(_off_usage(turn, unknown=words[0]))]
        if named.id != turn.staff.id and not is_manager(turn.staff):
            return [Reply(turn._("Only the owner or an administrator can do this."))]
        master_id, words = named.id, words[1:]
    days = read_days(" ".join(words), today=today(turn))
    if days is None:
        return [Reply(_off_usage(turn))]
    first, last = days
    if problem := _off_problem(turn, first, last):
        return [Reply(problem)]
    start, end = day_bounds(turn, first)[0], day_bounds(turn, last)[1]
    added = await add_time_off(
        session=turn.session, staff_id=master_id, start=start, end=end, reason="chat"
    )
    turn.goto(Step.STAFF_OFF, off=_off_data(master_id, first, last))
    view = await view_off(turn)
    if added is None:
        return [with_hint(turn._("This time off was recorded already."), view)]
    return [view]


def _master_named(turn: Turn, word: str) -> MasterInfo | None:
    wanted = word.casefold()
    return next(
        (
            m
            for m in turn.catalog.masters.values()
            if wanted in (m.key.casefold(), m.name.casefold(), m.name_en.casefold())
        ),
        None,
    )


def _off_usage(turn: Turn, unknown: str | None = None) -> str:
    text = turn._(
        "Write the days off like /off 2026-12-01, or /off 2026-12-01 to 2026-12-03 "
        "(or 01.12 to 03.12)."
    )
    if is_manager(turn.staff):
        keys = ", ".join(m.key for m in turn.catalog.masters.values())
        text += "\n" + turn._(
            "For another master add their key first: /off ilya 01.12 (keys: {keys})."
        ).format(keys=keys)
    if unknown is not None:
        text = (
            turn._("There is no master «{name}».").format(name=one_line(unknown)[:40]) + "\n" + text
        )
    return text


def _off_problem(turn: Turn, first: date, last: date, *, listing: bool = False) -> str | None:
    """A range that cannot be time off, said specifically. Listing time off already set
    (a button from an earlier /off) lets its start be in the past."""
    if last < first:
        return turn._(
            "The end, {last}, is before the start, {first}. Please check the days."
        ).format(first=turn.tr.day(first), last=turn.tr.day(last))
    if first < today(turn) and not listing:
        return turn._("{first} has passed: time off can start today at the earliest.").format(
            first=upper_first(turn.tr.day(first))
        )
    days = (last - first).days + 1
    if days > OFF_AT_MOST:
        return turn._(
            "That is {days} days; time off can be at most {most} days at once. "
            "Please set it in parts."
        ).format(days=days, most=OFF_AT_MOST)
    if (last - today(turn)).days > DAYS_AROUND:
        return turn._("That is more than a year ahead. Please check the year.")
    return None


def _off_data(master_id: int, first: date, last: date) -> dict[str, object]:
    return {"m": master_id, "from": first.isoformat(), "to": last.isoformat()}


def _may_set_off(turn: Turn, master_id: int) -> bool:
    return turn.staff is not None and (turn.staff.id == master_id or is_manager(turn.staff))


async def view_off(turn: Turn) -> Reply:
    off = time_off_of(turn)
    if off is None or not _may_set_off(turn, off[0]):
        return out_of_date(turn, "off")
    master_id, first, last = off
    name = master_name(turn, master_id)
    if first == last:
        head = turn._("{name} is off {day}.").format(name=name, day=turn.tr.weekday_day(first))
    else:
        head = turn._("{name} is off from {first} to {last}.").format(
            name=name, first=turn.tr.day(first), last=turn.tr.day(last)
        )
    booked = await agenda(
        session=turn.session,
        start=day_bounds(turn, first)[0],
        end=day_bounds(turn, last)[1],
        service_title=lambda visit: service_title(turn, visit),
        master_id=master_id,
        statuses=ACTIVE_VISIT,
    )
    booked = [v for v in booked if v.starts_at > turn.now]
    lines = [head, turn._("Clients will not be offered any time on these days."), ""]
    layout: list[tuple[Button, ...]] = []
    if not booked:
        lines.append(turn._("No bookings on these days."))
    else:
        lines.append(
            turn.tr.n_(
                "{n} booking on these days: move it, or cancel it and the client is told.",
                "{n} bookings on these days: move them, or cancel them and the clients are told.",
                len(booked),
            ).format(n=len(booked))
        )
    for n, visit in enumerate(booked[:OFF_SHOWN], start=1):
        when = slot_label(turn, visit.starts_at)
        phone = f", {visit.phone}" if visit.phone else ""
        lines.append(f"{n}. {when} — {one_line(visit.client)}{phone}, {visit.service}")
        layout.append(
            (
                Button(turn._("{n}. Move").format(n=n), press.staff_off_move(visit.visit_id)),
                Button(
                    turn._("{n}. Cancel, tell the client").format(n=n),
                    press.staff_off_cancel(visit.visit_id),
                ),
            )
        )
    if len(booked) > OFF_SHOWN:
        lines.append(turn._("…and {n} more: /day shows them.").format(n=len(booked) - OFF_SHOWN))
    layout.append((staff_menu_button(turn),))
    return Reply("\n".join(lines), buttons=tuple(layout), edit=True)


async def press_off_list(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    master_id, first, last = int_arg(args, 0), decode_day(args, 1), decode_day(args, 2)
    if not _may_set_off(turn, master_id) or _off_problem(turn, first, last, listing=True):
        return [out_of_date(turn, "off")]
    turn.goto(Step.STAFF_OFF, off=_off_data(master_id, first, last))
    return [await view_off(turn)]


async def _visit_to_change(turn: Turn, visit_id: int) -> Visit | Reply:
    if refused := refuse(turn, EVERYONE):
        return refused
    visit = await turn.session.get(Visit, visit_id)
    if visit is None:
        return Reply(turn._("This visit does not exist any more."))
    if not _may_set_off(turn, visit.master_id):
        return Reply(turn._("This is another master's visit."))
    if not may_move(turn, visit):
        text = turn._("This visit is no longer ahead or active: nothing was changed.")
        back = back_to_time_off(turn)
        return Reply(text, buttons=with_menu(turn, [back] if back else []))
    return visit


async def press_off_move(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_to_change(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    off = {"off": turn.data["off"]} if "off" in turn.data else {}
    turn.goto(
        Step.STAFF_BOOK_DAY, t=encode_target(MovedVisit(found.id or 0)), c=found.client_id, **off
    )
    return [await view_days(turn)]


async def press_off_cancel(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_to_change(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    client = await turn.session.get(Client, found.client_id)
    text = turn._(
        "Cancel the visit of {client}, {service}, {when}? The client will get a message about it."
    ).format(
        client=who_is(turn, client) if client else "—",
        service=service_title(turn, found),
        when=turn.tr.when(found.starts_at),
    )
    keep = back_to_time_off(turn) or staff_menu_button(turn)
    buttons = [
        Button(turn._("Yes, cancel and tell the client"), press.staff_off_cancel_sure(found.id)),
        Button(turn._("No, keep it"), keep.payload),
    ]
    return [Reply(text, buttons=rows(buttons), edit=True)]


async def press_off_cancel_sure(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_to_change(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    await cancel_for_client(turn, found, reason="time off")
    done = Reply(turn._("Cancelled; the client will be told."), edit=True)
    if time_off_of(turn) is None:
        return [done]
    return [done, await view_off(turn)]


FLOW = Flow(
    "staff time off",
    views={Step.STAFF_OFF: view_off},
    text_steps={Step.STAFF_OFF: buttons_please},
    actions={
        Act.STAFF_OFF_LIST: press_off_list,
        Act.STAFF_OFF_MOVE: press_off_move,
        Act.STAFF_OFF_CANCEL: press_off_cancel,
        Act.STAFF_OFF_CANCEL_SURE: press_off_cancel_sure,
    },
    commands={
        "off": StaffCommand(
            command_off, N_("Days off: /off 2026-12-01 to 2026-12-03"), button=False
        ),
    },
)
