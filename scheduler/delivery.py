"""How the sender reaches a messenger, and what can go wrong there. Adapters in bot/
implement `Delivery`; the sender only sees these outcomes."""

from __future__ import annotations

from typing import Protocol

from domain.replies import Reply


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


class Delivery(Protocol):
    async def deliver(self, address: str, reply: Reply) -> None:
        """Send `reply` to `address`, or raise a DeliveryError."""
