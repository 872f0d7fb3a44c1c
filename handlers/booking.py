"""Booking: service → master → day → time → summary → confirm; "repeat my last visit";
rescheduling. Payloads carry a target (a new visit with a service and a master, 0 = any
available, or a visit being moved); domain/vocabulary.py writes and reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain import vocabulary as press
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.retention import reminders_ahead
from domain.slots import (
    Interval,
    by_part_of_day,
    usual_time,
)
from domain.text import upper_first
from domain.vocabulary import (
    Act,
    MovedVisit,
    NewVisit,
    Step,
    TargetRef,
    decode_day,
    decode_moment,
    decode_part_of_day,
    decode_target,
    encode_moment,
    encode_target,
    moment_of,
)
from handlers.common import (
    menu_button,
    too_late_to_change,
    too_long,
    typed,
    with_hint,
)
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.limits import booking_refusal
from handlers.turn import Turn
from storage.availability import Openings, openings
from storage.catalog import MasterInfo, ServiceInfo
from storage.queries import (
    completed_starts,
    create_visit,
    last_visit,
    lock_client,
    lock_master,
    upcoming_visits,
)
from storage.tables import ACTIVE_VISIT, Visit, VisitStatus


@dataclass(frozen=True, slots=True)
class Target:
    service: ServiceInfo
    master_id: int  # 0: any available master
    visit: Visit | None = None  # set when rescheduling

    @property
    def ref(self) -> TargetRef:
        if self.visit is not None:
            return MovedVisit(self.visit.id or 0)
        return NewVisit(self.service.id, self.master_id)

    @property
    def token(self) -> str:
        return encode_target(self.ref)

    def with_master(self, master_id: int) -> Target:
        return Target(self.service, master_id, self.visit)


async def target_of(turn: Turn, token: str) -> Target | None:
    """The target a payload names, or None when it no longer makes sense."""
    ref = decode_target(token)
    if isinstance(ref, MovedVisit):
        visit = await turn.session.get(Visit, ref.visit_id)
        if not _own_active(turn, visit):
            return None
        assert visit is not None
        service = turn.catalog.services.get(visit.service_id)
        if service is None or visit.master_id not in turn.catalog.masters:
            return None
        return Target(service, visit.master_id, visit)
    service = turn.catalog.services.get(ref.service_id)
    if service is None or (ref.master_id and ref.master_id not in _master_ids(turn, service, 0)):
        return None
    return Target(service, ref.master_id)


def _own_active(turn: Turn, visit: Visit | None) -> bool:
    return (
        visit is not None
        and turn.client is not None
        and visit.client_id == turn.client.id
        and visit.status in ACTIVE_VISIT
    )


def _master_ids(turn: Turn, service: ServiceInfo, master_id: int) -> list[int]:
    if master_id:
        return [master_id]
    masters = turn.catalog.masters_for(service.id)
    favourite = turn.client.favourite_master_id if turn.client else None
    return sorted((m.id for m in masters), key=lambda mid: mid != favourite)


def _master(turn: Turn, master_id: int) -> MasterInfo:
    return turn.catalog.masters[master_id]


async def _openings(turn: Turn, target: Target, day: date | None = None) -> Openings:
    """Free time for the target: on the whole horizon, or (`day`) on one local day."""
    masters = [_master(turn, m) for m in _master_ids(turn, target.service, target.master_id)]
    return await openings(
        session=turn.session,
        config=turn.config,
        service=target.service,
        masters=masters,
        now=turn.now,
        moving=target.visit,
        day=day,
    )


def _slot_buttons(turn: Turn, target: Target, picks: dict[datetime, int]) -> list[Button]:
    """One button per suggested start, naming the master free then."""
    return [
        Button(_slot_label(turn, start), press.choose_time(target.with_master(master).ref, start))
        for start, master in picks.items()
    ]


def _slot_label(turn: Turn, moment: datetime) -> str:
    return f"{turn.tr.short_day(turn.tr.local(moment).date())}, {turn.tr.clock(moment)}"


TIMES_PER_SCREEN = 12  # more time buttons than this are grouped by part of the day


def _service_button(turn: Turn, service: ServiceInfo) -> str:
    """'Men's haircut · 1 h · ₽1,800': how long it takes matters as much as the price."""
    duration = turn.tr.minutes(service.minutes)
    return f"{service.title(turn.locale)} · {duration} · {turn.tr.money(service.price)}"


