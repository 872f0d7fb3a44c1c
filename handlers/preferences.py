"""Preferences: name, phone, favourite master, time of day, a note for the master,
language, birthday, offers on/off."""

from __future__ import annotations

from datetime import date

from domain import vocabulary as press
from domain.payloads import BadPayload, int_arg
from domain.people import BirthdayMistake, birthday_known_year, read_birthday
from domain.replies import Button, Reply, rows
from domain.text import N_
from domain.vocabulary import Act, Step
from handlers import registration
from handlers.common import LANGUAGES, Action, View, menu_button, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.registration import PhoneMistake
from handlers.turn import Turn
from storage.guards import opt_in_to_marketing, opt_out_of_marketing
from storage.tables import Client

NOTE_MAX = 300
TIMES_OF_DAY = {
    "morning": N_("Morning"),
    "afternoon": N_("Afternoon"),
    "evening": N_("Evening"),
}


def _client(turn: Turn) -> Client:
    assert turn.client is not None
    return turn.client


def shown_birthday(turn: Turn, born: date | None) -> str:
    """'November 27 1990', 'November 27' when the year was not given, '—' when unknown."""
    if born is None:
        return "—"
    shown = turn.tr.day(born)
    return f"{shown} {born.year}" if birthday_known_year(born) else shown


async def view_preferences(turn: Turn) -> Reply:
    client = _client(turn)
    master = turn.catalog.masters.get(client.favourite_master_id or 0)
    when = TIMES_OF_DAY.get(client.preferred_time_of_day or "")
    birthday = shown_birthday(turn, client.birthday)
    phone = registration.shown_phone(client.phone) if client.phone else "—"
    lines = [
        turn._("Your preferences:"),
        turn._("Name: {value}").format(value=client.name),
        turn._("Phone: {value}").format(value=phone),
        turn._("Favourite master: {value}").format(
            value=master.title(turn.locale) if master else "—"
        ),
        turn._("Preferred time: {value}").format(value=turn._(when) if when else "—"),
        turn._("Note for the master: {value}").format(value=client.preference_note or "—"),
        turn._("Language: {value}").format(value=LANGUAGES.get(client.locale, client.locale)),
        turn._("Birthday: {value}").format(value=birthday),
        turn._("Offers: {value}").format(
            value=turn._("on") if client.marketing_allowed else turn._("off")
        ),
    ]
    offers = turn._("Turn offers off") if client.marketing_allowed else turn._("Turn offers on")
    buttons = [
        Button(turn._("Name"), press.tap(Act.OPEN_NAME)),
        Button(turn._("Phone"), press.tap(Act.OPEN_PHONE)),
        Button(turn._("Favourite master"), press.tap(Act.OPEN_FAVOURITE_MASTER)),
        Button(turn._("Preferred time"), press.tap(Act.OPEN_TIME_OF_DAY)),
        Button(turn._("Note for the master"), press.tap(Act.OPEN_NOTE)),
        Button(turn._("Language"), press.tap(Act.OPEN_LANGUAGE)),
        Button(turn._("Birthday"), press.tap(Act.OPEN_BIRTHDAY)),
        Button(offers, press.tap(Act.TOGGLE_OFFERS)),
    ]
    return Reply("\n".join(lines), buttons=(*rows(buttons, 2), (menu_button(turn),)), edit=True)


def _back(turn: Turn) -> Button:
    return Button(turn._("« Back"), press.tap(Act.PREFERENCES))


async def view_master(turn: Turn) -> Reply:
    buttons = [
        Button(m.title(turn.locale), press.set_favourite_master(m.id))
        for m in turn.catalog.masters.values()
    ]
    buttons.append(Button(turn._("No favourite"), press.set_favourite_master(0)))
    return Reply(
        turn._("Who is your favourite master?"), buttons=rows([*buttons, _back(turn)]), edit=True
    )


