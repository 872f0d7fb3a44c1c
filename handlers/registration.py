"""First contact: name, phone, personal-data consent, marketing opt-in, birthday."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import phonenumbers

from domain import vocabulary as press
from domain.payloads import BadPayload
from domain.people import BirthdayMistake, first_name, read_birthday
from domain.replies import Button, Reply, rows
from domain.retention import in_holdout
from domain.text import has_letter, without_format_characters
from domain.vocabulary import Act, Step, registering
from handlers import menu
from handlers.common import LANGUAGES, NAME_MAX, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.turn import Turn
from storage.identities import identities_of, identity_of, link_chat
from storage.loyalty import client_by_code, read_code
from storage.queries import client_by_phone, create_client
from storage.tables import Channel, Client

log = logging.getLogger(__name__)

REGISTRATION_LIFETIME = timedelta(hours=24)


class PhoneMistake(StrEnum):
    """Why a typed number was not taken, so the person knows what to fix."""

    UNREADABLE = "unreadable"
    LETTERS = "letters"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID = "invalid"  # the right length, but no such number in the region's plan


_POSSIBLE = {
    phonenumbers.ValidationResult.TOO_SHORT: PhoneMistake.TOO_SHORT,
    phonenumbers.ValidationResult.TOO_LONG: PhoneMistake.TOO_LONG,
}
_PARSE = {
    phonenumbers.NumberParseException.TOO_LONG: PhoneMistake.TOO_LONG,
    phonenumbers.NumberParseException.TOO_SHORT_NSN: PhoneMistake.TOO_SHORT,
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: PhoneMistake.TOO_SHORT,
}


def normalise_phone(raw: str, region: str) -> str | None:
    """E.164 for a valid number typed in any common way, else None."""
    phone = read_phone(raw, region)
    return None if isinstance(phone, PhoneMistake) else phone


def read_phone(raw: str, region: str) -> str | PhoneMistake:
    """E.164 for a valid number typed in any common way, else what is wrong with it.
    Messengers give international numbers without the '+' (447911123456): those are tried
    with it too."""
    text = raw.strip()
    # phonenumbers reads letters as keypad digits ("ABC" → "222"): a typo would silently
    # become somebody else's number.
    if any(char.isalpha() for char in text):
        return PhoneMistake.LETTERS
    candidates = [text]
    if text[:1].isdigit() and len(text) <= 20:
        candidates.append("+" + text)
    mistakes = []
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException as error:
            mistakes.append(_PARSE.get(error.error_type, PhoneMistake.UNREADABLE))
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        mistakes.append(_invalid(number, region))
    # The number as typed says best what is wrong; the '+' guess only if it is all.
    return mistakes[0] if mistakes else PhoneMistake.UNREADABLE


def _invalid(number: phonenumbers.PhoneNumber, region: str) -> PhoneMistake:
    """What is wrong with a parsed number that is not valid: a length the plan never has,
    else a digit count unlike the region's mobiles, else no such number."""
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in _POSSIBLE:
        return _POSSIBLE[reason]
    where = phonenumbers.region_code_for_country_code(number.country_code or 0) or region
    example = phonenumbers.example_number_for_type(where, phonenumbers.PhoneNumberType.MOBILE)
    if example is not None:
        digits, usual = len(str(number.national_number)), len(str(example.national_number))
        if digits != usual:
            return PhoneMistake.TOO_LONG if digits > usual else PhoneMistake.TOO_SHORT
    return PhoneMistake.INVALID


def phone_mistake_text(turn: Turn, mistake: PhoneMistake) -> str:
    texts = {
        PhoneMistake.UNREADABLE: turn._("That does not look like a phone number."),
        PhoneMistake.LETTERS: turn._(
            "A phone number has only digits (and perhaps +, spaces or dashes). Please check it."
        ),
        PhoneMistake.TOO_SHORT: turn._("That number is too short: some digits are missing."),
        PhoneMistake.TOO_LONG: turn._("That number is too long: please check the digits."),
        PhoneMistake.INVALID: turn._(
            "There is no such phone number. Please check the digits and the country code."
        ),
    }
    return texts[mistake]