def _service_line(turn: Turn, service: ServiceInfo) -> str:
    return f"{service.title(turn.locale)} · {turn.tr.money(service.price)}"


def _who(turn: Turn, master_id: int) -> str:
    return (
        _master(turn, master_id).title(turn.locale) if master_id else turn._("any available master")
    )


# Views: each shows its step again from the conversation data alone.


async def view_services(turn: Turn) -> Reply:
    buttons = [
        Button(_service_button(turn, service), press.choose_service(service.id))
        for service in turn.catalog.services.values()
        if turn.catalog.masters_for(service.id)
    ]
    return Reply(
        turn._("Choose a service:"), buttons=rows([*buttons, menu_button(turn)]), edit=True
    )


async def view_masters(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None:
        return await view_services(turn)
    service = target.service
    favourite = turn.client.favourite_master_id if turn.client else None
    buttons = [
        Button(turn._("Any available master"), press.choose_days_for(NewVisit(service.id, 0)))
    ]
    for master_id in _master_ids(turn, service, 0):
        star = "★ " if master_id == favourite else ""
        buttons.append(
            Button(
                star + _master(turn, master_id).title(turn.locale),
                press.choose_days_for(NewVisit(service.id, master_id)),
            )
        )
    text = turn._("{service}, {duration}. Choose a master:").format(
        service=_service_line(turn, service), duration=turn.tr.minutes(service.minutes)
    )
    return Reply(
        text,
        buttons=rows([*buttons, Button(turn._("« Back"), press.tap(Act.START_BOOKING))]),
        edit=True,
    )


async def view_days(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None:
        return await view_services(turn)
    days = (await _openings(turn, target)).days()
    back = Button(turn._("« Back"), _back_from_days(turn, target))
    if not days:
        text = turn._("{who} has no free time in the next {n} days. Please choose another master.")
        text = text.format(who=_who(turn, target.master_id), n=turn.config.booking.horizon_days)
        return Reply(text, buttons=rows([back, menu_button(turn)]), edit=True)
    buttons = [Button(turn.tr.short_day(day), press.choose_day(target.ref, day)) for day in days]
    text = turn._("{service}, {who}. Choose a day:").format(
        service=target.service.title(turn.locale), who=_who(turn, target.master_id)
    )
    return Reply(text, buttons=(*rows(buttons, 3), (back,)), edit=True)


def _back_from_days(turn: Turn, target: Target) -> str:
    """Where "« Back" leads from the day list. A service only one master does skips the
    master step, so going back to it would land on this very day list again."""
    if target.visit is not None:
        return press.tap(Act.MY_VISITS)
    if len(turn.catalog.masters_for(target.service.id)) == 1:
        return press.tap(Act.START_BOOKING)
    return press.choose_service(target.service.id)


async def view_times(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None:
        return await view_services(turn)
    day = date.fromisoformat(turn.data["day"])
    times = (await _openings(turn, target, day)).times(day)
    back = Button(
        turn._("« Other day"),
        press.choose_days_for(target.ref)
        if target.visit is None
        else press.reschedule(target.visit.id),
    )
    if not times:
        text = turn._("No free time is left on {day}. Please choose another day.")
        return Reply(text.format(day=turn.tr.day(day)), buttons=rows([back]), edit=True)
    shown, more = list(times), list[Button]()
    if len(times) > TIMES_PER_SCREEN:
        parts = by_part_of_day(shown, turn.config.tz)
        part = turn.data.get("part")
        if part not in parts:
            return _parts_of_day(turn, target, day, parts, back)
        shown, more = _page(turn, target, day, parts[part], part)
        back = Button(turn._("« Other part of the day"), press.choose_day(target.ref, day))
    buttons = [
        Button(turn.tr.clock(moment), press.choose_time(target.ref, moment)) for moment in shown
    ]
    text = turn._("Which time suits you {day}?").format(day=turn.tr.weekday_day(day))
    return Reply(text, buttons=(*rows(buttons, 4), *rows(more, 2), (back,)), edit=True)


def _part_label(turn: Turn, part: str) -> str:
    labels = {
        "morning": turn._("Morning"),
        "afternoon": turn._("Afternoon"),
        "evening": turn._("Evening"),
    }
    return labels[part]


def _parts_of_day(
    turn: Turn, target: Target, day: date, parts: dict[str, list[datetime]], back: Button
) -> Reply:
    """Too many times for one screen: first the parts of the day that have free times."""
    buttons = [
        Button(_part_label(turn, part), press.choose_part_of_day(target.ref, day, part))
        for part in parts
    ]
    text = turn._("{day}: what time of day suits you?").format(
        day=upper_first(turn.tr.weekday_day(day))
    )
    return Reply(text, buttons=(*rows(buttons, 3), (back,)), edit=True)


def _page(
    turn: Turn, target: Target, day: date, times: list[datetime], part: str
) -> tuple[list[datetime], list[Button]]:
    """One screen of a part of the day, and the buttons to its neighbouring screens."""
    pages = max(1, -(-len(times) // TIMES_PER_SCREEN))
    page = min(int(turn.data.get("page", 0)), pages - 1)
    shown = times[page * TIMES_PER_SCREEN : (page + 1) * TIMES_PER_SCREEN]
    more = []
    if page > 0:
        earlier = press.choose_part_of_day(target.ref, day, part, page - 1)
        more.append(Button(turn._("« Earlier times"), earlier))
    if page < pages - 1:
        later = press.choose_part_of_day(target.ref, day, part, page + 1)
        more.append(Button(turn._("Later times »"), later))
    return shown, more


async def view_summary(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None or not target.master_id:
        return await view_services(turn)
    start = moment_of(turn.data["at"])
    service = target.service
    lines = [
        turn._("Moving your visit:") if target.visit else turn._("Please check your booking:"),
        "",
        turn._("Service: {service}").format(service=service.title(turn.locale)),
        turn._("Master: {master}").format(
            master=_master(turn, target.master_id).title(turn.locale)
        ),
        *_when_lines(turn, target, start),
        turn._("Duration: {duration}").format(duration=turn.tr.minutes(service.minutes)),
        turn._("Price: {price}").format(price=turn.tr.money(service.price)),
    ]
    if turn.config.business.address:
        lines.append(
            turn._("Address: {address}").format(address=turn.config.business.where(turn.locale))
        )
    if turn.data.get("comment"):
        lines.append(turn._("Comment: {comment}").format(comment=turn.data["comment"]))
    confirm = Button(turn._("Confirm"), press.confirm_booking(target.ref, start))
    buttons = [confirm]
    if target.visit is None:
        commented = bool(turn.data.get("comment"))
        label = turn._("Change the comment") if commented else turn._("Add a comment")
        buttons.append(Button(label, press.tap(Act.ADD_COMMENT)))
    day = start.astimezone(turn.config.tz).date()
    buttons += [
        Button(turn._("Change time"), press.choose_day(target.ref, day)),
        Button(turn._("Cancel"), press.tap(Act.MAIN_MENU)),
    ]
    return Reply("\n".join(lines), buttons=rows(buttons), edit=True)


def _when_lines(turn: Turn, target: Target, start: datetime) -> list[str]:
    """A move shows the old time next to the new one, so the client sees what changes."""
    if target.visit is None:
        return [turn._("When: {when}").format(when=turn.tr.when(start))]
    return [
        turn._("From: {when}").format(when=_slot_label(turn, target.visit.starts_at)),
        turn._("To: {when}").format(when=_slot_label(turn, start)),
    ]


async def view_comment(turn: Turn) -> Reply:
    limit = turn.config.booking.comment_max_length
    text = turn._("Type a comment for the master (up to {limit} characters):").format(limit=limit)
    return Reply(text, buttons=rows([Button(turn._("« Back"), press.tap(Act.BACK_TO_SUMMARY))]))


async def view_repeat(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None:
        return await view_services(turn)
    assert turn.client is not None and turn.client.id is not None
    weekday, minute = usual_time(
        await completed_starts(session=turn.session, client_id=turn.client.id), turn.config.tz
    )
    picks = (await _openings(turn, target)).like_usual(weekday, minute)
    other = Button(turn._("Other time"), press.choose_days_for(target.ref))
    head = turn._("Same as last time: {service} with {master}.").format(
        service=target.service.title(turn.locale), master=_who(turn, target.master_id)
    )
    if not picks:
        text = (
            head
            + "\n"
            + turn._("There is no free time in the next {n} days.").format(
                n=turn.config.booking.horizon_days
            )
        )
        return Reply(text, buttons=rows([other, menu_button(turn)]), edit=True)
    buttons = _slot_buttons(turn, target, picks)
    text = head + "\n" + turn._("Free times close to your usual day and hour:")
    return Reply(text, buttons=rows([*buttons, other, menu_button(turn)]), edit=True)


# Actions.


async def press_book(turn: Turn, args: list[str]) -> list[Reply]:
    if refusal := await booking_refusal(turn):  # say so now, not after five taps
        return [refusal]
    turn.goto(Step.BOOK_SERVICE)
    return [await view_services(turn)]


async def press_service(turn: Turn, args: list[str]) -> list[Reply]:
    service = turn.catalog.services.get(int_arg(args, 0))
    if service is None or not turn.catalog.masters_for(service.id):
        hint = turn._("Sorry, this service is no longer offered.")
        turn.goto(Step.BOOK_SERVICE)
        return [with_hint(hint, await view_services(turn))]
    masters = turn.catalog.masters_for(service.id)
    if len(masters) == 1:
        return await show_days(turn, Target(service, masters[0].id))
    turn.goto(Step.BOOK_MASTER, t=encode_target(NewVisit(service.id, 0)))
    return [await view_masters(turn)]


async def press_master(turn: Turn, args: list[str]) -> list[Reply]:
    target = await target_of(turn, args[0] if args else "")
    if target is None:
        return await _gone(turn)
    return await show_days(turn, target)


def _kept(turn: Turn) -> dict[str, str]:
    """What the client already told us about this booking (the comment): changing the day
    or the time must not lose it."""
    comment = turn.data.get("comment")
    return {"comment": comment} if comment else {}


async def show_days(turn: Turn, target: Target) -> list[Reply]:
    turn.goto(Step.BOOK_DAY, t=target.token, **_kept(turn))
    return [await view_days(turn)]


async def press_day(turn: Turn, args: list[str]) -> list[Reply]:
    target = await target_of(turn, args[0] if args else "")
    if target is None:
        return await _gone(turn)
    day = decode_day(args, 1)
    turn.goto(Step.BOOK_TIME, t=target.token, day=day.isoformat(), **_kept(turn))
    return [await view_times(turn)]


async def press_part_of_day(turn: Turn, args: list[str]) -> list[Reply]:
    target = await target_of(turn, args[0] if args else "")
    if target is None:
        return await _gone(turn)
    day = decode_day(args, 1)
    part, page = decode_part_of_day(args, 2)
    turn.goto(
        Step.BOOK_TIME, t=target.token, day=day.isoformat(), part=part, page=page, **_kept(turn)
    )
    return [await view_times(turn)]


async def press_time(turn: Turn, args: list[str]) -> list[Reply]:
    target = await target_of(turn, args[0] if args else "")
    if target is None:
        return await _gone(turn)
    start = decode_moment(args, 1)
    day = start.astimezone(turn.config.tz).date()
    master_id = (await _openings(turn, target, day)).times(day).get(start)
    if master_id is None:
        return [await _taken(turn, target, start)]
    token = target.with_master(master_id).token
    turn.goto(Step.BOOK_SUMMARY, t=token, at=encode_moment(start), **_kept(turn))
    return [await view_summary(turn)]


async def press_comment(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != Step.BOOK_SUMMARY:
        return await _gone(turn)
    turn.goto(Step.BOOK_COMMENT, **turn.data)
    return [await view_comment(turn)]


async def press_back_to_summary(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step not in (Step.BOOK_COMMENT, Step.BOOK_SUMMARY):
        return await _gone(turn)
    turn.goto(Step.BOOK_SUMMARY, **turn.data)
    return [await view_summary(turn)]


async def on_comment(turn: Turn, event: Text | Contact) -> list[Reply]:
    comment = typed(event)
    if not comment:
        return [with_hint(turn._("Please type the comment."), await view_comment(turn))]
    refusal = too_long(turn, comment, turn.config.booking.comment_max_length)
    if refusal:
        return [with_hint(refusal, await view_comment(turn))]
    turn.goto(Step.BOOK_SUMMARY, **{**turn.data, "comment": comment})
    return [await view_summary(turn)]


async def press_confirm(turn: Turn, args: list[str]) -> list[Reply]:
    target = await target_of(turn, args[0] if args else "")
    start = decode_moment(args, 1)
    if target is None or not target.master_id:
        return await _already_booked(turn, start) or await _gone(turn)
    master_id, service = target.master_id, target.service
    interval = Interval(start, start + service.duration)
    if target.visit is None and (done := await _already_booked(turn, start)):
        return done
    if target.visit is not None and (refusal := too_late_to_change(turn, target.visit)):
        return [refusal]
    assert turn.client is not None and turn.client.id is not None
    await lock_master(session=turn.session, master_id=master_id)
    await lock_client(session=turn.session, client_id=turn.client.id)
    if refusal := await booking_refusal(turn, interval, moving=target.visit):
        return [refusal]
    free = await _openings(turn, target, start.astimezone(turn.config.tz).date())
    if not free.is_free(start):
        return [await _taken(turn, target, start)]
    comment = turn.data.get("comment", "") if turn.data.get("at") == encode_moment(start) else ""
    if target.visit is not None:
        visit = target.visit
        visit.starts_at, visit.ends_at = interval.start, interval.end
        visit.rescheduled_at = turn.now
        visit.status, visit.confirmed_at = VisitStatus.booked, None
        turn.session.add(visit)
        headline = turn._("Done! Your visit is moved.")
    else:
        visit = await create_visit(
            session=turn.session,
            client_id=turn.client.id,
            master_id=master_id,
            service_id=service.id,
            interval=interval,
            price=service.price,
            source=turn.inbound.channel,
            comment=comment,
            now=turn.now,
        )
        headline = turn._("Done! You are booked.")
    turn.goto(Step.MENU)
    return [confirmation(turn, visit, headline)]


def confirmation(turn: Turn, visit: Visit, headline: str) -> Reply:
    """The booking_confirmation message: what, who, when, how long, price, address."""
    service = turn.catalog.services[visit.service_id]
    lines = [
        headline,
        "",
        f"{service.title(turn.locale)} · {_master(turn, visit.master_id).title(turn.locale)}",
        upper_first(turn.tr.when(visit.starts_at)),
        turn._("Duration: {duration}").format(duration=turn.tr.minutes(service.minutes)),
        turn._("Price: {price}").format(price=turn.tr.money(visit.price)),
    ]
    if turn.config.business.address:
        lines.append(
            turn._("Address: {address}").format(address=turn.config.business.where(turn.locale))
        )
    if visit.comment:
        lines.append(turn._("Comment: {comment}").format(comment=visit.comment))
    promise = _reminder_promise(turn, visit)
    if promise:
        lines += ["", promise]
    buttons = [Button(turn._("My visits"), press.tap(Act.MY_VISITS)), menu_button(turn)]
    return Reply("\n".join(lines), buttons=rows(buttons, 2), edit=True, kind="booking_confirmation")


def _reminder_promise(turn: Turn, visit: Visit) -> str:
    """The reminders still ahead of this visit, and only those (none for a visit in an
    hour: the client has just booked it)."""
    policy = turn.config.retention
    ahead = reminders_ahead(
        starts_at=visit.starts_at,
        booked_at=turn.now,
        hours_before=policy.reminder_hours,
        tz=turn.config.tz,
        hours=policy.quiet_hours,
    )
    moments = [
        turn._("the day before")
        if before == 24
        else turn.tr.n_("{n} hour before", "{n} hours before", before).format(n=before)
        for before in ahead
    ]
    if not moments:
        return ""
    when = moments[0]
    for later in moments[1:]:
        when = turn._("{earlier} and {later}").format(earlier=when, later=later)
    return turn._("We will remind you {when}.").format(when=when)


async def _already_booked(turn: Turn, start: datetime) -> list[Reply] | None:
    """A second tap on Confirm (or a stale summary) for a visit the client already has."""
    if turn.client is None:
        return None
    for visit in await upcoming_visits(
        session=turn.session, client_id=turn.client.id or 0, now=turn.now
    ):
        if visit.starts_at == start:
            turn.goto(Step.MENU)
            return [confirmation(turn, visit, turn._("You are already booked for this time."))]
    return None


async def _taken(turn: Turn, target: Target, wanted: datetime) -> Reply:
    """The slot is gone: say so and offer the nearest free ones with the same master."""
    picks = (await _openings(turn, target)).nearest(wanted)
    turn.goto(Step.BOOK_DAY, t=target.token, **_kept(turn))
    text = turn._("Sorry, {when} is no longer available.").format(when=turn.tr.when(wanted))
    if picks:
        text += "\n" + turn._("The nearest free times:")
    buttons = _slot_buttons(turn, target, picks)
    buttons += [Button(turn._("Other day"), press.choose_days_for(target.ref)), menu_button(turn)]
    return Reply(text, buttons=rows(buttons), edit=True)


async def _gone(turn: Turn) -> list[Reply]:
    hint = turn._("That choice is no longer available, so let's start again.")
    turn.goto(Step.BOOK_SERVICE)
    return [with_hint(hint, await view_services(turn))]


async def press_repeat(turn: Turn, args: list[str]) -> list[Reply]:
    assert turn.client is not None and turn.client.id is not None
    if refusal := await booking_refusal(turn):
        return [refusal]
    booked = await upcoming_visits(session=turn.session, client_id=turn.client.id, now=turn.now)
    if booked:
        return [_already_coming(turn, booked[0])]
    visit = await last_visit(session=turn.session, client_id=turn.client.id, now=turn.now)
    service = turn.catalog.services.get(visit.service_id) if visit else None
    if visit is None or service is None or not turn.catalog.masters_for(service.id):
        hint = turn._("There is no earlier visit to repeat yet. Please choose a service.")
        turn.goto(Step.BOOK_SERVICE)
        return [with_hint(hint, await view_services(turn))]
    master_ids = {m.id for m in turn.catalog.masters_for(service.id)}
    master_id = visit.master_id if visit.master_id in master_ids else 0
    turn.goto(Step.BOOK_REPEAT, t=encode_target(NewVisit(service.id, master_id)))
    return [await view_repeat(turn)]


def _already_coming(turn: Turn, visit: Visit) -> Reply:
    """A "Repeat last visit" from a client who already has one booked: a second visit is rarely
    what they want, so show the booked one and offer to move it."""
    service = turn.catalog.services[visit.service_id]
    text = "\n".join(
        [
            turn._("You already have a visit booked:"),
            f"{service.title(turn.locale)} · {_master(turn, visit.master_id).title(turn.locale)}",
            upper_first(turn.tr.when(visit.starts_at)),
            "",
            turn._("Would you like to move it to another time?"),
        ]
    )
    buttons = [
        Button(turn._("Move this visit"), press.reschedule(visit.id)),
        Button(turn._("My visits"), press.tap(Act.MY_VISITS)),
        menu_button(turn),
    ]
    return Reply(text, buttons=rows(buttons), edit=True)


FLOW = Flow(
    "booking",
    views={
        Step.BOOK_SERVICE: view_services,
        Step.BOOK_MASTER: view_masters,
        Step.BOOK_DAY: view_days,
        Step.BOOK_TIME: view_times,
        Step.BOOK_SUMMARY: view_summary,
        Step.BOOK_COMMENT: view_comment,
        Step.BOOK_REPEAT: view_repeat,
    },
    text_steps={Step.BOOK_COMMENT: on_comment},
    actions={
        Act.START_BOOKING: press_book,
        Act.CHOOSE_SERVICE: press_service,
        Act.CHOOSE_DAYS_FOR: press_master,
        Act.CHOOSE_DAY: press_day,
        Act.CHOOSE_PART_OF_DAY: press_part_of_day,
        Act.CHOOSE_TIME: press_time,
        Act.ADD_COMMENT: press_comment,
        Act.BACK_TO_SUMMARY: press_back_to_summary,
        Act.CONFIRM_BOOKING: press_confirm,
        Act.REPEAT_LAST_VISIT: press_repeat,
    },
)
