"""How the sender reaches a messenger, and what can go wrong there. Adapters in bot/
implement `Delivery`; the sender only sees these outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.replies import Reply
from domain.retention import in_whatsapp_window


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: str
    address: str  # chat id, WhatsApp id
    locale: str
    client_id: int | None = None
    staff_id: int | None = None
    last_inbound: datetime | None = None  # when they last wrote to us on this channel
    composed_at: datetime | None = None  # the sender's "now" for this message

    @property
    def in_conversation_window(self) -> bool:
        """WhatsApp allows free-form messages for 24 hours after the person's last message."""
        if self.composed_at is None:
            return False
        return in_whatsapp_window(self.last_inbound, self.composed_at)


class DeliveryError(Exception):
    """The message did not go out."""


class Unreachable(DeliveryError):
    """The person blocked the bot or is not on this messenger: stop writing there."""


class RetryAfter(DeliveryError):
    """The messenger asks us to slow down: pause everything for `seconds`."""

    def __init__(self, seconds: float, detail: str = "") -> None:
        super().__init__(detail or f"retry after {seconds} s")
        self.seconds = seconds


class Transient(DeliveryError):
    """A network error or a server error: try again later."""


class OptedOut(DeliveryError):
    """The person turned off the business's marketing on this messenger (WhatsApp 131050):
    their marketing opt-in is withdrawn; reminders still go."""


class Refused(DeliveryError):
    """This message cannot go out on this channel at all (e.g. WhatsApp outside the
    24-hour window with no approved template for its kind): recorded as skipped."""


class Delivery(Protocol):
    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        """Send `reply` to `recipient`, or raise a DeliveryError."""
