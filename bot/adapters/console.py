"""The terminal channel: the same conversations, buttons numbered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.clock import utc_now
from domain.replies import Button, Reply
from handlers.conversation import Conversations
from handlers.events import Choice, Command, Event, Inbound, Text


def render(reply: Reply) -> str:
    """A reply as terminal text: the message, then its buttons numbered from 1."""
    lines = [reply.text]
    for number, button in enumerate(reply.choices, start=1):
        lines.append(f"  [{number}] {button.label}")
    for link in reply.links:  # the terminal opens nothing: the link is printed
        lines.append(f"  {link.label}: {link.url}")
    if reply.ask_contact:
        lines.append("  (type the phone number)")
    if reply.document is not None:
        lines.append(f"  (a file: {reply.document.filename}, {len(reply.document.data)} bytes)")
    return "\n".join(lines)


def _button_named(buttons: list[Button], typed: str) -> Button | None:
    """The button whose label was typed: the whole label in any case, or the start of
    exactly one label ("мужская" for "Мужская стрижка · 1 800 ₽")."""
    wanted = " ".join(typed.split()).casefold()
    if not wanted:
        return None
    labels = [(" ".join(b.label.split()).casefold(), b) for b in buttons]
    exact = [b for label, b in labels if label == wanted]
    if exact:
        return exact[0]
    starts = [b for label, b in labels if label.startswith(wanted)]
    return starts[0] if len(starts) == 1 and len(wanted) >= 3 else None


class ConsoleChat:
    """One person at the terminal. `say` takes what they type: a button number, a
    /command or free text."""

    def __init__(
        self,
        conversations: Conversations,
        *,
        external_id: str,
        write: Callable[[str], None] = print,
        clock: Callable[[], datetime] = utc_now,
        display_name: str | None = None,
        language: str | None = None,
        phone: str | None = None,
    ) -> None:
        self.conversations = conversations
        self.external_id = external_id
        self.write = write
        self.clock = clock
        self.display_name = display_name
        self.language = language
        self.phone = phone
        self.last: Reply | None = None

    def event_for(self, typed: str) -> Event:
        typed = typed.strip()
        if typed.startswith("/"):
            name, _, args = typed[1:].partition(" ")
            return Command(name.lower(), args.strip())
        buttons = self.last.choices if self.last else []
        if typed.isdigit() and 1 <= int(typed) <= len(buttons):
            return Choice(buttons[int(typed) - 1].payload)
        pressed = _button_named(buttons, typed)
        return Choice(pressed.payload) if pressed else Text(typed)

    async def say(self, typed: str) -> list[Reply]:
        return await self.send(self.event_for(typed))

    async def choose(self, label: str) -> list[Reply]:
        """Press the first button whose label contains `label` (scripted tours)."""
        buttons = self.last.choices if self.last else []
        for number, button in enumerate(buttons, start=1):
            if label in button.label:
                self.write(f"> {number}  ({button.label})")
                return await self.send(Choice(button.payload))
        raise LookupError(f"no button {label!r} on the last message")

    async def type(self, text: str) -> list[Reply]:
        self.write(f"> {text}")
        return await self.say(text)

    async def send(self, event: Event) -> list[Reply]:
        inbound = Inbound(
            channel="console",
            external_id=self.external_id,
            event=event,
            received_at=self.clock(),
            display_name=self.display_name,
            language=self.language,
            phone=self.phone,
        )
        replies = await self.conversations.handle(inbound)
        for reply in replies:
            self.write(render(reply) + "\n")
        if replies:
            self.last = replies[-1]
        return replies
