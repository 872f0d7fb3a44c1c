"""Staff book a visit for a caller (/book, and `book_for_client` for other staff screens)
and look the client up for it and for a walk-in (handlers/staff_walkin.py).

Booking for a caller uses the client's own free times and double-booking protection
(storage/availability.py through handlers/booking.py: the same day and time screens, the
same locks and the same check at Confirm). Staff are not held to the limits that protect
the calendar from a client's buttons (three upcoming visits, ten bookings a day): a
caller who wants more is exactly who those limits send to the phone. A client still never
gets two visits at once.

Who may do what, checked on every command and button: a master books for themselves as
the master; the owner and administrators with any master. A name search shows a master
only their own clients (a phone number finds any caller: the caller gave it). A move of a
visit from /off (handlers/staff_off.py) goes through the same day and time screens."""

from __future__ import annotations

from datetime import date, datetime

from domain import vocabulary as press
from domain.payloads import BadPayload, int_arg
from domain.replies import Button, Reply, rows
from domain.retention import in_holdout
from domain.slots import Interval
from domain.text import N_, has_letter, one_line
from domain.vocabulary import (
    Act,
    NewVisit,
    Step,
    decode_day,
    decode_moment,
    decode_part_of_day,
    encode_moment,
    encode_target,
    moment_of,
)
from handlers.booking import (
    Screens,
    Target,
    days_reply,
    discount_for,
    lock_booking,
    openings_for,
    save_visit,
    service_button,
    service_line,
    summary_lines,
    summary_price,
    taken_reply,
    target_of,
    times_reply,
)
from handlers.common import NAME_MAX, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow, StaffCommand
from handlers.registration import PhoneMistake, phone_mistake_text, read_phone, tidy_name
from handlers.staff_day import master_name, service_title
from handlers.staff_menu import is_manager, refuse, registry
from handlers.turn import Turn
from storage.catalog import MasterInfo, ServiceInfo
from storage.clients import clients_by_name, had_visit_with
from storage.guards import why_unreachable
from storage.identities import identities_of
from storage.outbox import enqueue_for_visit
from storage.queries import clashing_visit, client_by_phone, create_client
from storage.staff import master_visits_in
from storage.tables import ACTIVE_VISIT, Client, Role, Visit

EVERYONE = frozenset(Role)
BOOK, WALKIN = "book", "walkin"  # what a client is looked up for
FOUND_AT_MOST = 8  # a name search shows this many clients; more asks for more of the name

STAFF = Screens(
    days_for=press.staff_book_days,
    day=press.staff_book_day,
    part_of_day=press.staff_book_part,
    time=press.staff_book_time,
    which_time=N_("Which time {day}?"),
    which_part=N_("{day}: which part of the day?"),
)


def staff_menu_button(turn: Turn) -> Button:
    return Button(turn._("Staff menu"), press.staff_open("menu"))


def with_menu(turn: Turn, buttons: list[Button]) -> tuple[tuple[Button, ...], ...]:
    return rows([*buttons, staff_menu_button(turn)])


def me_as_master(turn: Turn) -> MasterInfo | None:
    """The sender as a master of the catalog (with hours and services), if they are one."""
    assert turn.staff is not None
    return turn.catalog.masters.get(turn.staff.id or 0)


def not_a_master(turn: Turn) -> Reply:
    return Reply(
        turn._(
            "You have no working hours in business.toml, so no visit can be booked with you. "
            "Please ask the owner to add you to it."
        )
    )


def out_of_date(turn: Turn, command: str) -> Reply:
    text = turn._("This screen is out of date. Please start again: /{command}.")
    return Reply(text.format(command=command), buttons=with_menu(turn, []))


def masters_of(turn: Turn, service: ServiceInfo) -> list[MasterInfo]:
    """Who the sender may book this service with: a master themselves, a manager anyone."""
    masters = turn.catalog.masters_for(service.id)
    if is_manager(turn.staff):
        return masters
    assert turn.staff is not None
    return [m for m in masters if m.id == turn.staff.id]


