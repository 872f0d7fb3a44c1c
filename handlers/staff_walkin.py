"""Staff record a walk-in (/walkin): a visit that is taking place now, completed at once
with what the client paid. The client is looked up like a caller (handlers/staff_booking.py)
or is an anonymous walk-in. The visit starts in the slot it began in and never overlaps
another visit of the master (booked or done), their time off, or a visit of the client's."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from domain import vocabulary as press
from domain.payloads import int_arg
from domain.replies import Button, Reply
from domain.slots import Interval
from domain.text import N_, one_line, upper_first
from domain.vocabulary import Act, Step
from handlers.booking import service_button
from handlers.common import with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow, StaffCommand
from handlers.staff import complete_visit, read_amount
from handlers.staff_booking import (
    EVERYONE,
    WALKIN,
    bookable_services,
    buttons_please,
    caller,
    masters_of,
    out_of_date,
    purpose_of,
    start_lookup,
    who_is,
    with_menu,
)
from handlers.staff_day import master_name
from handlers.staff_menu import refuse
from handlers.turn import Turn
from storage.catalog import MasterInfo, ServiceInfo
from storage.queries import clashing_visit, create_client, create_visit, lock_master
from storage.staff import master_visits_in, time_off_in
from storage.tables import Client


async def command_walkin(turn: Turn, args: str) -> list[Reply]:
    """/walkin [phone or name]: record a visit that is taking place now."""
    return await start_lookup(turn, WALKIN, args)


async def press_anonymous(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    if turn.step not in (Step.STAFF_CALLER, Step.STAFF_CALLER_PICK) or purpose_of(turn) != WALKIN:
        return [out_of_date(turn, WALKIN)]
    turn.goto(Step.STAFF_WALKIN_SERVICE, anonymous=True)
    return [await view_walkin_services(turn)]


async def _walkin_client(turn: Turn) -> Client | Reply | None:
    """The walk-in's client; None for an anonymous one; a Reply when the screen is stale."""
    if turn.data.get("anonymous"):
        return None
    client = await caller(turn)
    return client if client is not None else out_of_date(turn, WALKIN)


def _client_name(turn: Turn, client: Client | None) -> str:
    return who_is(turn, client) if client else turn._("an anonymous walk-in")


async def view_walkin_services(turn: Turn) -> Reply:
    client = await _walkin_client(turn)
    if isinstance(client, Reply):
        return client
    buttons = [
        Button(service_button(turn, s), press.staff_walkin_service(s.id))
        for s in bookable_services(turn)
    ]
    text = turn._("Walk-in: {client}. Which service?").format(client=_client_name(turn, client))
    return Reply(text, buttons=with_menu(turn, buttons), edit=True)


def _walkin_kept(turn: Turn) -> dict[str, object]:
    if turn.data.get("anonymous"):
        return {"anonymous": True}
    return {"c": turn.data.get("c")}


