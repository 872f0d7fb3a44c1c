"""What a channel hands to a conversation, and what a conversation hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    ask_contact: bool = False  # offer the messenger's "share my phone" button
    edit: bool = False  # replaces the message whose button was pressed, where the channel can
    kind: str | None = None  # a message kind (DESIGN.md section 5), e.g. booking_confirmation
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def flat_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]


def rows(buttons: list[Button], per_row: int = 1) -> tuple[tuple[Button, ...], ...]:
    """Lay buttons out `per_row` to a row."""
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
