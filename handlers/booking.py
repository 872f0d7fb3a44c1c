"""Booking: service → master → day → time → summary → confirm; "repeat my last visit";
rescheduling. Payloads carry a target (a new visit with a service and a master, 0 = any
available, or a visit being moved); domain/vocabulary.py writes and reads it.

Staff booking a caller (handlers/staff_booking.py) shows the same day and time screens
(`days_reply`, `times_reply`, `taken_reply`, with its own `Screens`) and takes the slot
the same way (`lock_booking`, `openings_for`, `save_visit`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from domain import vocabulary as press
from domain.confirmation import confirmation_lines, discounted_price_text, visit_price_text
from domain.loyalty import Discount, best_discount
from domain.payloads import BadPayload, int_arg
from domain.replies import Button, Reply, rows
from domain.retention import NEXT_VISIT_MAX_DAYS
from domain.slots import (
    Interval,
    by_part_of_day,
    usual_time,
)
from domain.text import N_, upper_first
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
from storage.loyalty import discounts_for, settle_visit
from storage.queries import (
    completed_starts,
    create_visit,
    last_visit,
    lock_client,
    lock_master,
    upcoming_visits,
)
from storage.tables import ACTIVE_VISIT, Client, Visit, VisitStatus


@dataclass(frozen=True, slots=True)
class Target:
    service: ServiceInfo
    master_id: int  # 0: any available master
    visit: Visit | None = None  # set when rescheduling
    addon: ServiceInfo | None = None  # a service added to it ("add a beard trim?")

    @property
    def ref(self) -> TargetRef:
        if self.visit is not None:
            return MovedVisit(self.visit.id or 0)
        return NewVisit(self.service.id, self.master_id, self.addon.id if self.addon else 0)

    @property
    def token(self) -> str:
        return encode_target(self.ref)

    @property
    def service_ids(self) -> list[int]:
        return [self.service.id, *([self.addon.id] if self.addon else [])]

    @property
    def duration(self) -> timedelta:
        if self.visit is not None and self.visit.addon_service_id and self.addon is None:
            return self.visit.ends_at - self.visit.starts_at  # the add-on left the price list
        return self.service.duration + (self.addon.duration if self.addon else timedelta(0))

    @property
    def price(self) -> Decimal:
        return self.service.price + (self.addon.price if self.addon else Decimal(0))

    def title(self, locale: str) -> str:
        return " + ".join(s.title(locale) for s in (self.service, self.addon) if s is not None)

    def with_master(self, master_id: int) -> Target:
        return replace(self, master_id=master_id)


@dataclass(frozen=True, slots=True)
class Screens:
    """Who the day and time screens are for, and which actions their buttons ask for: the
    client booking for themselves, or staff booking a caller (whose buttons check the
    presser's role). The free times, the layout and the paging are the same."""

    days_for: Callable[[TargetRef], str]
    day: Callable[[TargetRef, date], str]
    part_of_day: Callable[[TargetRef, date, str, int], str]
    time: Callable[[TargetRef, datetime], str]
    which_time: str  # an N_() text with {day}
    which_part: str  # an N_() text with {day}


CLIENT = Screens(
    days_for=press.choose_days_for,
    day=press.choose_day,
    part_of_day=press.choose_part_of_day,
    time=press.choose_time,
    which_time=N_("Which time suits you {day}?"),
    which_part=N_("{day}: what time of day suits you?"),
)

# Who may move a visit named by a payload: the client their own active one (staff: theirs).
MayMove = Callable[[Turn, Visit | None], bool]


async def target_of(turn: Turn, token: str, may_move: MayMove | None = None) -> Target | None:
    """The target a payload names, or None when it no longer makes sense."""
    ref = decode_target(token)
    if isinstance(ref, MovedVisit):
        visit = await turn.session.get(Visit, ref.visit_id)
        if not (may_move or _own_active)(turn, visit):
            return None
        assert visit is not None
        service = turn.catalog.services.get(visit.service_id)
        if service is None or visit.master_id not in turn.catalog.masters:
            return None
        addon = turn.catalog.services.get(visit.addon_service_id or 0)
        return Target(service, visit.master_id, visit, addon)
    service = turn.catalog.services.get(ref.service_id)
    if service is None:
        return None
    addon = turn.catalog.services.get(ref.addon_id) if ref.addon_id else None
    if ref.addon_id and (addon is None or addon.id not in service.pairs_with):
        return None
    target = Target(service, ref.master_id, addon=addon)
    if ref.master_id and ref.master_id not in _master_ids(turn, target.service_ids, 0):
        return None
    return target


def _own_active(turn: Turn, visit: Visit | None) -> bool:
    return (
        visit is not None
        and turn.client is not None
        and visit.client_id == turn.client.id
        and visit.status in ACTIVE_VISIT
    )


def _favourite(turn: Turn) -> int | None:
    return turn.client.favourite_master_id if turn.client else None


def _master_ids(
    turn: Turn, service_ids: list[int], master_id: int, favourite: int | None = None
) -> list[int]:
    """The master, or for "any available" every master who does all these services (a
    service and the one added to it), the favourite first."""
    if master_id:
        return [master_id]
    masters = turn.catalog.masters_for_all(service_ids)
    return sorted((m.id for m in masters), key=lambda mid: mid != favourite)


def _master(turn: Turn, master_id: int) -> MasterInfo:
    return turn.catalog.masters[master_id]


async def openings_for(
    turn: Turn,
    target: Target,
    favourite: int | None,
    *,
    horizon_days: int | None = None,
    day: date | None = None,
) -> Openings:
    """What is free for the target (storage/availability.py), "any available" trying the
    `favourite` master of the person booked first; as long as the service and its add-on
    take together, within the booking horizon or `horizon_days`; on one local `day` only
    when given (its busy time alone is read)."""
    ids = _master_ids(turn, target.service_ids, target.master_id, favourite)
    return await openings(
        session=turn.session,
        config=turn.config,
        service=target.service,
        masters=[_master(turn, m) for m in ids],
        now=turn.now,
        moving=target.visit,
        duration=target.duration,
        horizon_days=horizon_days,
        day=day,
    )


async def _openings(
    turn: Turn, target: Target, *, horizon_days: int | None = None, day: date | None = None
) -> Openings:
    return await openings_for(turn, target, _favourite(turn), horizon_days=horizon_days, day=day)


def _slot_buttons(
    turn: Turn, target: Target, picks: dict[datetime, int], screens: Screens = CLIENT
) -> list[Button]:
    """One button per suggested start, naming the master free then."""
    return [
        Button(slot_label(turn, start), screens.time(target.with_master(master).ref, start))
        for start, master in picks.items()
    ]


def slot_label(turn: Turn, moment: datetime) -> str:
    return f"{turn.tr.short_day(turn.tr.local(moment).date())}, {turn.tr.clock(moment)}"


TIMES_PER_SCREEN = 12  # more time buttons than this are grouped by part of the day


def service_button(turn: Turn, service: ServiceInfo) -> str:
    """'Men's haircut · 1 h · ₽1,800': how long it takes matters as much as the price."""
    duration = turn.tr.minutes(service.minutes)
    return f"{service.title(turn.locale)} · {duration} · {turn.tr.money(service.price)}"


def service_line(turn: Turn, service: ServiceInfo) -> str:
    return f"{service.title(turn.locale)} · {turn.tr.money(service.price)}"


def _target_line(turn: Turn, target: Target) -> str:
    return f"{target.title(turn.locale)} · {turn.tr.money(target.price)}"


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


def who(turn: Turn, master_id: int) -> str:
    return (
        _master(turn, master_id).title(turn.locale) if master_id else turn._("any available master")
    )


# Views: each shows its step again from the conversation data alone.


async def view_services(turn: Turn) -> Reply:
    buttons = [
        Button(service_button(turn, service), press.choose_service(service.id))
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
    favourite = turn.client.favourite_master_id if turn.client else None
    anyone = target.with_master(0)
    buttons = [Button(turn._("Any available master"), press.choose_days_for(anyone.ref))]
    for master_id in _master_ids(turn, target.service_ids, 0, favourite):
        star = "★ " if master_id == favourite else ""
        buttons.append(
            Button(
                star + _master(turn, master_id).title(turn.locale),
                press.choose_days_for(target.with_master(master_id).ref),
            )
        )
    text = turn._("{service}, {duration}. Choose a master:").format(
        service=_target_line(turn, target), duration=turn.tr.minutes(_minutes(target.duration))
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
    return days_reply(turn, target, days, CLIENT, back=back, home=menu_button(turn))


def days_reply(
    turn: Turn, target: Target, days: list[date], screens: Screens, *, back: Button, home: Button
) -> Reply:
    """The days with a free time, three to a row; or, when there is none, why."""
    if not days:
        text = turn._("{who} has no free time in the next {n} days. Please choose another master.")
        text = text.format(who=who(turn, target.master_id), n=turn.config.booking.horizon_days)
        return Reply(text, buttons=rows([back, home]), edit=True)
    buttons = [Button(turn.tr.short_day(day), screens.day(target.ref, day)) for day in days]
    text = turn._("{service}, {who}. Choose a day:").format(
        service=target.title(turn.locale), who=who(turn, target.master_id)
    )
    return Reply(text, buttons=(*rows(buttons, 3), (back,)), edit=True)


def _back_from_days(turn: Turn, target: Target) -> str:
    """Where "« Back" leads from the day list. A service only one master does skips the
    master step, so going back to it would land on this very day list again."""
    if target.visit is not None:
        return press.tap(Act.MY_VISITS)
    if len(_master_ids(turn, target.service_ids, 0)) == 1:
        return press.tap(Act.START_BOOKING)
    # Back to the masters, the add-on question answered already (once per booking).
    return press.choose_service(target.service.id, target.addon.id if target.addon else 0)


async def view_times(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None:
        return await view_services(turn)
    day = date.fromisoformat(turn.data["day"])
    times = (await _openings(turn, target, day=day)).times(day)
    back = Button(
        turn._("« Other day"),
        press.choose_days_for(target.ref)
        if target.visit is None
        else press.reschedule(target.visit.id),
    )
    return times_reply(turn, target, day, times, CLIENT, back=back)


def times_reply(
    turn: Turn,
    target: Target,
    day: date,
    times: dict[datetime, int],
    screens: Screens,
    *,
    back: Button,
) -> Reply:
    """The free times of a day; more than a screen's worth first by part of the day
    (turn.data "part"), then 12 to a screen (turn.data "page")."""
    if not times:
        text = turn._("No free time is left on {day}. Please choose another day.")
        return Reply(text.format(day=turn.tr.day(day)), buttons=rows([back]), edit=True)
    shown, more = list(times), list[Button]()
    if len(times) > TIMES_PER_SCREEN:
        parts = by_part_of_day(shown, turn.config.tz)
        part = turn.data.get("part")
        if part not in parts:
            return _parts_of_day(turn, target, day, parts, back, screens)
        shown, more = _page(turn, target, day, parts[part], part, screens)
        back = Button(turn._("« Other part of the day"), screens.day(target.ref, day))
    buttons = [Button(turn.tr.clock(moment), screens.time(target.ref, moment)) for moment in shown]
    text = turn._(screens.which_time).format(day=turn.tr.weekday_day(day))
    return Reply(text, buttons=(*rows(buttons, 4), *rows(more, 2), (back,)), edit=True)


def _part_label(turn: Turn, part: str) -> str:
    labels = {
        "morning": turn._("Morning"),
        "afternoon": turn._("Afternoon"),
        "evening": turn._("Evening"),
    }
    return labels[part]


def _parts_of_day(
    turn: Turn,
    target: Target,
    day: date,
    parts: dict[str, list[datetime]],
    back: Button,
    screens: Screens,
) -> Reply:
    """Too many times for one screen: first the parts of the day that have free times."""
    buttons = [
        Button(_part_label(turn, part), screens.part_of_day(target.ref, day, part, 0))
        for part in parts
    ]
    text = turn._(screens.which_part).format(day=upper_first(turn.tr.weekday_day(day)))
    return Reply(text, buttons=(*rows(buttons, 3), (back,)), edit=True)


def _page(
    turn: Turn, target: Target, day: date, times: list[datetime], part: str, screens: Screens
) -> tuple[list[datetime], list[Button]]:
    """One screen of a part of the day, and the buttons to its neighbouring screens."""
    pages = max(1, -(-len(times) // TIMES_PER_SCREEN))
    page = min(int(turn.data.get("page", 0)), pages - 1)
    shown = times[page * TIMES_PER_SCREEN : (page + 1) * TIMES_PER_SCREEN]
    more = []
    if page > 0:
        earlier = screens.part_of_day(target.ref, day, part, page - 1)
        more.append(Button(turn._("« Earlier times"), earlier))
    if page < pages - 1:
        later = screens.part_of_day(target.ref, day, part, page + 1)
        more.append(Button(turn._("Later times »"), later))
    return shown, more


async def view_summary(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None or not target.master_id:
        return await view_services(turn)
    start = moment_of(turn.data["at"])
    lines = [
        turn._("Moving your visit:") if target.visit else turn._("Please check your booking:"),
        "",
        *summary_lines(turn, target, start, price=await summary_price(turn, target, start)),
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


def summary_lines(
    turn: Turn, target: Target, start: datetime, *, price: str | None = None
) -> list[str]:
    """Service, master, when (a move: from and to), duration and price (`price`: the
    client's price line, with their discount)."""
    return [
        turn._("Service: {service}").format(service=target.title(turn.locale)),
        turn._("Master: {master}").format(
            master=_master(turn, target.master_id).title(turn.locale)
        ),
        *_when_lines(turn, target, start),
        turn._("Duration: {duration}").format(duration=turn.tr.minutes(_minutes(target.duration))),
        price or turn._("Price: {price}").format(price=turn.tr.money(target.price)),
    ]


async def summary_price(
    turn: Turn, target: Target, start: datetime, *, client: Client | None = None
) -> str:
    """The price the client will pay: a moved visit keeps its own, a new one gets the
    best discount it may have now (the same one Confirm gives, if nothing changes).
    `client`: staff booking for them (the line then speaks of them, not to them)."""
    if target.visit is not None:
        return price_line(turn, target.visit, staff=client is not None)
    # The discount is the chosen service's (a reward names its services); a service added
    # to it is paid in full. The line shows what the visit as a whole costs.
    discount = await discount_for(turn, target.service, start, client=client)
    if discount is None:
        return turn._("Price: {price}").format(price=turn.tr.money(target.price))
    return discounted_price_text(
        turn.tr,
        turn.config,
        price=target.price - discount.amount,
        full=target.price,
        source=discount.source,
        percent=discount.percent,
        spends=discount.spends,
        staff=client is not None,
    )


async def discount_for(
    turn: Turn, service: ServiceInfo, start: datetime, *, client: Client | None = None
) -> Discount | None:
    """One discount per visit, the largest (domain/loyalty.py `best_discount`), for the
    client writing or the one staff book for."""
    client = client or turn.client
    assert client is not None
    return best_discount(
        await discounts_for(
            session=turn.session,
            config=turn.config,
            client=client,
            service_key=service.key,
            price=service.price,
            start=start,
            now=turn.now,
        )
    )


def price_line(turn: Turn, visit: Visit, *, staff: bool = False) -> str:
    """'Price: ₽1,440 instead of ₽1,800 (20% off: welcome back)', or just the price;
    `staff`: worded for staff ("birthday gift", not "your birthday gift")."""
    return visit_price_text(
        turn.tr,
        turn.config,
        price=visit.price,
        discount=visit.discount,
        source=visit.discount_source,
        staff=staff,
    )


def _when_lines(turn: Turn, target: Target, start: datetime) -> list[str]:
    """A move shows the old time next to the new one, so the client sees what changes."""
    if target.visit is None:
        return [turn._("When: {when}").format(when=turn.tr.when(start))]
    return [
        turn._("From: {when}").format(when=slot_label(turn, target.visit.starts_at)),
        turn._("To: {when}").format(when=slot_label(turn, start)),
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
        service=target.title(turn.locale), master=who(turn, target.master_id)
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
    if len(args) > 1:  # back from the days: the add-on question was answered already
        addon = turn.catalog.services.get(int_arg(args, 1))
        chosen = addon if addon is not None and addon.id in service.pairs_with else None
        return await _after_service(turn, Target(service, 0, addon=chosen))
    addon = await _addon_to_offer(turn, service)
    if addon is not None:
        turn.goto(Step.BOOK_ADDON, t=encode_target(NewVisit(service.id, 0, addon.id)))
        return [await view_addon(turn)]
    return await _after_service(turn, Target(service, 0))


async def _after_service(turn: Turn, target: Target) -> list[Reply]:
    """The masters who do it all, or the days when only one does."""
    masters = _master_ids(turn, target.service_ids, 0)
    if not masters:  # nobody does both any more: the service alone
        target, masters = Target(target.service, 0), _master_ids(turn, [target.service.id], 0)
    if len(masters) == 1:
        return await show_days(turn, target.with_master(masters[0]))
    turn.goto(Step.BOOK_MASTER, t=target.token)
    return [await view_masters(turn)]


# Cross-sell: once per booking, after the service is chosen, the service that goes with it
# (`pairs_with` in business.toml) when a master who does both has the time for both.


async def _addon_to_offer(turn: Turn, service: ServiceInfo) -> ServiceInfo | None:
    """The first service paired with `service` that some master can do right after it in
    the booking horizon. A client who said "no, thanks" last time is not asked this time
    (never twice in a row); the time after, they are."""
    client = turn.client
    if not service.pairs_with or client is None:
        return None
    if client.declined_addon_id is not None:
        client.declined_addon_id = None
        return None
    for addon_id in service.pairs_with:
        addon = turn.catalog.services.get(addon_id)
        if addon is None:
            continue
        both = Target(service, 0, addon=addon)
        if _master_ids(turn, both.service_ids, 0) and (await _openings(turn, both)).any_free():
            return addon
    return None


async def view_addon(turn: Turn) -> Reply:
    target = await target_of(turn, turn.data["t"])
    if target is None or target.addon is None:
        return await view_services(turn)
    service, addon = target.service, target.addon
    lines = [
        turn._("Add {addon}: +{duration}, +{price}?").format(
            addon=addon.title(turn.locale),
            duration=turn.tr.minutes(addon.minutes),
            price=turn.tr.money(addon.price),
        ),
        turn._("Together: {services}, {duration}, {price}.").format(
            services=target.title(turn.locale),
            duration=turn.tr.minutes(_minutes(target.duration)),
            price=turn.tr.money(target.price),
        ),
    ]
    buttons = [
        Button(turn._("Yes, add it"), press.answer_addon(service.id, addon.id, True)),
        Button(turn._("No, thanks"), press.answer_addon(service.id, addon.id, False)),
        Button(turn._("« Back"), press.tap(Act.START_BOOKING)),
    ]
    return Reply("\n".join(lines), buttons=rows(buttons), edit=True)


async def press_answer_addon(turn: Turn, args: list[str]) -> list[Reply]:
    service = turn.catalog.services.get(int_arg(args, 0))
    addon = turn.catalog.services.get(int_arg(args, 1))
    yes = int_arg(args, 2)
    if yes not in (0, 1):
        raise BadPayload(str(yes))
    if service is None or addon is None or addon.id not in service.pairs_with:
        return await _gone(turn)
    if not turn.catalog.masters_for(service.id):
        return await _gone(turn)
    assert turn.client is not None
    # The decline is kept, so the next booking does not ask again; a yes forgets it.
    turn.client.declined_addon_id = None if yes else addon.id
    return await _after_service(turn, Target(service, 0, addon=addon if yes else None))


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
    master_id = (await _openings(turn, target, day=day)).times(day).get(start)
    if master_id is None:
        return [await _taken(turn, target, start, await _openings(turn, target))]
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
    return await _confirm(turn, target, start)


async def press_book_next(turn: Turn, args: list[str]) -> list[Reply]:
    """One tap on a slot of the next-visit offer sent when a visit was marked came: the
    same service (and add-on) with the same master, at the client's rhythm, which may lie
    beyond the booking horizon (never beyond NEXT_VISIT_MAX_DAYS)."""
    visit = await turn.session.get(Visit, int_arg(args, 0))
    start = decode_moment(args, 1)
    client = turn.client
    if visit is None or client is None or visit.client_id != client.id:
        raise BadPayload(":".join(args))  # another client's visit: a forged button
    again = turn.catalog.same_again(visit.service_id, visit.master_id, visit.addon_service_id)
    if visit.status != VisitStatus.completed or again is None:
        return await _gone(turn)
    service, master, addon = again
    days_ahead = (start.astimezone(turn.config.tz).date() - turn.tr.local(turn.now).date()).days
    if not 0 <= days_ahead < NEXT_VISIT_MAX_DAYS:
        raise BadPayload(":".join(args))
    target = Target(service, master.id, addon=addon)
    horizon = max(turn.config.booking.horizon_days, days_ahead + 1)
    return await _confirm(turn, target, start, horizon_days=horizon)


async def _confirm(
    turn: Turn, target: Target, start: datetime, *, horizon_days: int | None = None
) -> list[Reply]:
    interval = Interval(start, start + target.duration)
    if target.visit is None and (done := await _already_booked(turn, start)):
        return done
    if target.visit is not None and (refusal := too_late_to_change(turn, target.visit)):
        return [refusal]
    assert turn.client is not None and turn.client.id is not None
    await lock_booking(turn, target.master_id, turn.client.id)
    if refusal := await booking_refusal(turn, interval, moving=target.visit):
        return [refusal]
    day = start.astimezone(turn.config.tz).date()
    free = await _openings(turn, target, horizon_days=horizon_days, day=day)
    if not free.is_free(start):
        return [await _taken(turn, target, start, await _openings(turn, target))]
    comment = turn.data.get("comment", "") if turn.data.get("at") == encode_moment(start) else ""
    discount = None if target.visit else await discount_for(turn, target.service, start)
    visit = await save_visit(
        turn,
        target,
        interval,
        client_id=turn.client.id,
        source=turn.inbound.channel,
        comment=comment,
        discount=discount,
    )
    if target.visit is not None:
        headline = turn._("Done! Your visit is moved.")
    else:
        headline = turn._("Done! You are booked.")
    turn.goto(Step.MENU)
    return [confirmation(turn, visit, headline)]


async def lock_booking(turn: Turn, master_id: int, client_id: int) -> None:
    """Before the slot is checked and taken: one booking at a time for this master and this
    client (PostgreSQL locks their rows; SQLite holds the write lock already)."""
    await lock_master(session=turn.session, master_id=master_id)
    await lock_client(session=turn.session, client_id=client_id)


async def save_visit(
    turn: Turn,
    target: Target,
    interval: Interval,
    *,
    client_id: int,
    source: str,
    comment: str,
    discount: Discount | None = None,
) -> Visit:
    """Take the slot, once `lock_booking` is held and the openings say it is free: the
    moved visit gets its new time, or a new visit is booked."""
    if target.visit is not None:
        visit = target.visit
        visit.starts_at, visit.ends_at = interval.start, interval.end
        visit.rescheduled_at = turn.now
        visit.status, visit.confirmed_at = VisitStatus.booked, None
        turn.session.add(visit)
        await turn.session.flush()
        return visit
    price = target.price - (discount.amount if discount else 0)
    visit = await create_visit(
        session=turn.session,
        client_id=client_id,
        master_id=target.master_id,
        service_id=target.service.id,
        interval=interval,
        price=price,
        source=source,
        comment=comment,
        discount=discount.amount if discount else None,
        discount_source=discount.source if discount else None,
        addon_service_id=target.addon.id if target.addon else None,
        now=turn.now,
    )
    if discount is not None and discount.spends:
        # The reward or the points are spent now, and given back if it is cancelled.
        await settle_visit(session=turn.session, config=turn.config, visit=visit, now=turn.now)
    return visit


def confirmation(turn: Turn, visit: Visit, headline: str) -> Reply:
    """The booking_confirmation message: what, who, when, how long, price, address."""
    lines = confirmation_lines(
        turn.tr,
        turn.config,
        headline=headline,
        service=turn.catalog.visit_title(visit.service_id, visit.addon_service_id, turn.locale),
        master=_master(turn, visit.master_id).title(turn.locale),
        starts_at=visit.starts_at,
        minutes=_minutes(visit.ends_at - visit.starts_at),
        price=visit.price,
        comment=visit.comment,
        booked_at=turn.now,
        price_text=price_line(turn, visit),
    )
    buttons = [Button(turn._("My visits"), press.tap(Act.MY_VISITS)), menu_button(turn)]
    return Reply("\n".join(lines), buttons=rows(buttons, 2), edit=True, kind="booking_confirmation")


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


async def _taken(turn: Turn, target: Target, wanted: datetime, free: Openings) -> Reply:
    """The slot is gone: say so and offer the nearest free ones with the same master."""
    turn.goto(Step.BOOK_DAY, t=target.token, **_kept(turn))
    return taken_reply(turn, target, wanted, free, CLIENT, home=menu_button(turn))


def taken_reply(
    turn: Turn, target: Target, wanted: datetime, free: Openings, screens: Screens, *, home: Button
) -> Reply:
    """The answer to a time just taken: sorry, and the nearest free times."""
    picks = free.nearest(wanted)
    text = turn._("Sorry, {when} is no longer available.").format(when=turn.tr.when(wanted))
    if picks:
        text += "\n" + turn._("The nearest free times:")
    buttons = _slot_buttons(turn, target, picks, screens)
    buttons += [Button(turn._("Other day"), screens.days_for(target.ref)), home]
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
    again = turn.catalog.same_again(service.id, visit.master_id, visit.addon_service_id)
    # The same master (and the service added last time) when they still do it; else anyone.
    master_id, addon = (again[1].id, again[2]) if again else (0, None)
    ref = NewVisit(service.id, master_id, addon.id if addon else 0)
    turn.goto(Step.BOOK_REPEAT, t=encode_target(ref))
    return [await view_repeat(turn)]


def _already_coming(turn: Turn, visit: Visit) -> Reply:
    """A "Repeat last visit" from a client who already has one booked: a second visit is rarely
    what they want, so show the booked one and offer to move it."""
    title = turn.catalog.visit_title(visit.service_id, visit.addon_service_id, turn.locale)
    text = "\n".join(
        [
            turn._("You already have a visit booked:"),
            f"{title} · {_master(turn, visit.master_id).title(turn.locale)}",
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
        Step.BOOK_ADDON: view_addon,
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
        Act.ANSWER_ADDON: press_answer_addon,
        Act.BOOK_NEXT_VISIT: press_book_next,
    },
)