def bookable_services(turn: Turn) -> list[ServiceInfo]:
    return [s for s in turn.catalog.services.values() if masters_of(turn, s)]


async def caller(turn: Turn) -> Client | None:
    """The caller this conversation is about (chosen by a checked step), if still here."""
    client_id = turn.data.get("c")
    client = await turn.session.get(Client, client_id) if client_id else None
    return client if client is not None and client.deleted_at is None else None


def who_is(turn: Turn, client: Client) -> str:
    name = one_line(client.name)
    return f"{name}, {client.phone}" if client.phone else name


# --- the caller: a phone number, or a name to look up ------------------------------------


async def command_book(turn: Turn, args: str) -> list[Reply]:
    """/book [phone or name]: book a visit for a caller."""
    return await start_lookup(turn, BOOK, args)


async def start_lookup(turn: Turn, purpose: str, args: str) -> list[Reply]:
    if not is_manager(turn.staff) and me_as_master(turn) is None:
        return [not_a_master(turn)]
    turn.goto(Step.STAFF_CALLER, purpose=purpose)
    if args.strip():
        return await on_caller(turn, Text(args))
    return [await view_caller(turn)]


async def book_for_client(turn: Turn, client_id: int) -> list[Reply]:
    """Book a visit for this client (the client card's "Book for them"): the services,
    then day, time, summary and confirm as for a caller. A master may book only for their
    own clients, the owner and administrators for anyone."""
    if refused := refuse(turn, EVERYONE):
        return [refused]
    if not is_manager(turn.staff) and me_as_master(turn) is None:
        return [not_a_master(turn)]
    client = await turn.session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        return [Reply(turn._("This client is no longer in the database."))]
    if not await _may_see(turn, client):
        return [Reply(turn._("This is another master's client."))]
    return await _chosen(turn, client, BOOK)


async def _may_see(turn: Turn, client: Client) -> bool:
    """A manager sees every client; a master their own, the caller this conversation is
    about and those their name search has just found."""
    assert turn.staff is not None
    if is_manager(turn.staff) or client.id == turn.data.get("c"):
        return True
    if client.id in turn.data.get("found", ()):
        return True
    return await had_visit_with(
        session=turn.session, client_id=client.id or 0, master_id=turn.staff.id or 0
    )


async def view_caller(turn: Turn) -> Reply:
    if purpose_of(turn) == WALKIN:
        text = turn._(
            "Walk-in: who is the client? Type their phone number, or a name to look them up."
        )
        buttons = [Button(turn._("Anonymous walk-in"), press.tap(Act.STAFF_WALKIN_ANONYMOUS))]
    else:
        text = turn._("Who is booking? Type the caller's phone number, or a name to look them up.")
        buttons = []
    return Reply(text, buttons=with_menu(turn, buttons))


async def on_caller(turn: Turn, event: Text | Contact) -> list[Reply]:
    query = event.phone if isinstance(event, Contact) else typed(event)
    if not query:
        hint = turn._("Please type a phone number or a name.")
        return [with_hint(hint, await _back_to_caller(turn))]
    if any(char.isdigit() for char in query):
        return await _by_phone(turn, query)
    return await _by_name(turn, query)


async def _back_to_caller(turn: Turn) -> Reply:
    turn.goto(Step.STAFF_CALLER, purpose=purpose_of(turn))
    return await view_caller(turn)


def purpose_of(turn: Turn) -> str:
    return WALKIN if turn.data.get("purpose") == WALKIN else BOOK