async def press_walkin_service(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    service_id = int_arg(args, 0)
    service = turn.catalog.services.get(service_id)
    if not turn.step.startswith("staff.walkin.") or isinstance(await _walkin_client(turn), Reply):
        return [out_of_date(turn, WALKIN)]
    if service_id == 0:  # "« Other service"
        turn.goto(Step.STAFF_WALKIN_SERVICE, **_walkin_kept(turn))
        return [await view_walkin_services(turn)]
    masters = masters_of(turn, service) if service else []
    if service is None or not masters:
        hint = turn._("Sorry, this service is no longer offered.")
        return [with_hint(hint, await view_walkin_services(turn))]
    if len(masters) == 1:
        return await _ask_paid(turn, service, masters[0])
    turn.goto(Step.STAFF_WALKIN_MASTER, s=service.id, **_walkin_kept(turn))
    return [await view_walkin_masters(turn)]


async def view_walkin_masters(turn: Turn) -> Reply:
    service = turn.catalog.services.get(turn.data["s"])
    if service is None:
        return await view_walkin_services(turn)
    buttons = [
        Button(m.title(turn.locale), press.staff_walkin_master(m.id))
        for m in masters_of(turn, service)
    ]
    text = turn._("{service}: who is serving the client?").format(
        service=service.title(turn.locale)
    )
    return Reply(text, buttons=with_menu(turn, buttons), edit=True)


async def press_walkin_master(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    master_id = int_arg(args, 0)
    service = turn.catalog.services.get(turn.data.get("s", 0))
    if turn.step != Step.STAFF_WALKIN_MASTER or service is None:
        return [out_of_date(turn, WALKIN)]
    master = next((m for m in masters_of(turn, service) if m.id == master_id), None)
    if master is None:
        return [out_of_date(turn, WALKIN)]
    return await _ask_paid(turn, service, master)


async def _ask_paid(turn: Turn, service: ServiceInfo, master: MasterInfo) -> list[Reply]:
    """Said at once when the walk-in cannot be recorded, not after the amount is typed."""
    turn.goto(Step.STAFF_WALKIN_AMOUNT, s=service.id, m=master.id, **_walkin_kept(turn))
    client = await _walkin_client(turn)
    if isinstance(client, Reply):
        return [client]
    if problem := await _walkin_problem(turn, service, master, client):
        return [problem]
    return [await view_walkin_amount(turn)]


async def view_walkin_amount(turn: Turn) -> Reply:
    service = turn.catalog.services.get(turn.data["s"])
    master = turn.catalog.masters.get(turn.data["m"])
    client = await _walkin_client(turn)
    if service is None or master is None or isinstance(client, Reply):
        return out_of_date(turn, WALKIN)
    text = turn._(
        "{client}: {service} with {master}, now. How much did the client pay? "
        "Tap the price or type the amount."
    ).format(
        client=upper_first(_client_name(turn, client)),
        service=service.title(turn.locale),
        master=master.title(turn.locale),
    )
    paid = Button(
        turn._("Paid {price}").format(price=turn.tr.money(service.price)),
        press.tap(Act.STAFF_WALKIN_PAID),
    )
    return Reply(text, buttons=with_menu(turn, [paid]), edit=True)


async def press_paid(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    if turn.step != Step.STAFF_WALKIN_AMOUNT:
        return [out_of_date(turn, WALKIN)]
    service = turn.catalog.services.get(turn.data["s"])
    return await _record_walkin(turn, service.price if service else None)


async def on_walkin_amount(turn: Turn, event: Text | Contact) -> list[Reply]:
    amount = read_amount(event.text if isinstance(event, Text) else "")
    if amount is None:
        hint = turn._("Please type a number, e.g. 1500.")
        return [with_hint(hint, await view_walkin_amount(turn))]
    return await _record_walkin(turn, amount)


def walkin_start(turn: Turn) -> datetime:
    """The slot the walk-in began in: now, back to the last mark of the booking grid."""
    local = turn.now.astimezone(turn.config.tz)
    into = (local.hour * 60 + local.minute) % turn.config.booking.slot_step
    return turn.now - timedelta(minutes=into, seconds=local.second, microseconds=local.microsecond)


async def _walkin_interval(turn: Turn, service: ServiceInfo, master: MasterInfo) -> Interval:
    """From the last slot start, or from the end of the master's visit that ended since."""
    start = walkin_start(turn)
    ended = await master_visits_in(
        session=turn.session,
        master_id=master.id,
        interval=Interval(start, turn.now + timedelta(seconds=1)),
    )
    for visit in ended:
        if start < visit.ends_at <= turn.now:
            start = visit.ends_at
    return Interval(start, start + service.duration)


async def _walkin_problem(
    turn: Turn, service: ServiceInfo, master: MasterInfo, client: Client | None
) -> Reply | None:
    """Why the walk-in cannot be recorded now: the master is busy or off, or the client is
    booked then already (mark that visit instead)."""
    interval = await _walkin_interval(turn, service, master)
    others = [Button(turn._("« Other service"), press.staff_walkin_service(0))]
    if len(masters_of(turn, service)) > 1:
        others.append(Button(turn._("« Other master"), press.staff_walkin_service(service.id)))
    busy = await master_visits_in(session=turn.session, master_id=master.id, interval=interval)
    if busy:
        other = busy[0]
        served = await turn.session.get(Client, other.client_id)
        text = turn._(
            "{master} has a visit from {start} to {end} ({client}), so a {service} from "
            "{begins} would overlap it. Mark that visit first, or choose another master."
        ).format(
            master=master.title(turn.locale),
            start=turn.tr.clock(other.starts_at),
            end=turn.tr.clock(other.ends_at),
            client=one_line(served.name) if served else "—",
            service=service.title(turn.locale),
            begins=turn.tr.clock(interval.start),
        )
        return Reply(text, buttons=with_menu(turn, others))
    off = await time_off_in(
        session=turn.session, staff_id=master.id, start=interval.start, end=interval.end
    )
    if off:
        text = turn._("{master} has time off now: please choose another master.")
        return Reply(text.format(master=master.title(turn.locale)), buttons=with_menu(turn, others))
    if client is not None:
        clash = await clashing_visit(
            session=turn.session, client_id=client.id or 0, interval=interval
        )
        if clash is not None:
            text = turn._(
                "{client} has a visit booked {when} with {master}: please mark that visit as "
                "came in /today instead."
            ).format(
                client=one_line(client.name),
                when=turn.tr.when(clash.starts_at),
                master=master_name(turn, clash.master_id),
            )
            return Reply(text, buttons=with_menu(turn, []))
    return None


async def _record_walkin(turn: Turn, amount: Decimal | None) -> list[Reply]:
    service = turn.catalog.services.get(turn.data.get("s", 0))
    master = turn.catalog.masters.get(turn.data.get("m", 0))
    client = await _walkin_client(turn)
    if service is None or master is None or isinstance(client, Reply) or amount is None:
        return [out_of_date(turn, WALKIN)]
    if master not in masters_of(turn, service):
        return [out_of_date(turn, WALKIN)]
    await lock_master(session=turn.session, master_id=master.id)
    if problem := await _walkin_problem(turn, service, master, client):
        return [problem]
    who = _client_name(turn, client)
    if client is None:  # made only now: an abandoned walk-in leaves no nameless client
        client = await create_client(
            session=turn.session,
            name=turn._("Walk-in client"),
            source="walk-in",
            locale=turn.config.business.default_locale,
            created_at=turn.now,
        )
    interval = await _walkin_interval(turn, service, master)
    visit = await create_visit(
        session=turn.session,
        client_id=client.id or 0,
        master_id=master.id,
        service_id=service.id,
        interval=interval,
        price=service.price,
        source="walk-in",
        now=turn.now,
    )
    await complete_visit(turn, visit, amount)
    turn.goto(Step.STAFF_MENU)
    text = turn._("Recorded: {client}, {service} with {master}, {start}–{end}, paid {amount}.")
    text = text.format(
        client=who,
        service=service.title(turn.locale),
        master=master.title(turn.locale),
        start=turn.tr.clock(interval.start),
        end=turn.tr.clock(interval.end),
        amount=turn.tr.money(amount),
    )
    again = Button(turn._("Another walk-in"), press.staff_open(WALKIN))
    return [Reply(text, buttons=with_menu(turn, [again]), edit=True)]


FLOW = Flow(
    "staff walk-in",
    views={
        Step.STAFF_WALKIN_SERVICE: view_walkin_services,
        Step.STAFF_WALKIN_MASTER: view_walkin_masters,
        Step.STAFF_WALKIN_AMOUNT: view_walkin_amount,
    },
    text_steps={
        Step.STAFF_WALKIN_SERVICE: buttons_please,
        Step.STAFF_WALKIN_MASTER: buttons_please,
        Step.STAFF_WALKIN_AMOUNT: on_walkin_amount,
    },
    actions={
        Act.STAFF_WALKIN_SERVICE: press_walkin_service,
        Act.STAFF_WALKIN_MASTER: press_walkin_master,
        Act.STAFF_WALKIN_ANONYMOUS: press_anonymous,
        Act.STAFF_WALKIN_PAID: press_paid,
    },
    commands={"walkin": StaffCommand(command_walkin, N_("Record a walk-in"))},
)
