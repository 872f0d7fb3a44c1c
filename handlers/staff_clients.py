"""Clients for staff: /client <phone or name> and the client card (a note, the history,
"Book for them"); /segments (owner, admin): how many clients each segment and VIP has, and
who they are.

A master finds and opens only clients who had a visit with them, and their history shows
only those visits; the owner and administrators see every client. Every button checks the
presser's role and right to the client again: payloads are untrusted.

For the staff booking (/book, built separately): `open_client_card(turn, client_id)` and
`press.staff_client(client_id)` bring a member of staff to a card; the card's "Book for
them" calls `book_for_client(turn, client)`, the one place that hands over to /book.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from domain import vocabulary as press
from domain.agenda import STATUS_NAMES
from domain.digest import LOW_RATING, money
from domain.loyalty import SEGMENT_GROUPS, Group, Status, status_of
from domain.payloads import BadPayload, int_arg
from domain.replies import Button, Reply, rows
from domain.retention import CHURN_REASONS, Segment, segment_of
from domain.slots import usual_time
from domain.text import N_, has_letter, one_line
from domain.vocabulary import Act, Step, decode_group
from handlers.common import too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow, StaffCommand
from handlers.preferences import TIMES_OF_DAY, shown_birthday
from handlers.registration import normalise_phone, shown_phone
from handlers.staff_day import EVERYONE, master_name, service_title, today
from handlers.staff_menu import MANAGERS, is_manager, refuse, registry
from handlers.staff_menu import staff_menu_button as menu_button
from handlers.turn import Turn
from storage.clients import (
    Card,
    ClientHit,
    Groups,
    client_by_phone,
    client_card,
    client_visits,
    clients_by_digits,
    clients_by_name,
    group_page,
    group_size,
    groups_on,
    had_visit_with,
)
from storage.personal import erase_client
from storage.tables import Client, Visit, VisitStatus

NOTE_MAX = 500  # characters of one staff note
QUERY_MAX = 100
FOUND_SHOWN = 10  # search results shown as buttons; more: "type more to narrow it down"
PAGE = 10  # visits or clients on one page
LAST_PAGE = 10_000  # a larger page number in a payload is forged

LOYALTY_NAMES = {
    Status.new: N_("new (1 visit)"),
    Status.returning: N_("returning (2–4 visits)"),
    Status.regular: N_("regular (5 visits or more)"),
}
SEGMENT_NAMES = {
    Segment.hot: N_("hot"),
    Segment.warm: N_("warm"),
    Segment.sleeping: N_("sleeping"),
    Segment.prospect: N_("prospect"),
}
GROUP_LABELS = {
    Group.hot: N_("Hot"),
    Group.warm: N_("Warm"),
    Group.sleeping: N_("Sleeping"),
    Group.prospect: N_("Prospects"),
    Group.vip: N_("VIP"),
    Group.everyone: N_("Everyone who accepts offers"),
}
RATING_STATUS = {"open": N_("open"), "resolved": N_("resolved")}
OUTBOX_STATUS = {
    "pending": N_("waiting"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "skipped": N_("not sent"),
    "held_out": N_("held out"),
}
KIND_NAMES = {
    "booking_confirmation": N_("booking confirmation"),
    "reminder": N_("reminder"),
    "visit_cancelled": N_("visit cancelled"),
    "feedback_request": N_("rating request"),
    "care_tip": N_("care tip"),
    "return_nudge": N_("return nudge"),
    "warm_offer": N_("gift offer"),
    "winback": N_("win-back"),
    "birthday": N_("birthday greeting"),
    "broadcast": N_("broadcast"),
}


# --- finding a client -------------------------------------------------------------------


async def command_client(turn: Turn, args: str) -> list[Reply]:
    """/client +7 912 345-67-89, /client Анна, or /client alone (asks)."""
    if not args.strip():
        turn.goto(Step.STAFF_CLIENT_SEARCH)
        return [await view_search(turn)]
    return await search(turn, args)


def _ask(turn: Turn) -> str:
    return turn._(
        "Whom are you looking for? Type a phone number (or its last digits) or a part of the name."
    )


async def view_search(turn: Turn) -> Reply:
    """The question, or the results of the search kept in the step."""
    query = turn.data.get("q")
    if not isinstance(query, str) or not query:
        return Reply(_ask(turn), buttons=rows([menu_button(turn)]))
    return await _results(turn, query)


async def on_search(turn: Turn, event: Text | Contact) -> list[Reply]:
    query = event.phone if isinstance(event, Contact) else typed(event)
    if not query:
        return [with_hint(turn._("Please type a phone number or a name."), await _question(turn))]
    return await search(turn, query)


async def _question(turn: Turn) -> Reply:
    turn.goto(Step.STAFF_CLIENT_SEARCH)
    return Reply(_ask(turn), buttons=rows([menu_button(turn)]))


def _master_only(turn: Turn) -> int | None:
    """The master whose clients are the only ones to find; None for the owner or an admin."""
    assert turn.staff is not None
    return None if is_manager(turn.staff) else turn.staff.id


async def search(turn: Turn, text: str) -> list[Reply]:
    query = " ".join(text.split())
    if len(query) > QUERY_MAX:
        hint = turn._("That is too long for a name or a phone number.")
        return [with_hint(hint, await _question(turn))]
    phone = _phone_in(turn, query)
    if phone is not None:
        found = await client_by_phone(
            session=turn.session, phone=phone, master_id=_master_only(turn)
        )
        if found is not None:
            return await open_client_card(turn, found.id)
        if _master_only(turn) is not None and await client_by_phone(
            session=turn.session, phone=phone
        ):
            return [Reply(_not_yours(turn), buttons=rows([menu_button(turn)]))]
    turn.goto(Step.STAFF_CLIENT_SEARCH, q=query)
    total, hits = await _find(turn, query)
    if total == 1 and len(hits) == 1:
        return await open_client_card(turn, hits[0].id)
    return [await _results(turn, query, total=total, hits=hits)]


def _phone_in(turn: Turn, query: str) -> str | None:
    """The number typed, as E.164, when the query is a whole phone number."""
    if has_letter(query):
        return None
    return normalise_phone(query, turn.config.business.phone_region)


async def _find(turn: Turn, query: str) -> tuple[int, list[ClientHit]]:
    master_id = _master_only(turn)
    digits = "".join(char for char in query if char.isdigit())
    if not has_letter(query) and len(digits) >= 4:
        return await clients_by_digits(
            session=turn.session, digits=digits, master_id=master_id, limit=FOUND_SHOWN
        )
    if not has_letter(query):
        return 0, []
    return await clients_by_name(
        session=turn.session, part=query, master_id=master_id, limit=FOUND_SHOWN
    )


async def _results(
    turn: Turn, query: str, *, total: int | None = None, hits: list[ClientHit] | None = None
) -> Reply:
    if total is None or hits is None:
        total, hits = await _find(turn, query)
    quoted = _quote(turn, query)
    if not hits:
        if _master_only(turn) is not None:
            text = turn._("None of your clients matches {query}.").format(query=quoted)
        else:
            text = turn._("No client matches {query}.").format(query=quoted)
        text += "\n" + turn._("Try a phone number or another part of the name.")
        return Reply(text, buttons=rows([menu_button(turn)]))
    if total > len(hits):
        text = turn._(
            "{total} clients match {query}; here are {shown}, the most recent visit first. "
            "Type more of the name or of the phone number to narrow it down."
        ).format(total=total, query=quoted, shown=len(hits))
    else:
        text = turn._("{total} clients match {query}:").format(total=total, query=quoted)
    buttons = [Button(_hit_label(turn, hit), press.staff_client(hit.id)) for hit in hits]
    return Reply(text, buttons=rows([*buttons, menu_button(turn)]))


def _quote(turn: Turn, text: str) -> str:
    return ("«{}»" if turn.locale == "ru" else "“{}”").format(one_line(text))


def _hit_label(turn: Turn, hit: ClientHit) -> str:
    parts = [one_line(hit.name)[:40]]
    if hit.phone:
        parts.append(hit.phone)
    if hit.last_visit_at is not None:
        parts.append(turn.tr.full_date(turn.tr.local(hit.last_visit_at).date()))
    return " · ".join(parts)


def _not_yours(turn: Turn) -> str:
    return turn._(
        "This client has had no visits with you, so their card is for the owner and administrators."
    )


# --- the card ----------------------------------------------------------------------------


async def _client_for_staff(turn: Turn, client_id: int) -> Client | Reply:
    """The client, when the presser may see them: any client for the owner or an admin,
    a master's own clients (a visit with them) for a master."""
    refused = refuse(turn, EVERYONE)
    if refused is not None:
        return refused
    assert turn.staff is not None and turn.staff.id is not None
    client = await turn.session.get(Client, client_id)
    if client is None or client.deleted_at is not None or client.id is None:
        return Reply(turn._("This client is no longer in the base."))
    if not is_manager(turn.staff) and not await had_visit_with(
        session=turn.session, client_id=client.id, master_id=turn.staff.id
    ):
        return Reply(_not_yours(turn))
    return client


