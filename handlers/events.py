"""What a channel hands to a conversation, and what a conversation hands back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Choice:
    """A button press; `payload` is what `handlers.payloads.pack` made."""

    payload: str


@dataclass(frozen=True, slots=True)
class Contact:
    """A phone number the channel vouches for (Telegram's contact button)."""

    phone: str


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # without the slash, lower case
    args: str = ""


Event = Text | Choice | Contact | Command


@dataclass(frozen=True, slots=True)
class Inbound:
    channel: str  # telegram / whatsapp / console
    external_id: str  # chat id, WhatsApp id, console user
    event: Event
    received_at: datetime  # aware UTC; the conversation's "now"
    display_name: str | None = None  # the name the messenger shows, offered at registration
    language: str | None = None  # the messenger's language code, e.g. "en-GB"
    phone: str | None = None  # a number the channel itself proves (the WhatsApp sender)
    # The channel's id of this message (wamid, Telegram update id): handled at most once.
    message_id: str | None = None