async def view_time(turn: Turn) -> Reply:
    buttons = [
        Button(turn._(label), press.set_time_of_day(key)) for key, label in TIMES_OF_DAY.items()
    ]
    buttons.append(Button(turn._("Any time"), press.set_time_of_day("any")))
    return Reply(
        turn._("When do you prefer to come?"), buttons=rows([*buttons, _back(turn)]), edit=True
    )


async def view_language(turn: Turn) -> Reply:
    buttons = [Button(label, press.set_language(code)) for code, label in LANGUAGES.items()]
    return Reply(turn._("Choose the language:"), buttons=rows([*buttons, _back(turn)]), edit=True)


async def view_note(turn: Turn) -> Reply:
    text = turn._(
        "Type what the master should know, e.g. “short on the sides” (up to {limit} characters):"
    ).format(limit=NOTE_MAX)
    buttons = [_back(turn)]
    if _client(turn).preference_note:  # nothing to clear otherwise
        buttons.insert(0, Button(turn._("Clear the note"), press.tap(Act.CLEAR_NOTE)))
    return Reply(text, buttons=rows(buttons))


async def view_birthday(turn: Turn) -> Reply:
    text = turn._("Type your birthday like 27.11 or 27.11.1990:")
    buttons = [_back(turn)]
    if _client(turn).birthday:
        buttons.insert(0, Button(turn._("Remove my birthday"), press.tap(Act.REMOVE_BIRTHDAY)))
    return Reply(text, buttons=rows(buttons))


async def view_name(turn: Turn) -> Reply:
    return Reply(turn._("Type the name we should call you by:"), buttons=rows([_back(turn)]))


async def view_phone(turn: Turn) -> Reply:
    return Reply(
        turn._("Your new phone number: tap the button below or type it."),
        buttons=rows([_back(turn)]),
        ask_contact=True,
        contact_button=turn._("📱 Share my phone number"),
    )


async def _show(turn: Turn, hint: str | None = None) -> list[Reply]:
    turn.goto(Step.PREFS)
    view = await view_preferences(turn)
    return [with_hint(hint, view) if hint else view]


async def press_preferences(turn: Turn, args: list[str]) -> list[Reply]:
    return await _show(turn)


def _opener(step: str, view: View) -> Action:
    async def open_step(turn: Turn, args: list[str]) -> list[Reply]:
        turn.goto(step)
        return [await view(turn)]

    return open_step


async def press_favourite(turn: Turn, args: list[str]) -> list[Reply]:
    master_id = int_arg(args, 0)
    if master_id and master_id not in turn.catalog.masters:
        return await _show(turn, turn._("That master no longer works with us."))
    _client(turn).favourite_master_id = master_id or None
    return await _show(turn, turn._("Saved."))


async def press_time_of_day(turn: Turn, args: list[str]) -> list[Reply]:
    value = args[0] if args else ""
    if value not in (*TIMES_OF_DAY, "any"):
        raise BadPayload(value)
    _client(turn).preferred_time_of_day = None if value == "any" else value
    return await _show(turn, turn._("Saved."))


async def press_language(turn: Turn, args: list[str]) -> list[Reply]:
    code = args[0] if args else ""
    if code not in LANGUAGES or code not in turn.deps.translators:
        raise BadPayload(code)
    _client(turn).locale = code
    turn.use_locale(code)
    return await _show(turn, turn._("Saved."))


async def press_clear_note(turn: Turn, args: list[str]) -> list[Reply]:
    _client(turn).preference_note = ""
    return await _show(turn, turn._("Saved."))


async def press_offers(turn: Turn, args: list[str]) -> list[Reply]:
    client = _client(turn)
    if opt_out_of_marketing(client, turn.now):
        return await _show(turn, turn._("Offers are off. Reminders about visits still come."))
    opt_in_to_marketing(client, turn.now)
    return await _show(turn, turn._("Offers are on. Thank you!"))