def shown_phone(phone: str) -> str:
    """+79123456789 → '+7 912 345-67-89': how the person reads their number back."""
    number = phonenumbers.parse(phone)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def birthday_mistake_text(turn: Turn, mistake: BirthdayMistake) -> str:
    texts = {
        BirthdayMistake.UNREADABLE: turn._(
            "I could not read that date. Please type it like 27.11 or 27.11.1990."
        ),
        BirthdayMistake.NO_SUCH_DATE: turn._(
            "There is no such date. Please check the day and the month."
        ),
        BirthdayMistake.IN_FUTURE: turn._("That date is in the future. Please check the year."),
        BirthdayMistake.TOO_EARLY: turn._("That year is too long ago. Please check it."),
    }
    return texts[mistake]


def tidy_name(raw: str) -> str:
    """One line, single spaces, no invisible characters: how the name is kept."""
    return " ".join(without_format_characters(raw).split())


def name_problem(turn: Turn, name: str) -> str | None:
    """Why a tidied name cannot be kept, or None."""
    if not has_letter(name):
        return turn._("A name needs at least one letter. Please type your name.")
    return too_long(turn, name, NAME_MAX)


async def begin(turn: Turn, *, ref: str | None = None) -> list[Reply]:
    """The first screen; `ref` is a friend's referral code, kept through every step (and
    through a /start typed again before the name is given)."""
    if ref is None and registering(turn.step):
        ref = turn.data.get("ref")
    locale = (turn.inbound.language or "")[:2].lower()
    if locale in turn.deps.translators:
        turn.use_locale(locale)
    kept = {"ref": ref} if ref else {}
    turn.goto(Step.REG_NAME, locale=turn.locale, since=turn.now.isoformat(), **kept)
    return _first_screen(turn, await view_name(turn))


async def start_with_referral(turn: Turn, code: str) -> list[Reply]:
    """/start r_<code> from someone who is not a client yet: registration, keeping the
    code (a half-done registration goes on where it was). An unreadable or unknown code
    is no error: it simply links nobody (`_link_referrer`)."""
    ref = read_code(code)
    if registering(turn.step) and turn.step != Step.REG_NAME and not expired(turn):
        if ref:
            turn.goto(turn.step, **{**turn.data, "ref": ref})
        view = FLOW.views[turn.step]  # type: ignore[index]
        return [await view(turn)]
    return await begin(turn, ref=ref)


def _first_screen(turn: Turn, name: Reply) -> list[Reply]:
    greeting = turn._(
        "Hello! This is the booking bot of {business}. "
        "Book a visit in a few taps, and we will remind you about it."
    ).format(business=turn.config.business.name)
    return [Reply(greeting), name]


async def view_name(turn: Turn) -> Reply:
    buttons = []
    shown = (turn.inbound.display_name or "").strip()
    if shown and len(shown) <= NAME_MAX:
        buttons.append(Button(shown, press.tap(Act.USE_SHOWN_NAME)))
    # The messenger's language may not be the person's: the other languages, one tap away.
    buttons += [
        Button(label, press.choose_first_language(code))
        for code, label in LANGUAGES.items()
        if code != turn.locale and code in turn.deps.translators
    ]
    return Reply(turn._("What is your name?"), buttons=rows(buttons))


async def press_first_language(turn: Turn, args: list[str]) -> list[Reply]:
    code = args[0] if args else ""
    if turn.step != Step.REG_NAME:
        return [await _current(turn)]
    if code not in LANGUAGES or code not in turn.deps.translators:
        raise BadPayload(code)
    turn.use_locale(code)
    turn.goto(Step.REG_NAME, **{**turn.data, "locale": code})
    return _first_screen(turn, await view_name(turn))


async def view_phone(turn: Turn) -> Reply:
    return Reply(
        turn._(
            "Your phone number, please: tap the button below or type it, e.g. {example}."
        ).format(example=_example(turn)),
        ask_contact=True,
        contact_button=turn._("📱 Share my phone number"),
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
            [
                Button(turn._("I agree"), press.answer_consent(True)),
                Button(turn._("No"), press.answer_consent(False)),
            ],
            2,
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
                Button(turn._("Yes, please"), press.answer_marketing(True)),
                Button(turn._("No, thanks"), press.answer_marketing(False)),
            ],
            2,
        ),
        edit=True,
    )


