"""The conversation's words: every button action and every step, by name, and the typed
builders of the payloads that name them.

A conversation module and the scheduler never spell a payload themselves: a reminder's
"Reschedule" button is `reschedule(visit_id)`, and the conversation that answers it is found
by `Act.RESCHEDULE`. The wire format stays the short one of domain/payloads.py (`1:tm:n3.2:
29385120`), so buttons in messages sent by an older version keep their meaning.

A booking target names what is being booked: `n<service>.<master>` for a new visit (master 0
= any available master) or `r<visit>` for a visit being moved; `encode_target` and
`decode_target` are its only writer and reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from domain.payloads import BadPayload, int_arg, number, pack
from domain.replies import Button
from domain.slots import DAY_PARTS


class Act(StrEnum):
    """What a button asks for; the value is its two-letter code on the wire."""

    # registration
    USE_SHOWN_NAME = "rn"
    ANSWER_CONSENT = "rc"
    ANSWER_MARKETING = "rm"
    SKIP_BIRTHDAY = "rb"
    CHOOSE_FIRST_LANGUAGE = "rl"
    # menu
    MAIN_MENU = "mn"
    HELP = "hp"
    # booking
    START_BOOKING = "bk"
    CHOOSE_SERVICE = "sv"
    CHOOSE_DAYS_FOR = "ms"  # a master (or "any") chosen, or "other time": show the days
    CHOOSE_DAY = "dy"
    CHOOSE_TIME = "tm"
    CHOOSE_PART_OF_DAY = "pd"  # morning / afternoon / evening of a day, and a page of it
    ADD_COMMENT = "cm"
    BACK_TO_SUMMARY = "sm"
    CONFIRM_BOOKING = "ok"
    REPEAT_LAST_VISIT = "rp"
    ANSWER_ADDON = "xs"  # "add a beard trim?": yes or no, once per booking
    BOOK_NEXT_VISIT = "nv"  # one tap on a slot of the next-visit offer after a visit
    SKIP_NEXT_VISIT = "nx"  # "no, thanks" to that offer
    # visits
    MY_VISITS = "mv"
    OPEN_VISIT = "vi"
    CANCEL_VISIT = "cx"
    CANCEL_VISIT_SURE = "cy"
    RESCHEDULE = "rs"
    # preferences
    PREFERENCES = "pf"
    OPEN_FAVOURITE_MASTER = "pm"
    OPEN_TIME_OF_DAY = "pt"
    OPEN_LANGUAGE = "pl"
    OPEN_NOTE = "pn"
    OPEN_BIRTHDAY = "pb"
    OPEN_NAME = "pa"
    OPEN_PHONE = "pp"
    SET_FAVOURITE_MASTER = "fa"
    SET_TIME_OF_DAY = "ft"
    SET_LANGUAGE = "fl"
    CLEAR_NOTE = "fn"
    REMOVE_BIRTHDAY = "fd"
    TOGGLE_OFFERS = "pk"
    UNSUBSCRIBE = "us"  # the button under every offer
    # personal data
    FORGET_ME = "fg"  # /forget confirmed
    # loyalty and referrals
    MY_BONUS = "bn"
    INVITE_FRIEND = "iv"
    # follow-ups of planned messages
    CONFIRM_ATTENDANCE = "vc"
    RATE_VISIT = "fb"
    SKIP_FEEDBACK_COMMENT = "fs"
    NOT_NOW = "nn"
    WINBACK_REASON = "wr"
    RATE_PAST_VISIT = "pr"  # "Rate" on a past visit in My visits: shows the stars
    # staff: the visit check
    STAFF_CAME = "mc"
    STAFF_OTHER_AMOUNT = "ma"
    STAFF_NO_SHOW = "mx"
    # staff: the menu and the day
    STAFF_OPEN = "so"  # a staff menu button: runs the command it names
    STAFF_DAY = "sd"  # a day's visits (the day plan's "previous / next day")
    STAFF_VISIT = "se"  # one visit's card, for staff
    STAFF_CANCEL = "mz"  # cancel a visit for the client
    STAFF_CANCEL_SURE = "my"
    # staff: complaints
    STAFF_RESOLVE = "cr"  # resolve a complaint: asks for a short note
    # staff: booking for a caller (/book), a walk-in (/walkin), time off (/off)
    STAFF_PICK_CLIENT = "bc"  # one of the clients a name search found
    STAFF_BOOK_SERVICE = "bs"
    STAFF_BOOK_DAYS = "bd"  # a master chosen, or "other day": the days of a target
    STAFF_BOOK_DAY = "by"
    STAFF_BOOK_PART = "bq"  # a part of the day, and a page of it
    STAFF_BOOK_TIME = "bt"
    STAFF_BOOK_CONFIRM = "bo"
    STAFF_WALKIN_SERVICE = "ws"
    STAFF_WALKIN_MASTER = "wm"
    STAFF_WALKIN_ANONYMOUS = "wa"
    STAFF_WALKIN_PAID = "wp"  # paid the service's price
    STAFF_OFF_LIST = "ol"  # a master's time off and the bookings in it
    STAFF_OFF_MOVE = "om"
    STAFF_OFF_CANCEL = "oc"
    STAFF_OFF_CANCEL_SURE = "oy"
    # staff: clients, segments, broadcasts
    STAFF_CLIENT = "sc"  # a client's card
    STAFF_CLIENT_NOTE = "sn"  # "Add a note" on the card
    STAFF_CLIENT_HISTORY = "sh"  # a page of the client's visits
    STAFF_BOOK_FOR = "sb"  # "Book for them": hands the client over to the staff booking
    STAFF_ERASE = "sx"  # erase a client's personal data (a confirmation first)
    STAFF_GROUP = "sg"  # a page of the clients of a segment (or VIP)
    BROADCAST_TO = "ba"  # the group a broadcast goes to
    BROADCAST_SEND = "bz"  # confirm the preview
    BROADCAST_EDIT = "be"  # write the text again
    BROADCAST_STATUS = "bu"  # the broadcasts sent and their progress


class Step(StrEnum):
    """Where a conversation stands; stored in conversation.step."""

    START = "start"
    MENU = "menu"
    HELP = "help"
    REG_NAME = "reg.name"
    REG_PHONE = "reg.phone"
    REG_CONSENT = "reg.consent"
    REG_MARKETING = "reg.marketing"
    REG_BIRTHDAY = "reg.birthday"
    BOOK_SERVICE = "book.service"
    BOOK_MASTER = "book.master"
    BOOK_DAY = "book.day"
    BOOK_TIME = "book.time"
    BOOK_SUMMARY = "book.summary"
    BOOK_COMMENT = "book.comment"
    BOOK_REPEAT = "book.repeat"
    BOOK_ADDON = "book.addon"
    VISITS = "visits"
    VISIT = "visits.one"
    VISIT_CANCEL = "visits.cancel"
    PREFS = "prefs"
    PREFS_MASTER = "prefs.master"
    PREFS_TIME = "prefs.time"
    PREFS_LANGUAGE = "prefs.language"
    PREFS_NOTE = "prefs.note"
    PREFS_BIRTHDAY = "prefs.birthday"
    PREFS_NAME = "prefs.name"
    PREFS_PHONE = "prefs.phone"
    FEEDBACK_COMMENT = "feedback.comment"
    BONUS = "loyalty.bonus"
    INVITE = "loyalty.invite"
    STAFF_AMOUNT = "staff.amount"
    STAFF_MENU = "staff.menu"
    STAFF_DAY = "staff.day"
    STAFF_RESOLVE = "staff.resolve"
    STAFF_CALLER = "staff.caller"  # /book, /walkin: the client's phone or a name
    STAFF_CALLER_PICK = "staff.caller.pick"  # the clients a name search found
    STAFF_CALLER_NAME = "staff.caller.name"  # a new client's name
    STAFF_BOOK_SERVICE = "staff.book.service"
    STAFF_BOOK_MASTER = "staff.book.master"
    STAFF_BOOK_DAY = "staff.book.day"
    STAFF_BOOK_TIME = "staff.book.time"
    STAFF_BOOK_SUMMARY = "staff.book.summary"
    STAFF_WALKIN_SERVICE = "staff.walkin.service"
    STAFF_WALKIN_MASTER = "staff.walkin.master"
    STAFF_WALKIN_AMOUNT = "staff.walkin.amount"
    STAFF_OFF = "staff.off"
    STAFF_CLIENT_SEARCH = "staff.client_search"
    STAFF_CLIENT = "staff.client"
    STAFF_CLIENT_NOTE = "staff.client_note"
    STAFF_CLIENT_HISTORY = "staff.client_history"
    STAFF_SEGMENTS = "staff.segments"
    STAFF_GROUP = "staff.group"
    STAFF_BROADCAST = "staff.broadcast"
    STAFF_BROADCAST_TEXT = "staff.broadcast_text"
    STAFF_BROADCAST_PREVIEW = "staff.broadcast_preview"
    STAFF_BROADCASTS = "staff.broadcasts"


def registering(step: str) -> bool:
    """The step is one of registration's (the only steps open to an unknown person)."""
    return step.startswith("reg.")