async def open_client_card(turn: Turn, client_id: int) -> list[Reply]:
    """The client's card, for a member of staff who may see it (else the refusal)."""
    found = await _client_for_staff(turn, client_id)
    if isinstance(found, Reply):
        return [found]
    turn.goto(Step.STAFF_CLIENT, c=client_id)
    return [await card_reply(turn, found)]


async def press_client(turn: Turn, args: list[str]) -> list[Reply]:
    return await open_client_card(turn, int_arg(args, 0))


async def view_client(turn: Turn) -> Reply:
    found = await _client_for_staff(turn, int(turn.data.get("c", 0)))
    return found if isinstance(found, Reply) else await card_reply(turn, found)


async def card_reply(turn: Turn, client: Client) -> Reply:
    card = await client_card(session=turn.session, client=client, now=turn.now, tz=turn.config.tz)
    buttons = []
    if can_book_for(turn, client):
        buttons.append(Button(turn._("Book for them"), press.staff_book_for(client.id)))
    buttons += [
        Button(turn._("Add a note"), press.staff_client_note(client.id)),
        Button(turn._("History"), press.staff_client_history(client.id)),
    ]
    if is_manager(turn.staff):
        buttons.append(Button(turn._("Erase their data"), press.staff_erase(client.id, sure=False)))
    return Reply(
        "\n".join(card_lines(turn, card)),
        buttons=(*rows(buttons, per_row=2), (menu_button(turn),)),
    )