async def view_birthday(turn: Turn) -> Reply:
    return Reply(
        turn._("When is your birthday? Type it like 27.11 or 27.11.1990 — or skip this."),
        buttons=rows([Button(turn._("Skip"), press.tap(Act.SKIP_BIRTHDAY))]),
        edit=True,
    )


def _example(turn: Turn) -> str:
    return _example_for(turn.config.business.phone_region)


@lru_cache(maxsize=64)
def _example_for(region: str) -> str:
    """A mobile number of the business's country as people write it (worked out once)."""
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
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
    if turn.step != Step.REG_NAME or not shown:
        return [await _current(turn)]
    return await _set_name(turn, shown)


async def _set_name(turn: Turn, name: str) -> list[Reply]:
    name = tidy_name(name)
    if refusal := name_problem(turn, name):
        return [with_hint(refusal, await view_name(turn))]
    data = {**turn.data, "name": name}
    if turn.inbound.phone:  # the channel proves the number (WhatsApp): no need to ask
        phone = normalise_phone(turn.inbound.phone, turn.config.business.phone_region)
        problem = await phone_problem(turn, phone, proven=True) if phone else None
        if phone and problem is None:
            turn.goto(Step.REG_CONSENT, **{**data, "phone": phone, "proven": True})
            return [await view_consent(turn)]
        if problem:
            turn.goto(Step.REG_PHONE, **data)
            return [with_hint(problem, await view_phone(turn))]
    turn.goto(Step.REG_PHONE, **data)
    return [await view_phone(turn)]


async def on_phone(turn: Turn, event: Text | Contact) -> list[Reply]:
    raw = event.phone if isinstance(event, Contact) else event.text
    phone = read_phone(raw, turn.config.business.phone_region)
    if isinstance(phone, PhoneMistake):
        return [with_hint(phone_mistake_text(turn, phone), await view_phone(turn))]
    proven = proven_by_messenger(event, turn)
    if problem := await phone_problem(turn, phone, proven=proven):
        return [with_hint(problem, await view_phone(turn))]
    if turn.client is not None:  # a client whose number went to its proven owner
        return await _replace_phone(turn, turn.client, phone, proven)
    turn.goto(Step.REG_CONSENT, **{**turn.data, "phone": phone, "proven": proven})
    return [await view_consent(turn)]


def proven_by_messenger(event: Text | Contact, turn: Turn) -> bool:
    """The messenger vouches for the number: Telegram's own-contact button (the adapter
    turns someone else's contact into text), or the terminal, which is the operator's."""
    return isinstance(event, Contact) or turn.inbound.channel == Channel.console


async def phone_problem(turn: Turn, phone: str, *, proven: bool) -> str | None:
    """Why this chat cannot have this number now, or None. A typed number never attaches a
    chat to a client we know; a proven one does, unless that client's number is proven too
    and another chat of this messenger already has it."""
    holder = await client_by_phone(session=turn.session, phone=phone)
    if holder is None or holder.deleted_at is not None or holder is turn.client:
        return None
    if not proven:
        return turn._(
            "We already know this number. To link it to this chat, please tap "
            "the button below so the messenger confirms the number is yours."
        )
    if not holder.phone_verified:
        return None  # the proven owner wins; the holder is moved off it on commit
    if turn.client is not None or await _has_another_chat_here(turn, holder):
        return turn._(
            "This number is already registered from another account. "
            "Please type a different number or call us: {phone}."
        ).format(phone=turn.config.business.phone or "—")
    return None


async def _has_another_chat_here(turn: Turn, client: Client) -> bool:
    assert client.id is not None
    chats = await identities_of(session=turn.session, client_id=client.id)
    channel, external_id = turn.inbound.channel, turn.inbound.external_id
    return any(c.channel == channel and c.external_id != external_id for c in chats)