async def on_note(turn: Turn, event: Text | Contact) -> list[Reply]:
    note = typed(event)
    if not note:
        return [with_hint(turn._("Please type the note."), await view_note(turn))]
    if refusal := too_long(turn, note, NOTE_MAX):
        return [with_hint(refusal, await view_note(turn))]
    _client(turn).preference_note = note
    return await _show(turn, turn._("Saved."))


async def on_birthday(turn: Turn, event: Text | Contact) -> list[Reply]:
    text = event.text if isinstance(event, Text) else ""
    birthday = read_birthday(text, today=turn.tr.local(turn.now).date())
    if isinstance(birthday, BirthdayMistake):
        hint = registration.birthday_mistake_text(turn, birthday)
        return [with_hint(hint, await view_birthday(turn))]
    _client(turn).birthday = birthday
    return await _show(turn, turn._("Saved."))


async def press_remove_birthday(turn: Turn, args: list[str]) -> list[Reply]:
    _client(turn).birthday = None
    return await _show(turn, turn._("Your birthday is removed."))


async def on_name(turn: Turn, event: Text | Contact) -> list[Reply]:
    name = registration.tidy_name(typed(event))
    if not name:
        return [with_hint(turn._("Please type your name."), await view_name(turn))]
    if refusal := registration.name_problem(turn, name):
        return [with_hint(refusal, await view_name(turn))]
    _client(turn).name = name
    return await _show(turn, turn._("Saved."))


async def on_phone(turn: Turn, event: Text | Contact) -> list[Reply]:
    """The same rules as at registration: a typed number is a claim, never a way into a
    profile we know; only the messenger's own contact proves it."""
    raw = event.phone if isinstance(event, Contact) else event.text
    phone = registration.read_phone(raw, turn.config.business.phone_region)
    if isinstance(phone, PhoneMistake):
        hint = registration.phone_mistake_text(turn, phone)
        return [with_hint(hint, await view_phone(turn))]
    proven = registration.proven_by_messenger(event, turn)
    if problem := await registration.phone_problem(turn, phone, proven=proven):
        return [with_hint(problem, await view_phone(turn))]
    await registration.save_phone(turn, _client(turn), phone, proven=proven)
    saved = turn._("Saved: {phone}").format(phone=registration.shown_phone(phone))
    return await _show(turn, saved)


FLOW = Flow(
    "preferences",
    views={
        Step.PREFS: view_preferences,
        Step.PREFS_MASTER: view_master,
        Step.PREFS_TIME: view_time,
        Step.PREFS_LANGUAGE: view_language,
        Step.PREFS_NOTE: view_note,
        Step.PREFS_BIRTHDAY: view_birthday,
        Step.PREFS_NAME: view_name,
        Step.PREFS_PHONE: view_phone,
    },
    text_steps={
        Step.PREFS_NOTE: on_note,
        Step.PREFS_BIRTHDAY: on_birthday,
        Step.PREFS_NAME: on_name,
        Step.PREFS_PHONE: on_phone,
    },
    actions={
        Act.PREFERENCES: press_preferences,
        Act.OPEN_FAVOURITE_MASTER: _opener(Step.PREFS_MASTER, view_master),
        Act.OPEN_TIME_OF_DAY: _opener(Step.PREFS_TIME, view_time),
        Act.OPEN_LANGUAGE: _opener(Step.PREFS_LANGUAGE, view_language),
        Act.OPEN_NOTE: _opener(Step.PREFS_NOTE, view_note),
        Act.OPEN_BIRTHDAY: _opener(Step.PREFS_BIRTHDAY, view_birthday),
        Act.OPEN_NAME: _opener(Step.PREFS_NAME, view_name),
        Act.OPEN_PHONE: _opener(Step.PREFS_PHONE, view_phone),
        Act.SET_FAVOURITE_MASTER: press_favourite,
        Act.SET_TIME_OF_DAY: press_time_of_day,
        Act.SET_LANGUAGE: press_language,
        Act.CLEAR_NOTE: press_clear_note,
        Act.REMOVE_BIRTHDAY: press_remove_birthday,
        Act.TOGGLE_OFFERS: press_offers,
    },
)