def card_lines(turn: Turn, card: Card) -> list[str]:
    """Everything the card says, a fact a line."""
    return [
        *_contact(turn, card),
        *_standing(turn, card),
        *_figures(turn, card),
        *_habits(turn, card),
        *_notes(turn, card),
        *_ratings(turn, card),
        *_consents(turn, card),
        *_messages(turn, card),
    ]


def _contact(turn: Turn, card: Card) -> list[str]:
    client = card.client
    lines = [one_line(client.name)]
    if client.phone:
        lines.append(turn._("Phone: {phone}").format(phone=shown_phone(client.phone)))
    chats = []
    for chat in card.chats:
        name = {"telegram": "Telegram", "whatsapp": "WhatsApp"}.get(chat.channel)
        if name is None:
            continue  # the terminal is no chat to write to
        if chat.unreachable_since is not None:
            name = turn._("{channel} (blocked or gone)").format(channel=name)
        if name not in chats:
            chats.append(name)
    lines.append(turn._("Chats: {chats}").format(chats=", ".join(chats) or "—"))
    if client.birthday:
        lines.append(
            turn._("Birthday: {value}").format(value=shown_birthday(turn, client.birthday))
        )
    return lines


def _standing(turn: Turn, card: Card) -> list[str]:
    last = card.client.last_visit_at
    day = today(turn)
    last_day = turn.tr.local(last).date() if last is not None else None
    segment = segment_of(last_day, day, warm_days=turn.config.retention.sleeping_after_days)
    name = turn._(SEGMENT_NAMES[segment])
    if last_day is None:
        standing = turn._("Segment: {segment}, no visit yet").format(segment=name)
    elif last_day >= day:
        standing = turn._("Segment: {segment}, last visit today").format(segment=name)
    else:
        days = (day - last_day).days
        standing = turn.tr.n_(
            "Segment: {segment}, last visit {n} day ago",
            "Segment: {segment}, last visit {n} days ago",
            days,
        ).format(segment=name, n=days)
    status = status_of(card.by_status[VisitStatus.completed])
    loyalty = turn._(LOYALTY_NAMES[status]) if status else turn._("no visits yet")
    if card.vip:
        loyalty = turn._("{status}, VIP").format(status=loyalty)
    return [standing, turn._("Loyalty: {status}").format(status=loyalty)]