async def _recheck(turn: Turn) -> list[Reply] | None:
    """Before a step commits: the number may have been taken since it was given (the real
    owner registered, the shop imported its list). Back to the phone step if so."""
    phone = turn.data.get("phone")
    proven = bool(turn.data.get("proven"))
    problem = await phone_problem(turn, phone, proven=proven) if phone else None
    if phone and problem is None:
        return None
    data = {k: v for k, v in turn.data.items() if k in ("name", "locale", "since", "ref")}
    turn.goto(Step.REG_PHONE, **data)
    view = await view_phone(turn)
    return [with_hint(problem, view) if problem else view]


async def _take_number(turn: Turn, phone: str, proven: bool) -> Client | None:
    """Free the number for this chat; the client to adopt when it is theirs already. A
    deleted client's number is free; an unproven holder gives it up to the proven owner."""
    holder = await client_by_phone(session=turn.session, phone=phone)
    if holder is None:
        return None
    if holder.deleted_at is None and holder.phone_verified and proven:
        return holder
    if holder.deleted_at is None and proven:
        log.info("client %s lost an unproven phone to its proven owner", holder.id)
    holder.phone, holder.phone_verified = None, False
    turn.session.add(holder)
    await turn.session.flush()  # the unique phone is free before the new holder takes it
    return None


async def _replace_phone(turn: Turn, client: Client, phone: str, proven: bool) -> list[Reply]:
    await save_phone(turn, client, phone, proven=proven)
    done = turn._("Thank you, your phone number is saved.")
    return [Reply(done), *await menu.show_menu(turn)]


async def save_phone(turn: Turn, client: Client, phone: str, *, proven: bool) -> None:
    """Give `client` the number once phone_problem has allowed it. A typed number is only
    a claim (unverified); the client's own proven number stays proven when retyped."""
    if phone == client.phone and client.phone_verified:
        return
    await _take_number(turn, phone, proven)
    client.phone, client.phone_verified = phone, proven
    turn.session.add(client)


async def ask_phone_again(turn: Turn) -> list[Reply]:
    """For a client whose typed number was proven by somebody else."""
    turn.goto(Step.REG_PHONE)
    hint = turn._(
        "The owner of the phone number in your profile has confirmed it in the messenger, "
        "so we removed it from your profile. Please share your own number."
    )
    return [with_hint(hint, await view_phone(turn))]


def expired(turn: Turn) -> bool:
    """A registration left unfinished for a day is started again: a number given then
    may no longer be free, and nobody should find a half-made profile waiting."""
    started = turn.data.get("since")
    since = datetime.fromisoformat(started) if started else turn.conversation.updated_at
    return since is not None and turn.now - since > REGISTRATION_LIFETIME


async def start_over(turn: Turn) -> list[Reply]:
    kept = {"ref": turn.data["ref"]} if turn.data.get("ref") else {}
    turn.goto(Step.REG_NAME, locale=turn.locale, since=turn.now.isoformat(), **kept)
    hint = turn._("Your registration was not finished within a day, so let's start again.")
    return [with_hint(hint, await view_name(turn))]


