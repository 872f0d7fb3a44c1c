"""A client talking to the bot, the way a person would: send text, press buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.replies import Button, Reply
from handlers.conversation import Conversations
from handlers.events import Choice, Command, Contact, Inbound, Text


@dataclass
class Clock:
    now: datetime

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class ChatClient:
    conversations: Conversations
    clock: Clock
    external_id: str = "1001"
    channel: str = "telegram"
    display_name: str | None = "Ivan"
    language: str | None = "ru"
    phone: str | None = None
    history: list[Reply] = field(default_factory=list)

    async def _deliver(self, event: Text | Choice | Contact | Command) -> list[Reply]:
        inbound = Inbound(
            channel=self.channel,
            external_id=self.external_id,
            event=event,
            received_at=self.clock.now,
            display_name=self.display_name,
            language=self.language,
            phone=self.phone,
        )
        replies = await self.conversations.handle(inbound)
        assert replies, f"no reply to {event!r}"
        self.history.extend(replies)
        return replies

    async def send(self, text: str) -> list[Reply]:
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            return await self._deliver(Command(name.lower(), args))
        return await self._deliver(Text(text))

    async def share_contact(self, phone: str) -> list[Reply]:
        return await self._deliver(Contact(phone))

    async def press(self, payload: str) -> list[Reply]:
        return await self._deliver(Choice(payload))

    def button(self, label: str, reply: Reply | None = None) -> Button:
        """The button on `reply` (default: the last message) labelled `label`, or else the
        first whose label contains it."""
        reply = reply or self.last
        exact = [b for b in reply.flat_buttons if b.label == label]
        found = exact or [b for b in reply.flat_buttons if label in b.label]
        labels = [b.label for b in reply.flat_buttons]
        assert found, f"no button {label!r} in {labels}"
        return found[0]

    async def click(self, label: str, reply: Reply | None = None) -> list[Reply]:
        button = self.button(label, reply)
        assert not button.is_link, f"{label!r} is a link to {button.url}, not a choice"
        return await self.press(button.payload)

    @property
    def last(self) -> Reply:
        return self.history[-1]

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.last.flat_buttons]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