def _figures(turn: Turn, card: Card) -> list[str]:
    completed = card.by_status[VisitStatus.completed]
    average = money(card.spent / completed) if completed else Decimal("0.00")
    lines = [
        turn._("Visits: {n} · average check {check} · spent {spent}").format(
            n=completed, check=turn.tr.money(average), spent=turn.tr.money(card.spent)
        )
    ]
    cancelled, no_shows = card.by_status[VisitStatus.cancelled], card.by_status[VisitStatus.no_show]
    if card.cancelled_by_shop:
        lines.append(
            turn._("Cancelled: {n} ({shop} by the shop) · no-shows: {no_shows}").format(
                n=cancelled, shop=card.cancelled_by_shop, no_shows=no_shows
            )
        )
    else:
        lines.append(
            turn._("Cancelled: {n} · no-shows: {no_shows}").format(n=cancelled, no_shows=no_shows)
        )
    if card.last_visit is not None:
        lines.append(turn._("Last visit: {visit}").format(visit=_visit_line(turn, card.last_visit)))
    for visit in card.upcoming:
        lines.append(turn._("Booked: {visit}").format(visit=_visit_line(turn, visit, when=True)))
    due = card.client.next_visit_due
    if due is not None and completed and not card.upcoming:  # booked: nothing to predict
        lines.append(
            turn._("Next visit expected: {date} ({when})").format(
                date=turn.tr.full_date(due), when=_from_today(turn, due)
            )
        )
    return lines


def _visit_line(turn: Turn, visit: Visit, *, when: bool = False) -> str:
    moment = (
        turn.tr.when(visit.starts_at)
        if when
        else turn.tr.full_date(turn.tr.local(visit.starts_at).date())
    )
    return turn._("{when}, {service} with {master}").format(
        when=moment,
        service=service_title(turn, visit),
        master=master_name(turn, visit.master_id),
    )


def _from_today(turn: Turn, day: date) -> str:
    days = (day - today(turn)).days
    if days == 0:
        return turn._("today")
    if days > 0:
        return turn.tr.n_("in {n} day", "in {n} days", days).format(n=days)
    return turn.tr.n_("{n} day overdue", "{n} days overdue", -days).format(n=-days)