async def press_consent(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != Step.REG_CONSENT:
        return [await _current(turn)]
    if refusal := await _recheck(turn):
        return refusal
    if args[:1] != ["1"]:
        hint = turn._(
            "Without this consent we cannot book you through the bot. "
            "You can still call us: {phone}. Tap “I agree” whenever you are ready."
        ).format(phone=turn.config.business.phone or "—")
        return [with_hint(hint, await view_consent(turn))]
    turn.goto(Step.REG_MARKETING, **{**turn.data, "consent_at": turn.now.isoformat()})
    return [await view_marketing(turn)]


async def press_marketing(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != Step.REG_MARKETING:
        return [await _current(turn)]
    if refusal := await _recheck(turn):
        return refusal
    turn.goto(Step.REG_BIRTHDAY, **{**turn.data, "marketing": args[:1] == ["1"]})
    return [await view_birthday(turn)]


async def on_birthday(turn: Turn, event: Text | Contact) -> list[Reply]:
    if not isinstance(event, Text):
        return [with_hint(turn._("Please type your birthday."), await view_birthday(turn))]
    birthday = read_birthday(event.text, today=turn.tr.local(turn.now).date())
    if isinstance(birthday, BirthdayMistake):
        hint = birthday_mistake_text(turn, birthday)
        return [with_hint(hint, await view_birthday(turn))]
    return await _finish(turn, birthday)


async def press_skip_birthday(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.step != Step.REG_BIRTHDAY:
        return [await _current(turn)]
    return await _finish(turn, None)


async def _finish(turn: Turn, birthday: date | None) -> list[Reply]:
    if refusal := await _recheck(turn):
        return refusal
    data = turn.data
    proven = bool(data.get("proven"))
    newcomer = bool(data.get("ref")) and await _never_seen(turn, data["phone"])
    answers: dict[str, Any] = {
        "name": data["name"],
        "locale": turn.locale,
        "consent_at": datetime.fromisoformat(data["consent_at"]),
        "consent_text": turn.config.business.consent_text,  # what the client agreed to
    }
    if data.get("marketing"):
        answers["marketing_opt_in_at"] = turn.now
    if birthday is not None:
        answers["birthday"] = birthday
    messenger = turn.inbound.channel if turn.inbound.channel != Channel.console else None
    client = await _take_number(turn, data["phone"], proven)
    if client is None:
        client = await create_client(
            session=turn.session,
            phone=data["phone"],
            phone_verified=proven,
            source=turn.inbound.channel,
            holdout=in_holdout(data["phone"], turn.config.retention.holdout_share),
            preferred_channel=messenger,
            created_at=turn.now,
            **answers,
        )
    else:
        for field, value in answers.items():
            setattr(client, field, value)
        if client.preferred_channel is None:
            client.preferred_channel = messenger
        turn.session.add(client)
        await turn.session.flush()
    await link_chat(
        session=turn.session,
        client=client,
        channel=turn.inbound.channel,
        external_id=turn.inbound.external_id,
        verified=True,
        now=turn.now,
    )
    if newcomer:
        await _link_referrer(turn, client, str(data["ref"]))
    turn.client = client
    turn.conversation.client_id = client.id
    done = turn._("Thank you, {name}! You are registered.").format(name=first_name(client.name))
    return [Reply(done), *await menu.show_menu(turn)]


async def _never_seen(turn: Turn, phone: str) -> bool:
    """Nobody, deleted or not, has had this number or this chat: a new person, whom a
    friend's link may credit to the friend. A number or a chat coming back (a second
    account, a deleted client) is not a new friend."""
    if await client_by_phone(session=turn.session, phone=phone) is not None:
        return False
    chat = await identity_of(
        session=turn.session, channel=turn.inbound.channel, external_id=turn.inbound.external_id
    )
    return chat is None


async def _link_referrer(turn: Turn, client: Client, ref: str) -> None:
    """Link a new client to the owner of the code they came with; an unknown code, the
    client's own, or a deleted owner's links nobody, and says nothing."""
    referrer = await client_by_code(session=turn.session, code=ref)
    if referrer is None or referrer.deleted_at is not None or referrer.id == client.id:
        return
    if referrer.phone is not None and referrer.phone == client.phone:
        return
    client.referred_by_id = referrer.id
    turn.session.add(client)


async def _current(turn: Turn) -> Reply:
    """A registration button pressed out of turn: show where the client really is."""
    if turn.client is not None:
        return (await menu.show_menu(turn))[0]
    view = FLOW.views.get(turn.step, view_name)  # type: ignore[call-overload]
    return await view(turn)


FLOW = Flow(
    "registration",
    views={
        Step.REG_NAME: view_name,
        Step.REG_PHONE: view_phone,
        Step.REG_CONSENT: view_consent,
        Step.REG_MARKETING: view_marketing,
        Step.REG_BIRTHDAY: view_birthday,
    },
    text_steps={
        Step.REG_NAME: on_name,
        Step.REG_PHONE: on_phone,
        Step.REG_BIRTHDAY: on_birthday,
    },
    actions={
        Act.USE_SHOWN_NAME: press_name,
        Act.ANSWER_CONSENT: press_consent,
        Act.ANSWER_MARKETING: press_marketing,
        Act.SKIP_BIRTHDAY: press_skip_birthday,
        Act.CHOOSE_FIRST_LANGUAGE: press_first_language,
    },
)