async def _by_phone(turn: Turn, raw: str) -> list[Reply]:
    phone = read_phone(raw, turn.config.business.phone_region)
    if isinstance(phone, PhoneMistake):
        return [with_hint(phone_mistake_text(turn, phone), await _back_to_caller(turn))]
    client = await client_by_phone(session=turn.session, phone=phone)
    if client is not None and client.deleted_at is None:
        return await _chosen(turn, client, purpose_of(turn))
    turn.goto(Step.STAFF_CALLER_NAME, purpose=purpose_of(turn), phone=phone)
    return [await view_new_name(turn)]


async def _by_name(turn: Turn, name: str) -> list[Reply]:
    if not has_letter(name):
        hint = turn._("Please type a phone number or a name.")
        return [with_hint(hint, await _back_to_caller(turn))]
    assert turn.staff is not None
    total, found = await clients_by_name(
        session=turn.session,
        part=name[:NAME_MAX],
        master_id=None if is_manager(turn.staff) else turn.staff.id,
        limit=FOUND_AT_MOST,
    )
    if not found:
        text = turn._("Nobody called «{name}» among your clients. Type the phone number instead.")
        if is_manager(turn.staff):
            text = turn._("Nobody called «{name}». Type the phone number instead.")
        return [with_hint(text.format(name=one_line(name)), await _back_to_caller(turn))]
    if total > FOUND_AT_MOST:
        text = turn._(
            "More than {n} clients are called «{name}». Type more of the name, or the phone number."
        )
        hint = text.format(n=FOUND_AT_MOST, name=one_line(name))
        return [with_hint(hint, await _back_to_caller(turn))]
    ids = [client.id for client in found]
    turn.goto(Step.STAFF_CALLER_PICK, purpose=purpose_of(turn), q=name[:NAME_MAX], found=ids)
    return [await view_pick(turn)]


async def view_pick(turn: Turn) -> Reply:
    purpose = purpose_of(turn)
    buttons = []
    for client_id in turn.data.get("found", []):
        client = await turn.session.get(Client, client_id)
        if client is not None and client.deleted_at is None:
            label = who_is(turn, client)[:60]
            buttons.append(Button(label, press.staff_pick_client(client.id, purpose)))
    text = turn._("Who is it? Or type another name or the phone number.")
    return Reply(text, buttons=with_menu(turn, buttons), edit=True)