def _habits(turn: Turn, card: Card) -> list[str]:
    client, lines = card.client, []
    favourite = turn.catalog.masters.get(client.favourite_master_id or 0)
    if favourite is not None:
        lines.append(
            turn._("Favourite master: {name} (their choice)").format(
                name=favourite.title(turn.locale)
            )
        )
    if card.masters:
        master_id, count = card.masters.most_common(1)[0]
        lines.append(
            turn._("Usually with {name}: {n} of {total} visits").format(
                name=master_name(turn, master_id), n=count, total=sum(card.masters.values())
            )
        )
    when = TIMES_OF_DAY.get(client.preferred_time_of_day or "")
    if when:
        lines.append(turn._("Preferred time: {value}").format(value=turn._(when)))
    weekday, minute = usual_time(card.starts, turn.config.tz)
    if weekday is not None and minute is not None:
        lines.append(
            turn._("Usually comes {weekday} around {time}").format(
                weekday=turn.tr.on_weekday(weekday), time=f"{minute // 60:02d}:{minute % 60:02d}"
            )
        )
    return lines


def _notes(turn: Turn, card: Card) -> list[str]:
    client, lines = card.client, []
    if client.preference_note:
        lines.append(
            turn._("Note for the master: {value}").format(
                value=_quote(turn, client.preference_note)
            )
        )
    notes = [one_line(note) for note in client.staff_notes.splitlines() if one_line(note)]
    if notes:
        lines.append(turn._("Staff notes:"))
        lines += ["   " + note for note in notes]
    return lines


def _ratings(turn: Turn, card: Card) -> list[str]:
    if not card.ratings:
        return [turn._("Ratings: none yet")]
    average = money(Decimal(sum(r.rating for r in card.ratings)) / len(card.ratings))
    low = [r for r in card.ratings if r.rating <= LOW_RATING]
    lines = [
        turn._("Ratings: {n}, average {average}, {low} of them 3 or lower").format(
            n=len(card.ratings), average=turn.tr.number(average), low=len(low)
        )
    ]
    for rating in low[:3]:
        line = "   {stars} {day}, {master}".format(
            stars="★" * rating.rating,
            day=turn.tr.full_date(turn.tr.local(rating.given_at).date()),
            master=master_name(turn, rating.master_id),
        )
        if rating.comment:
            line += " " + _quote(turn, rating.comment)
        if rating.status in RATING_STATUS:
            line += " · " + turn._(RATING_STATUS[rating.status])
        lines.append(line)
    if card.churn:
        answers = ", ".join(
            f"{_quote(turn, _churn_answer(turn, answer))} ({_on(turn, at)})"
            for answer, at in card.churn[:3]
        )
        lines.append(turn._("Why they stopped coming: {answers}").format(answers=answers))
    return lines


def _churn_answer(turn: Turn, answer: str) -> str:
    label = CHURN_REASONS.get(answer)
    return turn._(label) if label else answer


def _consents(turn: Turn, card: Card) -> list[str]:
    client = card.client
    if client.consent_at is not None:
        data = turn._("Personal data: agreed on {date}").format(date=_on(turn, client.consent_at))
    else:
        data = turn._("Personal data: no consent")
    opted_in, opted_out = client.marketing_opt_in_at, client.marketing_opt_out_at
    if client.marketing_allowed and opted_in is not None:
        offers = turn._("Offers: on since {date}").format(date=_on(turn, opted_in))
    elif opted_out is not None:
        offers = turn._("Offers: off since {date}").format(date=_on(turn, opted_out))
    else:
        offers = turn._("Offers: never agreed")
    return [data, offers]


def _on(turn: Turn, moment: datetime) -> str:
    """The local date of an instant, with the year."""
    return turn.tr.full_date(turn.tr.local(moment).date())


def _word(turn: Turn, words: dict[str, str], code: str) -> str:
    """A code (a message kind, a status) in the reader's words; the code itself if new."""
    word = words.get(code)
    return turn._(word) if word else code


def _messages(turn: Turn, card: Card) -> list[str]:
    if not card.messages:
        return [turn._("Messages from the bot: none yet")]
    lines = [turn._("Last messages from the bot:")]
    for message in card.messages:
        kind = _word(turn, KIND_NAMES, message.kind)
        status = _word(turn, OUTBOX_STATUS, message.status)
        lines.append(f"   {_on(turn, message.at)} {turn.tr.clock(message.at)} — {kind} · {status}")
    return lines


