"""What the bot says: text and buttons (now and then a picture), the same value for every
channel and every sender (a conversation's answer or a planned message). Adapters turn it
into Telegram, WhatsApp or terminal output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Button:
    """A choice (its payload comes back as the person's answer) or, with `url`, a link the
    messenger opens itself (a review page, a chat with the client): no payload then."""

    label: str
    payload: str = ""
    url: str | None = None

    @classmethod
    def link(cls, label: str, url: str) -> Button:
        return cls(label, url=url)

    @property
    def is_link(self) -> bool:
        return self.url is not None


@dataclass(frozen=True, slots=True)
class Image:
    """A picture sent with the text (the digest's chart): PNG bytes and a file name."""

    data: bytes = field(repr=False)
    filename: str = "image.png"


@dataclass(frozen=True, slots=True)
class Document:
    """A file sent after the text (/mydata's JSON): bytes, a file name."""

    data: bytes = field(repr=False)
    filename: str = "file.json"


@dataclass(frozen=True, slots=True)
class Reply:
    """One message. Every field is set when it is made and never changed: a conversation
    that needs another locale or a hint on top makes a new Reply (`dataclasses.replace`)."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    ask_contact: bool = False  # offer the messenger's "share my phone" button
    contact_button: str | None = None  # that button's label, in the reader's language
    edit: bool = False  # replaces the message whose button was pressed, where the channel can
    kind: str | None = None  # a message kind (docs/retention.md), e.g. booking_confirmation
    locale: str | None = None  # the reader's language, for the words adapters add ("More…")
    # The named values a WhatsApp template of this kind may show (name, service, when...).
    values: Mapping[str, str] = field(default_factory=dict, compare=False)

    image: Image | None = field(default=None, compare=False)  # channels without pictures skip it
    # Sent after the text where the channel takes files; the text must stand on its own.
    document: Document | None = field(default=None, compare=False)
    # From now on this chat's command list (name, description): a member of staff gets the
    # commands of their role. Channels without a command list ignore it.
    commands: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @property
    def flat_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    @property
    def choices(self) -> list[Button]:
        """The buttons that answer with a payload (links left out)."""
        return [button for button in self.flat_buttons if not button.is_link]

    @property
    def links(self) -> list[Button]:
        return [button for button in self.flat_buttons if button.is_link]


def links_as_text(reply: Reply) -> Reply:
    """The reply with its link buttons written into the text ("Label: url") for a channel
    that cannot show them as buttons (WhatsApp beside reply buttons, a chat whose privacy
    settings refuse a link to the person); its choices stay buttons."""
    if not reply.links:
        return reply
    lines = [f"{button.label}: {button.url}" for button in reply.links]
    kept = tuple(
        row for row in (tuple(b for b in r if not b.is_link) for r in reply.buttons) if row
    )
    return replace(reply, text="\n".join([reply.text, "", *lines]), buttons=kept)


def rows(buttons: list[Button], per_row: int = 1) -> tuple[tuple[Button, ...], ...]:
    """Lay buttons out `per_row` to a row."""
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