async def press_pick(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    client = await turn.session.get(Client, int_arg(args, 0))
    purpose = args[1] if len(args) > 1 else ""
    if purpose not in (BOOK, WALKIN):
        raise BadPayload(":".join(args))
    if client is None or client.deleted_at is not None or not await _may_see(turn, client):
        return [out_of_date(turn, purpose)]
    return await _chosen(turn, client, purpose)


async def view_new_name(turn: Turn) -> Reply:
    text = turn._("{phone} is a new number. What is the client's name?").format(
        phone=turn.data["phone"]
    )
    back = Button(turn._("« Another number"), press.staff_open(purpose_of(turn)))
    return Reply(text, buttons=with_menu(turn, [back]))


async def on_new_name(turn: Turn, event: Text | Contact) -> list[Reply]:
    name = tidy_name(typed(event))
    problem = (
        None if has_letter(name) else turn._("A name needs at least one letter. Please type it.")
    )
    if problem := problem or too_long(turn, name, NAME_MAX):
        return [with_hint(problem, await view_new_name(turn))]
    phone = turn.data["phone"]
    holder = await client_by_phone(session=turn.session, phone=phone)
    if holder is not None and holder.deleted_at is None:  # added meanwhile: that one is it
        return await _chosen(turn, holder, purpose_of(turn))
    if holder is not None:  # a deleted client's number is free again
        holder.phone, holder.phone_verified = None, False
        turn.session.add(holder)
        await turn.session.flush()
    client = await create_client(
        session=turn.session,
        name=name,
        phone=phone,
        # Staff took the number from the person themselves: it counts as proven, like an
        # import, and the caller's Telegram contact or WhatsApp number links to this client.
        phone_verified=True,
        source="staff",
        locale=turn.config.business.default_locale,
        holdout=in_holdout(phone, turn.config.retention.holdout_share),
        # Given to staff on the phone; offers only if the client turns them on in the bot.
        consent_at=turn.now,
        created_at=turn.now,
    )
    return await _chosen(turn, client, purpose_of(turn))


async def _chosen(turn: Turn, client: Client, purpose: str) -> list[Reply]:
    if purpose == WALKIN:  # handlers/staff_walkin.py goes on from here
        turn.goto(Step.STAFF_WALKIN_SERVICE, c=client.id)
        return [await registry().views[Step.STAFF_WALKIN_SERVICE](turn)]
    turn.goto(Step.STAFF_BOOK_SERVICE, c=client.id)
    return [await view_services(turn)]


# --- /book: service → master → day → time → summary → confirm ----------------------------


async def view_services(turn: Turn) -> Reply:
    client = await caller(turn)
    if client is None:
        return out_of_date(turn, BOOK)
    buttons = [
        Button(service_button(turn, s), press.staff_book_service(s.id))
        for s in bookable_services(turn)
    ]
    text = turn._("Booking for {client}. Choose a service:").format(client=who_is(turn, client))
    return Reply(text, buttons=with_menu(turn, buttons), edit=True)


async def press_service(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    service = turn.catalog.services.get(int_arg(args, 0))
    client = await caller(turn)
    if client is None or not turn.step.startswith("staff.book."):
        return [out_of_date(turn, BOOK)]
    masters = masters_of(turn, service) if service else []
    if service is None or not masters:
        hint = turn._("Sorry, this service is no longer offered.")
        return [with_hint(hint, await view_services(turn))]
    if len(masters) == 1:
        return await _show_days(turn, Target(service, masters[0].id))
    turn.goto(Step.STAFF_BOOK_MASTER, c=client.id, t=encode_target(NewVisit(service.id, 0)))
    return [await view_masters(turn)]


async def view_masters(turn: Turn) -> Reply:
    target = await _target(turn, turn.data["t"])
    client = await caller(turn)
    if target is None or client is None:
        return out_of_date(turn, BOOK)
    service = target.service
    favourite = client.favourite_master_id
    buttons = [
        Button(turn._("Any available master"), press.staff_book_days(NewVisit(service.id, 0)))
    ]
    for master in sorted(masters_of(turn, service), key=lambda m: m.id != favourite):
        star = "★ " if master.id == favourite else ""
        buttons.append(
            Button(
                star + master.title(turn.locale),
                press.staff_book_days(NewVisit(service.id, master.id)),
            )
        )
    back = Button(turn._("« Back"), press.staff_pick_client(client.id, BOOK))
    text = turn._("{service}, {duration}. Choose a master:").format(
        service=service_line(turn, service), duration=turn.tr.minutes(service.minutes)
    )
    return Reply(text, buttons=with_menu(turn, [*buttons, back]), edit=True)


def may_move(turn: Turn, visit: Visit | None) -> bool:
    """Staff move a visit that is still ahead: their own, or anyone's for a manager."""
    staff = turn.staff
    return (
        staff is not None
        and visit is not None
        and visit.status in ACTIVE_VISIT
        and visit.starts_at > turn.now
        and (visit.master_id == staff.id or is_manager(staff))
    )


async def _target(turn: Turn, token: str) -> Target | None:
    """The target a staff payload names, when the sender may book it: a master only with
    themselves (never "any available", which could land on someone else)."""
    target = await target_of(turn, token, may_move)
    if target is None or target.visit is not None:
        return target
    if not is_manager(turn.staff) and (turn.staff is None or target.master_id != turn.staff.id):
        return None
    return target


async def _booking(turn: Turn, token: str) -> tuple[Target, Client] | Reply:
    """The target of a booking button and the caller this conversation is booking for."""
    if refused := refuse(turn, EVERYONE):
        return refused
    target = await _target(turn, token)
    client = await caller(turn)
    if target is None or client is None or not turn.step.startswith("staff.book."):
        return out_of_date(turn, BOOK)
    if target.visit is not None and target.visit.client_id != client.id:
        return out_of_date(turn, BOOK)
    return target, client


def _kept(turn: Turn) -> dict[str, object]:
    """What every step of a booking carries: the caller, and the time off a move came from."""
    kept: dict[str, object] = {"c": turn.data.get("c")}
    if "off" in turn.data:
        kept["off"] = turn.data["off"]
    return kept


async def _show_days(turn: Turn, target: Target) -> list[Reply]:
    turn.goto(Step.STAFF_BOOK_DAY, t=target.token, **_kept(turn))
    return [await view_days(turn)]


async def press_days(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _booking(turn, args[0] if args else "")
    if isinstance(found, Reply):
        return [found]
    return await _show_days(turn, found[0])


async def view_days(turn: Turn) -> Reply:
    found = await _booking(turn, turn.data["t"])
    if isinstance(found, Reply):
        return found
    target, client = found
    days = (await openings_for(turn, target, client.favourite_master_id)).days()
    reply = days_reply(
        turn,
        target,
        days,
        STAFF,
        back=_back_from_days(turn, target, client),
        home=staff_menu_button(turn),
    )
    if target.visit is None:
        return reply
    head = turn._("Moving the visit of {client}, {when}.").format(
        client=who_is(turn, client), when=turn.tr.when(target.visit.starts_at)
    )
    return with_hint(head, reply)


def _back_from_days(turn: Turn, target: Target, client: Client) -> Button:
    if target.visit is not None:
        return back_to_time_off(turn) or staff_menu_button(turn)
    if is_manager(turn.staff) and len(masters_of(turn, target.service)) > 1:
        return Button(turn._("« Back"), press.staff_book_service(target.service.id))
    return Button(turn._("« Back"), press.staff_pick_client(client.id, BOOK))


async def press_day(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _booking(turn, args[0] if args else "")
    if isinstance(found, Reply):
        return [found]
    day = decode_day(args, 1)
    turn.goto(Step.STAFF_BOOK_TIME, t=found[0].token, day=day.isoformat(), **_kept(turn))
    return [await view_times(turn)]


async def press_part(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _booking(turn, args[0] if args else "")
    if isinstance(found, Reply):
        return [found]
    day = decode_day(args, 1)
    part, page = decode_part_of_day(args, 2)
    turn.goto(
        Step.STAFF_BOOK_TIME,
        t=found[0].token,
        day=day.isoformat(),
        part=part,
        page=page,
        **_kept(turn),
    )
    return [await view_times(turn)]


async def view_times(turn: Turn) -> Reply:
    found = await _booking(turn, turn.data["t"])
    if isinstance(found, Reply):
        return found
    target, client = found
    day = date.fromisoformat(turn.data["day"])
    times = (await openings_for(turn, target, client.favourite_master_id)).times(day)
    back = Button(turn._("« Other day"), press.staff_book_days(target.ref))
    return times_reply(turn, target, day, times, STAFF, back=back)


async def press_time(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _booking(turn, args[0] if args else "")
    if isinstance(found, Reply):
        return [found]
    target, client = found
    start = decode_moment(args, 1)
    free = await openings_for(turn, target, client.favourite_master_id)
    master_id = free.times(start.astimezone(turn.config.tz).date()).get(start)
    if master_id is None:
        return [taken_reply(turn, target, start, free, STAFF, home=staff_menu_button(turn))]
    token = target.with_master(master_id).token
    turn.goto(Step.STAFF_BOOK_SUMMARY, t=token, at=encode_moment(start), **_kept(turn))
    return [await view_summary(turn)]


async def view_summary(turn: Turn) -> Reply:
    found = await _booking(turn, turn.data["t"])
    if isinstance(found, Reply):
        return found
    target, client = found
    if not target.master_id:
        return out_of_date(turn, BOOK)
    start = moment_of(turn.data["at"])
    if target.visit is not None:
        head = turn._("Moving the visit of {client}:")
    else:
        head = turn._("Booking for {client}:")
    price = await summary_price(turn, target, start, client=client)
    lines = [
        head.format(client=who_is(turn, client)),
        "",
        *summary_lines(turn, target, start, price=price),
    ]
    day = start.astimezone(turn.config.tz).date()
    buttons = [
        Button(turn._("Confirm"), press.staff_book_confirm(target.ref, start, client.id)),
        Button(turn._("Change time"), press.staff_book_day(target.ref, day)),
    ]
    return Reply("\n".join(lines), buttons=with_menu(turn, buttons), edit=True)


async def press_confirm(turn: Turn, args: list[str]) -> list[Reply]:
    if refused := refuse(turn, EVERYONE):
        return [refused]
    start = decode_moment(args, 1)
    client_id = int_arg(args, 2)
    if done := await _done_already(turn, args[0] if args else "", start, client_id):
        return [done]
    found = await _booking(turn, args[0] if args else "")
    if isinstance(found, Reply):
        return [found]
    target, client = found
    if client.id != client_id or not target.master_id:
        return [out_of_date(turn, BOOK)]
    interval = Interval(start, start + target.duration)
    await lock_booking(turn, target.master_id, client_id)
    clash = await clashing_visit(
        session=turn.session,
        client_id=client_id,
        interval=interval,
        moving=target.visit.id if target.visit else None,
    )
    if clash is not None:
        text = turn._("{client} already has a visit at that time: {when}, with {master}.").format(
            client=one_line(client.name),
            when=turn.tr.when(clash.starts_at),
            master=master_name(turn, clash.master_id),
        )
        other = Button(turn._("Other day"), press.staff_book_days(target.ref))
        return [Reply(text, buttons=with_menu(turn, [other]), edit=True)]
    free = await openings_for(turn, target, client.favourite_master_id)
    if not free.is_free(start):
        turn.goto(Step.STAFF_BOOK_DAY, t=target.token, **_kept(turn))
        return [taken_reply(turn, target, start, free, STAFF, home=staff_menu_button(turn))]
    moved = target.visit is not None
    # The client's own discount, as the summary showed it (a moved visit keeps its price).
    discount = None if moved else await discount_for(turn, target.service, start, client=client)
    visit = await save_visit(
        turn, target, interval, client_id=client_id, source="staff", comment="", discount=discount
    )
    await _tell_client(turn, visit, moved=moved)
    return [await _booked(turn, visit, client, moved=moved)]


async def _done_already(turn: Turn, token: str, start: datetime, client_id: int) -> Reply | None:
    """A second tap on Confirm: the visit is booked (or moved) already, say so again."""
    if turn.step != Step.STAFF_MENU or refuse(turn, EVERYONE):
        return None
    target = await target_of(turn, token, lambda turn, visit: visit is not None)
    client = await turn.session.get(Client, client_id)
    if target is None or client is None:
        return None
    if target.visit is not None:
        visits = [target.visit] if target.visit.status in ACTIVE_VISIT else []
    else:
        visits = await master_visits_in(
            session=turn.session,
            master_id=target.master_id,
            interval=Interval(start, start + target.duration),
            statuses=ACTIVE_VISIT,
        )
    visit = next((v for v in visits if v.client_id == client_id and v.starts_at == start), None)
    assert turn.staff is not None
    if visit is None or not (is_manager(turn.staff) or visit.master_id == turn.staff.id):
        return None
    return await _booked(turn, visit, client, moved=target.visit is not None)


async def _tell_client(turn: Turn, visit: Visit, *, moved: bool) -> None:
    """The client's booking_confirmation through the outbox (and so the reminders'
    promise); a move is confirmed again at each new time."""
    if moved:
        key, payload = f":moved:{encode_moment(visit.starts_at)}", {"moved": True}
    else:
        key, payload = "", {}
    await enqueue_for_visit(
        session=turn.session,
        kind="booking_confirmation",
        visit=visit,
        now=turn.now,
        key=key,
        **payload,
    )


async def _booked(turn: Turn, visit: Visit, client: Client, *, moved: bool) -> Reply:
    back = back_to_time_off(turn) if moved else None
    turn.goto(Step.STAFF_MENU)
    what = turn._("{service} with {master}, {when}").format(
        service=service_title(turn, visit),
        master=master_name(turn, visit.master_id),
        when=turn.tr.when(visit.starts_at),
    )
    head = turn._("Moved: {client}, {what}.") if moved else turn._("Booked: {client}, {what}.")
    lines = [head.format(client=who_is(turn, client), what=what)]
    identities = await identities_of(session=turn.session, client_id=client.id or 0)
    if why_unreachable(client, identities) is None:
        lines.append(turn._("The client gets the confirmation and the reminders in the messenger."))
    else:
        lines.append(
            turn._("The bot cannot write to this client: please tell them the time yourself.")
        )
    buttons = [back] if back else [Button(turn._("Book another visit"), press.staff_open(BOOK))]
    return Reply("\n".join(lines), buttons=with_menu(turn, buttons), edit=True)


# --- the time off a move comes from (handlers/staff_off.py) ------------------------------


def time_off_of(turn: Turn) -> tuple[int, date, date] | None:
    off = turn.data.get("off")
    if not isinstance(off, dict):
        return None
    return int(off["m"]), date.fromisoformat(off["from"]), date.fromisoformat(off["to"])


def back_to_time_off(turn: Turn) -> Button | None:
    off = time_off_of(turn)
    if off is None:
        return None
    return Button(turn._("« Back to the time off"), press.staff_off_list(*off))


async def buttons_please(turn: Turn, event: Text | Contact) -> list[Reply]:
    """Text where a staff step has buttons: the step again, with a hint, nothing lost."""
    view = registry().views[turn.step]
    return [with_hint(turn._("Please choose one of the buttons below."), await view(turn))]


FLOW = Flow(
    "staff booking",
    views={
        Step.STAFF_CALLER: view_caller,
        Step.STAFF_CALLER_PICK: view_pick,
        Step.STAFF_CALLER_NAME: view_new_name,
        Step.STAFF_BOOK_SERVICE: view_services,
        Step.STAFF_BOOK_MASTER: view_masters,
        Step.STAFF_BOOK_DAY: view_days,
        Step.STAFF_BOOK_TIME: view_times,
        Step.STAFF_BOOK_SUMMARY: view_summary,
    },
    text_steps={
        Step.STAFF_CALLER: on_caller,
        Step.STAFF_CALLER_PICK: on_caller,  # another name or the phone number
        Step.STAFF_CALLER_NAME: on_new_name,
        Step.STAFF_BOOK_SERVICE: buttons_please,
        Step.STAFF_BOOK_MASTER: buttons_please,
        Step.STAFF_BOOK_DAY: buttons_please,
        Step.STAFF_BOOK_TIME: buttons_please,
        Step.STAFF_BOOK_SUMMARY: buttons_please,
    },
    actions={
        Act.STAFF_PICK_CLIENT: press_pick,
        Act.STAFF_BOOK_SERVICE: press_service,
        Act.STAFF_BOOK_DAYS: press_days,
        Act.STAFF_BOOK_DAY: press_day,
        Act.STAFF_BOOK_PART: press_part,
        Act.STAFF_BOOK_TIME: press_time,
        Act.STAFF_BOOK_CONFIRM: press_confirm,
    },
    commands={"book": StaffCommand(command_book, N_("Book a visit for a caller"))},
)
