"""First contact: name, phone, personal-data consent, marketing opt-in, birthday."""

from __future__ import annotations

from datetime import date, datetime

import phonenumbers

from domain.payloads import pack
from domain.people import parse_birthday
from domain.replies import Button, Reply, rows
from domain.retention import in_holdout
from domain.text import has_letter, without_format_characters
from handlers import menu
from handlers.common import NAME_MAX, Action, TextStep, View, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.turn import Turn
from storage.queries import client_by_phone
from storage.tables import Client


def normalise_phone(raw: str, region: str) -> str | None:
    """E.164 for a valid number typed in any common way, else None. Messengers give
    international numbers without the '+' (447911123456): those are tried with it too."""
    text = raw.strip()
    # phonenumbers reads letters as keypad digits ("ABC" → "222"): a typo would silently
    # become somebody else's number.
    if any(char.isalpha() for char in text):
        return None
    candidates = [text]
    if text[:1].isdigit() and len(text) <= 20:
        candidates.append("+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


async def begin(turn: Turn) -> list[Reply]:
    locale = (turn.inbound.language or "")[:2].lower()
    if locale in turn.deps.translators:
        turn.use_locale(locale)
    turn.goto("reg.name", locale=turn.locale)
    greeting = turn._(
        "Hello! This is the booking bot of {business}. "
        "Book a visit in a few taps, and we will remind you about it."
    ).format(business=turn.config.business.name)
    return [Reply(greeting), await view_name(turn)]


async def view_name(turn: Turn) -> Reply:
    buttons = []
    shown = (turn.inbound.display_name or "").strip()
    if shown and len(shown) <= NAME_MAX:
        buttons.append(Button(shown, pack("rn")))
    return Reply(turn._("What is your name?"), buttons=rows(buttons))


async def view_phone(turn: Turn) -> Reply:
    return Reply(
        turn._(
            "Your phone number, please: tap the button below or type it, e.g. {example}."
        ).format(example=_example(turn)),
        ask_contact=True,
        meta={"contact_button": turn._("📱 Share my phone number")},
    )


async def view_consent(turn: Turn) -> Reply:
    business = turn.config.business
    text = turn._("To book you we need your consent to process personal data.") + "\n\n"
    text += business.consent_text
    if business.consent_url:
        text += "\n" + business.consent_url
    return Reply(
        text,
        buttons=rows(
            [Button(turn._("I agree"), pack("rc", 1)), Button(turn._("No"), pack("rc", 0))], 2
        ),
        edit=True,
    )


async def view_marketing(turn: Turn) -> Reply:
    return Reply(
        turn._(
            "May we sometimes write to you with offers and a gift on your birthday? "
            "No more than once a week; /stop turns it off at any time."
        ),
        buttons=rows(
            [
                Button(turn._("Yes, please"), pack("rm", 1)),
                Button(turn._("No, thanks"), pack("rm", 0)),
            ],
            2,
        ),
        edit=True,
    )


async def view_birthday(turn: Turn) -> Reply:
    return Reply(
        turn._("When is your birthday? Type it like 27.11 or 27.11.1990 — or skip this."),
        buttons=rows([Button(turn._("Skip"), pack("rb"))]),
        edit=True,
    )


def _example(turn: Turn) -> str:
    number = phonenumbers.example_number_for_type(
        turn.config.business.phone_region, phonenumbers.PhoneNumberType.MOBILE
    )
    if number is None:
        return "+7 912 345-67-89"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


async def on_name(turn: Turn, event: Text | Contact) -> list[Reply]:
    name = typed(event)
    if not name:
        return [with_hint(turn._("Please type your name."), await view_name(turn))]
    return await _set_name(turn, name)


async def press_name(turn: Turn, args: list[str]) -> list[Reply]:
    shown = (turn.inbound.display_name or "").strip()
    if turn.step != "reg.name" or not shown:
        return [await _current(turn)]
    return await _set_name(turn, shown)


async def _set_name(turn: Turn, name: str) -> list[Reply]:
    name = " ".join(without_format_characters(name).split())
    if not has_letter(name):
        hint = turn._("A name needs at least one letter. Please type your name.")
        return [with_hint(hint, await view_name(turn))]
    refusal = too_long(turn, name, NAME_MAX)
    if refusal:
        return [with_hint(refusal, await view_name(turn))]
    data = {**turn.data, "name": name}
    if turn.inbound.phone:  # the channel proves the number (WhatsApp): no need to ask
        phone = normalise_phone(turn.inbound.phone, turn.config.business.phone_region)
        if phone:
            data["phone"] = phone
            turn.goto("reg.consent", **data)
            return [await view_consent(turn)]
    turn.goto("reg.phone", **data)
    return [await view_phone(turn)]


async def on_phone(turn: Turn, event: Text | Contact) -> list[Reply]:
    raw = event.phone if isinstance(event, Contact) else event.text
    phone = normalise_phone(raw, turn.config.business.phone_region)
    if phone is None:
        hint = turn._("That does not look like a phone number.")
        return [with_hint(hint, await view_phone(turn))]
    existing = await client_by_phone(session=turn.session, phone=phone)
    if existing is not None and existing.deleted_at is None:
        if _linked_elsewhere(existing, turn):
            hint = turn._(
                "This number is already registered from another account. "
                "Please type a different number or call us."
            )
            return [with_hint(hint, await view_phone(turn))]
        if not _proven(event, turn):
            # Linking a typed number would hand its visits to whoever typed it.
            hint = turn._(
                "We already know this number. To link it to this chat, please tap "
                "the button below so the messenger confirms the number is yours."
            )
            return [with_hint(hint, await view_phone(turn))]
    turn.goto("reg.consent", **{**turn.data, "phone": phone})
    return [await view_consent(turn)]


def _proven(event: Text | Contact, turn: Turn) -> bool:
    """The messenger vouches for the number: Telegram's own-contact button (the adapter
    turns someone else's contact into text), or the terminal, which is the operator's."""
    return isinstance(event, Contact) or turn.inbound.channel == "console"


def _linked_elsewhere(client: Client, turn: Turn) -> bool:
    channel, external_id = turn.inbound.channel, turn.inbound.external_id
    if channel == "telegram":
        return client.telegram_id is not None and str(client.telegram_id) != external_id
    if channel == "whatsapp":
        return client.whatsapp_id is not None and client.whatsapp_id != external_id
    return False


async def press_consent(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != "reg.consent":
        return [await _current(turn)]
    if args[:1] != ["1"]:
        hint = turn._(
            "Without this consent we cannot book you through the bot. "
            "You can still call us: {phone}. Tap “I agree” whenever you are ready."
        ).format(phone=turn.config.business.phone or "—")
        return [with_hint(hint, await view_consent(turn))]
    turn.goto("reg.marketing", **{**turn.data, "consent_at": turn.now.isoformat()})
    return [await view_marketing(turn)]


async def press_marketing(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != "reg.marketing":
        return [await _current(turn)]
    turn.goto("reg.birthday", **{**turn.data, "marketing": args[:1] == ["1"]})
    return [await view_birthday(turn)]


async def on_birthday(turn: Turn, event: Text | Contact) -> list[Reply]:
    if not isinstance(event, Text):
        return [with_hint(turn._("Please type your birthday."), await view_birthday(turn))]
    birthday = parse_birthday(event.text, today=turn.tr.local(turn.now).date())
    if birthday is None:
        hint = turn._("I could not read that date. Please type it like 27.11 or 27.11.1990.")
        return [with_hint(hint, await view_birthday(turn))]
    return await _finish(turn, birthday)


async def press_skip_birthday(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != "reg.birthday":
        return [await _current(turn)]
    return await _finish(turn, None)


async def _finish(turn: Turn, birthday: date | None) -> list[Reply]:
    data = turn.data
    client = await client_by_phone(session=turn.session, phone=data["phone"])
    if client is None or client.deleted_at is not None:
        client = Client(name=data["name"], phone=data["phone"], source=turn.inbound.channel)
    client.name = data["name"]
    client.locale = turn.locale
    client.consent_at = datetime.fromisoformat(data["consent_at"])
    if data.get("marketing"):
        client.marketing_opt_in_at = turn.now
    if client.id is None:
        client.holdout = in_holdout(client.phone or "", turn.config.retention.holdout_share)
    if birthday is not None:
        client.birthday = birthday
    _link_channel(client, turn)
    turn.session.add(client)
    await turn.session.flush()
    turn.client = client
    turn.conversation.client_id = client.id
    done = turn._("Thank you, {name}! You are registered.").format(name=client.name)
    return [Reply(done), *await menu.show_menu(turn)]


def _link_channel(client: Client, turn: Turn) -> None:
    channel, external_id = turn.inbound.channel, turn.inbound.external_id
    if channel == "telegram":
        client.telegram_id = int(external_id)
    elif channel == "whatsapp":
        client.whatsapp_id = external_id
    if client.preferred_channel is None and channel != "console":
        client.preferred_channel = channel


async def _current(turn: Turn) -> Reply:
    """A registration button pressed out of turn: show where the client really is."""
    if turn.client is not None:
        return (await menu.show_menu(turn))[0]
    view = VIEWS.get(turn.step, view_name)
    return await view(turn)


VIEWS: dict[str, View] = {
    "reg.name": view_name,
    "reg.phone": view_phone,
    "reg.consent": view_consent,
    "reg.marketing": view_marketing,
    "reg.birthday": view_birthday,
}

TEXT_STEPS: dict[str, TextStep] = {
    "reg.name": on_name,
    "reg.phone": on_phone,
    "reg.birthday": on_birthday,
}

ACTIONS: dict[str, Action] = {
    "rn": press_name,
    "rc": press_consent,
    "rm": press_marketing,
    "rb": press_skip_birthday,
}
