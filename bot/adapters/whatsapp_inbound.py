"""WhatsApp webhooks → channel-neutral events: what a person sent, as much as the
conversation needs of it, and the delivery failures WhatsApp reports later. Only reading;
bot/adapters/whatsapp.py decides what to do with it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.adapters.whatsapp_outbound import MORE
from domain.payloads import BadPayload, unpack
from handlers.events import Choice, Command, Event, Text

log = logging.getLogger(__name__)

# Messages a person sends that the bot cannot read: the conversation re-shows its step
# with a hint ("Please choose one of the buttons below."). Reactions and system notices
# are not addressed to the bot and get no answer.
UNREADABLE = frozenset(
    {
        "audio",
        "contacts",
        "document",
        "image",
        "location",
        "order",
        "sticker",
        "unknown",
        "unsupported",
        "video",
        "voice",
    }
)
IGNORED = frozenset({"reaction", "system"})


# --- webhooks → events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message a person sent, as much as the conversation needs of it."""

    id: str  # wamid…, the dedupe key
    wa_id: str  # whom to answer; the conversation's external id
    event: Event
    name: str | None = None  # the profile name WhatsApp shows
    phone: str | None = None  # the sender's number, which WhatsApp vouches for
    more: str | None = None  # a "More…" row of a long list was pressed
    sent_at: datetime | None = None  # WhatsApp's timestamp of the message


@dataclass(frozen=True, slots=True)
class Failure:
    """A message of ours WhatsApp could not deliver (a `failed` status)."""

    wa_id: str
    code: int
    title: str


@dataclass(slots=True)
class Update:
    messages: list[Incoming] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def read_update(payload: Any, phone_id: str | None) -> Update:
    """The messages and delivery failures of one webhook body. Anything of another shape
    is skipped: the body was signed by Meta, so it is a newer format, not an attack."""
    update = Update()
    for value in _values(payload):
        metadata = _dict(value.get("metadata"))
        if phone_id and metadata.get("phone_number_id") not in (None, phone_id):
            continue  # another number of the same app: not ours to answer
        names = _profile_names(value)
        for message in _dicts(value.get("messages")):
            incoming = _incoming(message, names)
            if incoming is not None:
                update.messages.append(incoming)
        for status in _dicts(value.get("statuses")):
            update.failures += _failures(status)
    return update


def _values(payload: Any) -> list[dict[str, Any]]:
    values = []
    for entry in _dicts(_dict(payload).get("entry")):
        for change in _dicts(entry.get("changes")):
            if change.get("field", "messages") == "messages":
                values.append(_dict(change.get("value")))
    return values


def _profile_names(value: dict[str, Any]) -> dict[str, str]:
    names = {}
    for contact in _dicts(value.get("contacts")):
        sender = contact.get("wa_id") or contact.get("user_id")
        name = _dict(contact.get("profile")).get("name")
        if isinstance(sender, str) and isinstance(name, str) and name.strip():
            names[sender] = name.strip()
    return names


def _incoming(message: dict[str, Any], names: Mapping[str, str]) -> Incoming | None:
    message_id = message.get("id")
    phone = message.get("from")
    # A person who hides their number behind a username is known by a business-scoped id.
    wa_id = phone or message.get("from_user_id")
    if not isinstance(message_id, str) or not isinstance(wa_id, str) or not wa_id:
        log.warning("a WhatsApp message without id or sender skipped: %s", message.get("type"))
        return None
    if message.get("group_id"):
        return None  # the bot serves clients one to one
    more = _more_of(message)
    event = Text("") if more else event_of(message)
    if event is None:
        return None
    return Incoming(
        id=message_id,
        wa_id=wa_id,
        event=event,
        name=names.get(wa_id),
        phone=phone if isinstance(phone, str) and phone.isdigit() else None,
        more=more,
        sent_at=_timestamp(message.get("timestamp")),
    )


def _timestamp(value: Any) -> datetime | None:
    """WhatsApp's "timestamp": Unix seconds as a string."""
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# A message dated beyond these is a replay of an old signed body (or a clock gone wrong):
# acknowledged, never answered.
MAX_AGE = timedelta(hours=24)
MAX_SKEW = timedelta(minutes=5)


def is_fresh(sent_at: datetime | None, now: datetime) -> bool:
    """Sent within the last day and not in the future (a few minutes of clock skew
    allowed). A message without a date is taken: the body is signed, so a newer format."""
    if sent_at is None:
        return True
    return now - MAX_AGE <= sent_at <= now + MAX_SKEW


def event_of(message: dict[str, Any]) -> Event | None:
    """The conversation event a message means, or None for what needs no answer."""
    kind = message.get("type")
    if kind == "text":
        body = _dict(message.get("text")).get("body")
        text = body if isinstance(body, str) else ""
        return _command(text) if text.startswith("/") else Text(text)
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get(str(interactive.get("type"))))
        chosen = reply.get("id")
        return Choice(chosen) if isinstance(chosen, str) and chosen else Text("")
    if kind == "button":  # a quick-reply button of a template
        payload = _dict(message.get("button")).get("payload")
        # Without a payload set at sending, WhatsApp sends the button's text instead.
        return Choice(payload) if isinstance(payload, str) and _is_ours(payload) else Text("")
    if kind == "request_welcome":  # the person opened the chat for the first time
        return Command("start")
    if kind in IGNORED:
        return None
    if kind not in UNREADABLE:
        log.info("unknown WhatsApp message type %r: re-showing the step", kind)
    return Text("")


def _more_of(message: dict[str, Any]) -> str | None:
    if message.get("type") != "interactive":
        return None
    interactive = _dict(message.get("interactive"))
    chosen = _dict(interactive.get("list_reply")).get("id")
    return chosen if isinstance(chosen, str) and chosen.startswith(MORE) else None


def _command(text: str) -> Command:
    head, *rest = text[1:].split(maxsplit=1) or [""]
    return Command(head.lower(), rest[0].strip() if rest else "")


def _is_ours(payload: str) -> bool:
    try:
        unpack(payload)
    except BadPayload:
        return False
    return True


def _failures(status: dict[str, Any]) -> list[Failure]:
    if status.get("status") != "failed":
        return []
    wa_id = status.get("recipient_id") or status.get("recipient_user_id")
    if not isinstance(wa_id, str):
        return []
    failures = []
    for error in _dicts(status.get("errors")):
        try:
            code = int(error.get("code", 0))
        except (TypeError, ValueError):
            continue
        failures.append(Failure(wa_id, code, str(error.get("title") or error.get("message"))))
    return failures


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