# --- booking targets ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewVisit:
    service_id: int
    master_id: int  # 0: any available master
    addon_id: int = 0  # a service added at booking (cross-sell); 0: none


@dataclass(frozen=True, slots=True)
class MovedVisit:
    visit_id: int


TargetRef = NewVisit | MovedVisit


def encode_target(ref: TargetRef) -> str:
    if isinstance(ref, MovedVisit):
        return f"r{ref.visit_id}"
    addon = f".{ref.addon_id}" if ref.addon_id else ""
    return f"n{ref.service_id}.{ref.master_id}{addon}"


def decode_target(token: str) -> TargetRef:
    """The target a payload names; BadPayload when it is not one."""
    if token.startswith("r"):
        return MovedVisit(number(token[1:]))
    parts = token[1:].split(".")
    if not token.startswith("n") or len(parts) not in (2, 3):
        raise BadPayload(token)
    addon = number(parts[2]) if len(parts) == 3 else 0
    if len(parts) == 3 and not addon:
        raise BadPayload(token)  # written without the part when there is no add-on
    return NewVisit(number(parts[0]), number(parts[1]), addon)


def encode_moment(moment: datetime) -> int:
    """A start time on the wire and in the state: whole minutes since 1970 (UTC)."""
    return int(moment.timestamp() // 60)


def decode_moment(args: list[str], index: int) -> datetime:
    try:
        return moment_of(int_arg(args, index))
    except (OverflowError, ValueError, OSError):  # a forged minute count beyond the calendar
        raise BadPayload(":".join(args)) from None


def moment_of(minutes: int) -> datetime:
    return datetime.fromtimestamp(minutes * 60, UTC)


def decode_day(args: list[str], index: int) -> date:
    try:
        return datetime.strptime(args[index], "%Y%m%d").date()
    except (IndexError, ValueError):
        raise BadPayload(":".join(args)) from None


PARTS_OF_DAY = tuple(DAY_PARTS)
LAST_PAGE = 20  # a day has fewer screens of times than this; a larger page is forged


def decode_part_of_day(args: list[str], index: int) -> tuple[str, int]:
    """A part of the day and a page of its times; BadPayload for anything else."""
    if index >= len(args) or args[index] not in PARTS_OF_DAY:
        raise BadPayload(":".join(args))
    page = int_arg(args, index + 1)
    if page > LAST_PAGE:
        raise BadPayload(":".join(args))
    return args[index], page


# --- payload builders --------------------------------------------------------------------


def tap(act: Act) -> str:
    """A button whose action needs no argument."""
    return pack(act)


def choose_service(service_id: int, addon_id: int | None = None) -> str:
    """A service chosen; with `addon_id` (0: none) the add-on question is answered already
    ("« Back" from the days), so it is not asked again."""
    if addon_id is None:
        return pack(Act.CHOOSE_SERVICE, service_id)
    return pack(Act.CHOOSE_SERVICE, service_id, addon_id)


def choose_days_for(target: TargetRef) -> str:
    return pack(Act.CHOOSE_DAYS_FOR, encode_target(target))


def choose_day(target: TargetRef, day: date) -> str:
    return pack(Act.CHOOSE_DAY, encode_target(target), f"{day:%Y%m%d}")


def choose_part_of_day(target: TargetRef, day: date, part: str, page: int = 0) -> str:
    return pack(Act.CHOOSE_PART_OF_DAY, encode_target(target), f"{day:%Y%m%d}", part, page)


def choose_time(target: TargetRef, start: datetime) -> str:
    return pack(Act.CHOOSE_TIME, encode_target(target), encode_moment(start))


def confirm_booking(target: TargetRef, start: datetime) -> str:
    return pack(Act.CONFIRM_BOOKING, encode_target(target), encode_moment(start))


def book_slot(service_id: int, master_id: int, start: datetime) -> str:
    """One tap books `service_id` with `master_id` at `start` (a nudge's suggested slot)."""
    return confirm_booking(NewVisit(service_id, master_id), start)


def answer_addon(service_id: int, addon_id: int, yes: bool) -> str:
    return pack(Act.ANSWER_ADDON, service_id, addon_id, int(yes))


def book_next_visit(visit_id: int | None, start: datetime) -> str:
    """One tap on a slot of the offer sent after `visit_id`: the same service and master."""
    return pack(Act.BOOK_NEXT_VISIT, visit_id, encode_moment(start))


def skip_next_visit(visit_id: int | None) -> str:
    return pack(Act.SKIP_NEXT_VISIT, visit_id)


def rate_past_visit(visit_id: int | None) -> str:
    return pack(Act.RATE_PAST_VISIT, visit_id)


def resolve_complaint(feedback_id: int | None) -> str:
    return pack(Act.STAFF_RESOLVE, feedback_id)


def open_visit(visit_id: int | None) -> str:
    return pack(Act.OPEN_VISIT, visit_id)


def cancel_visit(visit_id: int | None) -> str:
    return pack(Act.CANCEL_VISIT, visit_id)


def cancel_visit_sure(visit_id: int | None) -> str:
    return pack(Act.CANCEL_VISIT_SURE, visit_id)


def reschedule(visit_id: int | None) -> str:
    return pack(Act.RESCHEDULE, visit_id)


def confirm_attendance(visit_id: int | None) -> str:
    return pack(Act.CONFIRM_ATTENDANCE, visit_id)


def rate_visit(visit_id: int | None, stars: int) -> str:
    return pack(Act.RATE_VISIT, visit_id, stars)


def star_buttons(visit_id: int | None) -> list[Button]:
    """★★★★★ to ★: the rating request's buttons, and those of "Rate" in My visits."""
    return [Button("★" * n, rate_visit(visit_id, n)) for n in range(5, 0, -1)]


def winback_reason(outbox_id: int | None, reason: str) -> str:
    """The answer names the win-back it answers: one answer per message."""
    return pack(Act.WINBACK_REASON, outbox_id, reason)


def staff_came(visit_id: int | None) -> str:
    return pack(Act.STAFF_CAME, visit_id)


def staff_other_amount(visit_id: int | None) -> str:
    return pack(Act.STAFF_OTHER_AMOUNT, visit_id)


def staff_no_show(visit_id: int | None) -> str:
    return pack(Act.STAFF_NO_SHOW, visit_id)


def staff_erase(client_id: int | None, *, sure: bool) -> str:
    return pack(Act.STAFF_ERASE, client_id, int(sure))


def staff_open(command: str) -> str:
    return pack(Act.STAFF_OPEN, command)


def staff_day(day: date) -> str:
    return pack(Act.STAFF_DAY, f"{day:%Y%m%d}")


def staff_visit(visit_id: int | None) -> str:
    return pack(Act.STAFF_VISIT, visit_id)


def staff_cancel(visit_id: int | None) -> str:
    return pack(Act.STAFF_CANCEL, visit_id)


def staff_cancel_sure(visit_id: int | None) -> str:
    return pack(Act.STAFF_CANCEL_SURE, visit_id)


def staff_pick_client(client_id: int | None, purpose: str) -> str:
    """`purpose`: "book" or "walkin", the command the client was looked up for."""
    return pack(Act.STAFF_PICK_CLIENT, client_id, purpose)


def staff_book_service(service_id: int) -> str:
    return pack(Act.STAFF_BOOK_SERVICE, service_id)


def staff_book_days(target: TargetRef) -> str:
    return pack(Act.STAFF_BOOK_DAYS, encode_target(target))


def staff_book_day(target: TargetRef, day: date) -> str:
    return pack(Act.STAFF_BOOK_DAY, encode_target(target), f"{day:%Y%m%d}")


def staff_book_part(target: TargetRef, day: date, part: str, page: int = 0) -> str:
    return pack(Act.STAFF_BOOK_PART, encode_target(target), f"{day:%Y%m%d}", part, page)


def staff_book_time(target: TargetRef, start: datetime) -> str:
    return pack(Act.STAFF_BOOK_TIME, encode_target(target), encode_moment(start))


def staff_book_confirm(target: TargetRef, start: datetime, client_id: int | None) -> str:
    """Names the client too: a summary shown for one caller never books another."""
    return pack(Act.STAFF_BOOK_CONFIRM, encode_target(target), encode_moment(start), client_id)


def staff_walkin_service(service_id: int) -> str:
    return pack(Act.STAFF_WALKIN_SERVICE, service_id)


def staff_walkin_master(master_id: int) -> str:
    return pack(Act.STAFF_WALKIN_MASTER, master_id)


def staff_off_list(master_id: int | None, first: date, last: date) -> str:
    return pack(Act.STAFF_OFF_LIST, master_id, f"{first:%Y%m%d}", f"{last:%Y%m%d}")


def staff_off_move(visit_id: int | None) -> str:
    return pack(Act.STAFF_OFF_MOVE, visit_id)


def staff_off_cancel(visit_id: int | None) -> str:
    return pack(Act.STAFF_OFF_CANCEL, visit_id)


def staff_off_cancel_sure(visit_id: int | None) -> str:
    return pack(Act.STAFF_OFF_CANCEL_SURE, visit_id)


def staff_client(client_id: int | None) -> str:
    return pack(Act.STAFF_CLIENT, client_id)


def staff_client_note(client_id: int | None) -> str:
    return pack(Act.STAFF_CLIENT_NOTE, client_id)


def staff_client_history(client_id: int | None, page: int = 0) -> str:
    return pack(Act.STAFF_CLIENT_HISTORY, client_id, page)


def staff_book_for(client_id: int | None) -> str:
    return pack(Act.STAFF_BOOK_FOR, client_id)


def staff_group(group: str, page: int = 0) -> str:
    return pack(Act.STAFF_GROUP, group, page)


def broadcast_to(group: str) -> str:
    return pack(Act.BROADCAST_TO, group)


def broadcast_send(draft: str) -> str:
    """The draft names the preview it confirms: an older preview's button sends nothing."""
    return pack(Act.BROADCAST_SEND, draft)


def decode_group(args: list[str], index: int, groups: tuple[str, ...]) -> str:
    """A group of clients named in a payload (one of `groups`), else BadPayload."""
    if index >= len(args) or args[index] not in groups:
        raise BadPayload(":".join(args))
    return args[index]


def answer_consent(yes: bool) -> str:
    return pack(Act.ANSWER_CONSENT, int(yes))


def answer_marketing(yes: bool) -> str:
    return pack(Act.ANSWER_MARKETING, int(yes))


def set_favourite_master(master_id: int) -> str:
    """Master 0: no favourite."""
    return pack(Act.SET_FAVOURITE_MASTER, master_id)


def set_time_of_day(key: str) -> str:
    return pack(Act.SET_TIME_OF_DAY, key)


def set_language(code: str) -> str:
    return pack(Act.SET_LANGUAGE, code)


def choose_first_language(code: str) -> str:
    """Registration's language button: switches before there is a client to keep it."""
    return pack(Act.CHOOSE_FIRST_LANGUAGE, code)