# --- a note ------------------------------------------------------------------------------


async def press_note(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _client_for_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    turn.goto(Step.STAFF_CLIENT_NOTE, c=found.id)
    return [await view_note(turn)]


async def view_note(turn: Turn) -> Reply:
    found = await _client_for_staff(turn, int(turn.data.get("c", 0)))
    if isinstance(found, Reply):
        return found
    text = turn._(
        "Type the note about {name} (up to {limit} characters). It is added to the staff "
        "notes with today's date and your name."
    ).format(name=one_line(found.name), limit=NOTE_MAX)
    back = Button(turn._("« Back to the card"), press.staff_client(found.id))
    return Reply(text, buttons=rows([back]))


async def on_note(turn: Turn, event: Text | Contact) -> list[Reply]:
    note = one_line(typed(event))
    if not note:
        return [with_hint(turn._("Please type the note."), await view_note(turn))]
    if problem := too_long(turn, note, NOTE_MAX):
        return [with_hint(problem, await view_note(turn))]
    found = await _client_for_staff(turn, int(turn.data.get("c", 0)))
    if isinstance(found, Reply):
        turn.goto(Step.STAFF_MENU)
        return [found]
    assert turn.staff is not None
    line = f"{today(turn).isoformat()}, {one_line(turn.staff.name)}: {note}"
    found.staff_notes = f"{found.staff_notes.rstrip()}\n{line}".lstrip("\n")
    turn.session.add(found)
    turn.goto(Step.STAFF_CLIENT, c=found.id)
    return [Reply(turn._("Note added.")), await card_reply(turn, found)]


# --- history -----------------------------------------------------------------------------


async def press_history(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _client_for_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    page = min(int_arg(args, 1), LAST_PAGE)
    turn.goto(Step.STAFF_CLIENT_HISTORY, c=found.id, p=page)
    return [await view_history(turn, edit=True)]


async def view_history(turn: Turn, *, edit: bool = False) -> Reply:
    found = await _client_for_staff(turn, int(turn.data.get("c", 0)))
    if isinstance(found, Reply):
        return found
    assert found.id is not None
    master_id = _master_only(turn)
    page = int(turn.data.get("p", 0))
    total, visits = await client_visits(
        session=turn.session,
        client_id=found.id,
        master_id=master_id,
        offset=page * PAGE,
        limit=PAGE,
    )
    if not visits and page > 0:  # past the end (the history got shorter): the last page
        page = max(0, (total - 1) // PAGE)
        turn.goto(Step.STAFF_CLIENT_HISTORY, c=found.id, p=page)
        total, visits = await client_visits(
            session=turn.session,
            client_id=found.id,
            master_id=master_id,
            offset=page * PAGE,
            limit=PAGE,
        )
    name = one_line(found.name)
    if not visits:
        lines = [turn._("{name} has no visits yet.").format(name=name)]
    else:
        heading = (
            turn._("{name}: your visits with them, {first}–{last} of {total}, the newest first:")
            if master_id is not None
            else turn._("{name}: visits {first}–{last} of {total}, the newest first:")
        )
        lines = [
            heading.format(
                name=name, first=page * PAGE + 1, last=page * PAGE + len(visits), total=total
            )
        ]
        lines += [_history_line(turn, visit) for visit in visits]
    navigation = []
    if page > 0:
        navigation.append(Button(turn._("« Newer"), press.staff_client_history(found.id, page - 1)))
    if (page + 1) * PAGE < total:
        navigation.append(Button(turn._("Older »"), press.staff_client_history(found.id, page + 1)))
    back = Button(turn._("« Back to the card"), press.staff_client(found.id))
    layout = ((*navigation,), (back,)) if navigation else ((back,),)
    return Reply("\n".join(lines), buttons=layout, edit=edit)


def _history_line(turn: Turn, visit: Visit) -> str:
    paid = visit.paid_amount if visit.paid_amount is not None else visit.price
    when = f"{_on(turn, visit.starts_at)} {turn.tr.clock(visit.starts_at)}"
    what = f"{service_title(turn, visit)}, {master_name(turn, visit.master_id)}"
    status = _word(turn, STATUS_NAMES, visit.status)
    return f"{when} — {what}, {turn.tr.money(paid)} · {status}"


# --- "Book for them" ---------------------------------------------------------------------


def can_book_for(turn: Turn, client: Client) -> bool:
    """The card offers "Book for them" when the staff booking (/book) is there to take
    over, for a member of staff allowed to run it, and the client has a phone number."""
    command = registry().command("book")
    return (
        command is not None
        and client.phone is not None
        and turn.staff is not None
        and turn.staff.role in command.roles
    )


async def book_for_client(turn: Turn, client: Client) -> list[Reply]:
    """Hand the client over to the staff booking (handlers/staff_booking.py)."""
    from handlers.staff_booking import book_for_client as book  # a flow of its own

    return await book(turn, client.id or 0)


async def press_book_for(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _client_for_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    return await book_for_client(turn, found)


# --- the client's right to be forgotten, asked of staff ---------------------------------


async def press_erase(turn: Turn, args: list[str]) -> list[Reply]:
    """Owner / admin: erase the client's personal data (as /forget does), after a
    confirmation; the visits stay, anonymous."""
    if refused := refuse(turn, MANAGERS):
        return [refused]
    found = await _client_for_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    if int_arg(args, 1) != 1:
        text = turn._(
            "Erase {name}'s personal data (name, phone, chats, birthday, notes, comments)? "
            "Their visits stay as anonymous figures. This cannot be undone."
        ).format(name=one_line(found.name))
        buttons = [
            Button(turn._("Yes, erase"), press.staff_erase(found.id, sure=True)),
            Button(turn._("No, keep"), press.staff_client(found.id)),
        ]
        return [Reply(text, buttons=rows(buttons))]
    assert turn.staff is not None
    await erase_client(
        session=turn.session, client=found, now=turn.now, by=f"staff {turn.staff.key}"
    )
    turn.goto(Step.STAFF_MENU)
    return [Reply(turn._("Erased. The visits stay as anonymous figures."))]


# --- /segments ---------------------------------------------------------------------------


async def command_segments(turn: Turn, args: str) -> list[Reply]:
    turn.goto(Step.STAFF_SEGMENTS)
    return [await view_segments(turn)]


async def groups_today(turn: Turn, *, vip: bool = True) -> Groups:
    """The groups of clients as of the shop's today (`vip=False`: without ranking VIP)."""
    return await groups_on(
        session=turn.session,
        today=today(turn),
        tz=turn.config.tz,
        warm_days=turn.config.retention.sleeping_after_days,
        vip=vip,
    )


def group_meaning(turn: Turn, group: Group) -> str:
    sleeping = turn.config.retention.sleeping_after_days
    meanings = {
        Group.hot: turn._("the last visit up to 30 days ago"),
        Group.warm: turn._("the last visit 31–{days} days ago").format(days=sleeping),
        Group.sleeping: turn._("the last visit over {days} days ago").format(days=sleeping),
        Group.prospect: turn._("no visit yet"),
        Group.vip: turn._("the top 20 % by spend over the last 365 days"),
        Group.everyone: turn._("every client who agreed to offers"),
    }
    return meanings[group]


async def view_segments(turn: Turn) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    groups = await groups_today(turn)
    lines = [turn._("Clients by segment, today:")]
    buttons = []
    for key in SEGMENT_GROUPS:
        group = Group(key)
        size = await group_size(session=turn.session, groups=groups, group=group)
        label = turn._(GROUP_LABELS[group])
        lines.append(f"{label} ({group_meaning(turn, group)}): {size}")
        buttons.append(Button(f"{label} · {size}", press.staff_group(key)))
    return Reply("\n".join(lines), buttons=(*rows(buttons, per_row=2), (menu_button(turn),)))


async def press_group(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return [refused]
    group = decode_group(args, 0, SEGMENT_GROUPS)
    page = int_arg(args, 1)
    if page > LAST_PAGE:
        raise BadPayload(":".join(args))
    turn.goto(Step.STAFF_GROUP, g=group, p=page)
    return [await view_group(turn, edit=True)]


async def view_group(turn: Turn, *, edit: bool = False) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    group, page = Group(turn.data["g"]), int(turn.data.get("p", 0))
    groups = await groups_today(turn, vip=group is Group.vip)
    total, hits = await group_page(
        session=turn.session, groups=groups, group=group, offset=page * PAGE, limit=PAGE
    )
    if not hits and page > 0:
        page = max(0, (total - 1) // PAGE)
        turn.goto(Step.STAFF_GROUP, g=group.value, p=page)
        total, hits = await group_page(
            session=turn.session, groups=groups, group=group, offset=page * PAGE, limit=PAGE
        )
    label = turn._(GROUP_LABELS[group])
    if not hits:
        text = turn._("{group}: nobody today.").format(group=label)
    else:
        text = turn._("{group} ({meaning}): {first}–{last} of {total}").format(
            group=label,
            meaning=group_meaning(turn, group),
            first=page * PAGE + 1,
            last=page * PAGE + len(hits),
            total=total,
        )
        text += "\n" + "\n".join(_group_line(turn, hit) for hit in hits)
    buttons = [Button(_hit_label(turn, hit), press.staff_client(hit.id)) for hit in hits]
    navigation = []
    if page > 0:
        navigation.append(Button(turn._("« Previous"), press.staff_group(group.value, page - 1)))
    if (page + 1) * PAGE < total:
        navigation.append(Button(turn._("Next »"), press.staff_group(group.value, page + 1)))
    back = Button(turn._("« Segments"), press.staff_open("segments"))
    layout = (*rows(buttons), *((tuple(navigation),) if navigation else ()), (back,))
    return Reply(text, buttons=layout, edit=edit)


def _group_line(turn: Turn, hit: ClientHit) -> str:
    last = (
        turn.tr.full_date(turn.tr.local(hit.last_visit_at).date())
        if hit.last_visit_at is not None
        else turn._("no visit yet")
    )
    return turn._("{name}, {phone}, last visit: {last}").format(
        name=one_line(hit.name), phone=hit.phone or "—", last=last
    )


FLOW = Flow(
    "staff clients",
    views={
        Step.STAFF_CLIENT_SEARCH: view_search,
        Step.STAFF_CLIENT: view_client,
        Step.STAFF_CLIENT_NOTE: view_note,
        Step.STAFF_CLIENT_HISTORY: view_history,
        Step.STAFF_SEGMENTS: view_segments,
        Step.STAFF_GROUP: view_group,
    },
    text_steps={
        Step.STAFF_CLIENT_SEARCH: on_search,
        Step.STAFF_CLIENT: on_search,  # typing at a card looks for another client
        Step.STAFF_CLIENT_HISTORY: on_search,
        Step.STAFF_CLIENT_NOTE: on_note,
    },
    actions={
        Act.STAFF_CLIENT: press_client,
        Act.STAFF_CLIENT_NOTE: press_note,
        Act.STAFF_CLIENT_HISTORY: press_history,
        Act.STAFF_BOOK_FOR: press_book_for,
        Act.STAFF_GROUP: press_group,
        Act.STAFF_ERASE: press_erase,
    },
    commands={
        "client": StaffCommand(command_client, N_("Find a client")),
        "segments": StaffCommand(command_segments, N_("Clients by segment"), MANAGERS),
    },
)
