"""The staff's day: /today, /tomorrow, /day 2026-12-01, one visit's card with its marks
(came / no-show / cancel). A master sees their own visits; the owner and administrators
see everyone's, by master."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from domain import vocabulary as press
from domain.agenda import STATUS_NAMES, AgendaVisit, read_day, visit_lines
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.text import N_, one_line
from domain.vocabulary import Act, Step, decode_day
from handlers.flows import Flow, StaffCommand
from handlers.staff_menu import is_manager, refuse, staff_menu_button
from handlers.turn import Turn
from storage.loyalty import settle_visit
from storage.outbox import enqueue_for_visit
from storage.staff import agenda
from storage.tables import ACTIVE_VISIT, Client, Role, Visit, VisitStatus

EVERYONE = frozenset(Role)
DAYS_AROUND = 366  # /day reaches a year back and ahead


def day_bounds(turn: Turn, day: date) -> tuple[datetime, datetime]:
    """The local day in UTC; the next local midnight, not +24 h (a DST day)."""
    tz = turn.config.tz
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    return start, end


def today(turn: Turn) -> date:
    return turn.now.astimezone(turn.config.tz).date()


def service_title(turn: Turn, visit: Visit) -> str:
    """The visit's service, and the one added at booking: 'Men's haircut + Beard trim'."""
    return turn.catalog.visit_title(visit.service_id, visit.addon_service_id, turn.locale)


def master_name(turn: Turn, master_id: int) -> str:
    master = turn.catalog.masters.get(master_id)
    return master.title(turn.locale) if master else "—"


async def command_today(turn: Turn, args: str) -> list[Reply]:
    return [await show_day(turn, today(turn))]


async def command_tomorrow(turn: Turn, args: str) -> list[Reply]:
    return [await show_day(turn, today(turn) + timedelta(days=1))]


async def command_day(turn: Turn, args: str) -> list[Reply]:
    day = read_day(args, today=today(turn))
    if day is None or abs((day - today(turn)).days) > DAYS_AROUND:
        return [Reply(turn._("Write the day as /day 2026-12-01 or /day 01.12."))]
    return [await show_day(turn, day)]


async def press_day(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, EVERYONE)
    if refused is not None:
        return [refused]
    day = decode_day(args, 0)
    if abs((day - today(turn)).days) > DAYS_AROUND:
        day = today(turn)
    return [await show_day(turn, day, edit=True)]


async def show_day(turn: Turn, day: date, *, edit: bool = False) -> Reply:
    turn.goto(Step.STAFF_DAY, day=day.isoformat())
    return await view_day(turn, edit=edit)


async def view_day(turn: Turn, *, edit: bool = False) -> Reply:
    staff = turn.staff
    if staff is None:
        return Reply(turn._("This is for the staff of the shop."))
    day = date.fromisoformat(turn.data["day"])
    start, end = day_bounds(turn, day)
    everyone = is_manager(staff)
    visits = await agenda(
        session=turn.session,
        start=start,
        end=end,
        service_title=lambda visit: service_title(turn, visit),
        master_id=None if everyone else staff.id,
    )
    lines = [upper_day(turn, day)]
    if not visits:
        lines.append(turn._("No visits booked."))
    for master_id in _masters_in_order(turn, visits):
        if everyone:
            lines.append("")
            lines.append(master_name(turn, master_id) + ":")
        for visit in (v for v in visits if v.master_id == master_id):
            lines += visit_lines(turn.tr, visit)
    buttons = [
        Button(
            f"{turn.tr.clock(v.starts_at)} {one_line(v.client)}"[:60], press.staff_visit(v.visit_id)
        )
        for v in visits
        if v.status in ACTIVE_VISIT
    ]
    navigation = (
        Button(turn._("« Previous day"), press.staff_day(day - timedelta(days=1))),
        Button(turn._("Next day »"), press.staff_day(day + timedelta(days=1))),
    )
    layout = (*rows(buttons, per_row=2), navigation, (staff_menu_button(turn),))
    return Reply("\n".join(lines), buttons=layout, edit=edit)


def upper_day(turn: Turn, day: date) -> str:
    return turn.tr.full_day(day) + ":"


def _masters_in_order(turn: Turn, visits: list[AgendaVisit]) -> list[int]:
    present = {v.master_id for v in visits}
    ordered = [m for m in turn.catalog.masters if m in present]
    return ordered + sorted(present - set(ordered))


# --- one visit ---------------------------------------------------------------------------


async def _visit_of_staff(turn: Turn, visit_id: int) -> Visit | Reply:
    """The visit, when the presser may act on it: its master, or the owner / an admin."""
    refused = refuse(turn, EVERYONE)
    if refused is not None:
        return refused
    assert turn.staff is not None
    visit = await turn.session.get(Visit, visit_id)
    if visit is None:
        return Reply(turn._("This visit does not exist any more."))
    if visit.master_id != turn.staff.id and not is_manager(turn.staff):
        return Reply(turn._("This is another master's visit."))
    return visit


async def press_visit(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_of_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    return [await visit_card(turn, found)]


async def visit_card(turn: Turn, visit: Visit) -> Reply:
    client = await turn.session.get(Client, visit.client_id)
    lines = [
        f"{turn.tr.when(visit.starts_at)}, {service_title(turn, visit)}",
        turn._("Master: {name}").format(name=master_name(turn, visit.master_id)),
        turn._("Client: {name}").format(name=one_line(client.name) if client else "—"),
    ]
    if client and client.phone:
        lines.append(turn._("Phone: {phone}").format(phone=client.phone))
    if visit.discount:
        lines.append(
            turn._("Price: {price} (after a discount of {discount})").format(
                price=turn.tr.money(visit.price), discount=turn.tr.money(visit.discount)
            )
        )
    else:
        lines.append(turn._("Price: {price}").format(price=turn.tr.money(visit.price)))
    lines.append(turn._("Status: {status}").format(status=turn._(STATUS_NAMES[visit.status])))
    if visit.comment:
        lines.append(turn._("Comment: {text}").format(text=one_line(visit.comment)))
    buttons = []
    if visit.status in ACTIVE_VISIT and visit.starts_at <= turn.now:
        buttons += [
            Button(
                turn._("Came, {price}").format(price=turn.tr.money(visit.price)),
                press.staff_came(visit.id),
            ),
            Button(turn._("Came, other amount"), press.staff_other_amount(visit.id)),
            Button(turn._("No-show"), press.staff_no_show(visit.id)),
        ]
    if visit.status in ACTIVE_VISIT:
        buttons.append(Button(turn._("Cancel the visit"), press.staff_cancel(visit.id)))
    day = visit.starts_at.astimezone(turn.config.tz).date()
    buttons.append(Button(turn._("« Back to the day"), press.staff_day(day)))
    return Reply("\n".join(lines), buttons=rows(buttons))


async def press_cancel(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_of_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    if found.status not in ACTIVE_VISIT:
        return [await visit_card(turn, found)]
    question = turn._("Cancel this visit? The client will get a message about it.")
    buttons = [
        Button(turn._("Yes, cancel and tell the client"), press.staff_cancel_sure(found.id)),
        Button(turn._("No, keep it"), press.staff_visit(found.id)),
    ]
    card = await visit_card(turn, found)
    return [Reply(f"{card.text}\n\n{question}", buttons=rows(buttons), edit=True)]


async def press_cancel_sure(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_of_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    if found.status not in ACTIVE_VISIT:
        text = turn._("This visit is no longer active: nothing was changed.")
        return [Reply(text), await visit_card(turn, found)]
    await cancel_for_client(turn, found, reason="staff")
    text = turn._("Cancelled; the client will be told.")
    return [
        Reply(text, edit=True),
        await show_day(turn, found.starts_at.astimezone(turn.config.tz).date()),
    ]


async def cancel_for_client(turn: Turn, visit: Visit, *, reason: str) -> None:
    """Cancel on the shop's side and tell the client (the outbox's `visit_cancelled`)."""
    visit.status, visit.cancelled_at, visit.cancel_reason = (
        VisitStatus.cancelled,
        turn.now,
        reason,
    )
    turn.session.add(visit)
    await turn.session.flush()
    await settle_visit(session=turn.session, config=turn.config, visit=visit, now=turn.now)
    await enqueue_for_visit(session=turn.session, kind="visit_cancelled", visit=visit, now=turn.now)


async def view_staff_day(turn: Turn) -> Reply:
    return await view_day(turn)


FLOW = Flow(
    "staff day",
    views={Step.STAFF_DAY: view_staff_day},
    actions={
        Act.STAFF_DAY: press_day,
        Act.STAFF_VISIT: press_visit,
        Act.STAFF_CANCEL: press_cancel,
        Act.STAFF_CANCEL_SURE: press_cancel_sure,
    },
    commands={
        "today": StaffCommand(command_today, N_("Today's visits")),
        "tomorrow": StaffCommand(command_tomorrow, N_("Tomorrow's visits")),
        "day": StaffCommand(command_day, N_("Visits of a day: /day 2026-12-01"), button=False),
    },
)
