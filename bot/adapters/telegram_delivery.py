"""Proactive messages (reminders, offers, staff messages) through the Bot API: aiogram's
errors translated into what the sender understands."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import BufferedInputFile

from bot.adapters.telegram import inline_keyboard, split_text
from domain.replies import Reply, links_as_text
from scheduler.delivery import Recipient, RetryAfter, Transient, Unreachable

TOKEN_REJECTED_PAUSE = 60.0
CAPTION_LIMIT = 1024  # Telegram's longest photo caption
_GONE = ("chat not found", "user is deactivated", "bot was blocked", "peer_id_invalid")
# A link button Telegram will not show: the person's privacy settings, a URL it refuses.
_LINK_REFUSED = ("BUTTON_USER_PRIVACY_RESTRICTED", "BUTTON_URL_INVALID")


class _LinksRefused(Exception):
    """Telegram refused a link button of the message."""


class TelegramDelivery:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        try:
            await self._deliver(recipient, reply)
        except _LinksRefused:
            # A link button Telegram will not show (a client whose privacy settings hide
            # them from tg://user links): the same message with the links in its text.
            await self._deliver(recipient, links_as_text(reply))

    async def _deliver(self, recipient: Recipient, reply: Reply) -> None:
        try:
            await self._send(int(recipient.address), reply)
        except TelegramRetryAfter as error:
            raise RetryAfter(float(error.retry_after), str(error)) from error
        except TelegramForbiddenError as error:
            raise Unreachable(str(error)) from error
        except TelegramBadRequest as error:
            if any(sign in str(error).lower() for sign in _GONE):
                raise Unreachable(str(error)) from error
            if reply.links and any(sign in str(error).upper() for sign in _LINK_REFUSED):
                raise _LinksRefused from error
            raise Transient(str(error)) from error
        except TelegramUnauthorizedError as error:
            # The token was revoked: every message would fail; wait for the operator.
            raise RetryAfter(
                TOKEN_REJECTED_PAUSE, f"Telegram rejected the token: {error}"
            ) from error
        except (TelegramNetworkError, TelegramServerError, TelegramAPIError) as error:
            raise Transient(str(error)) from error
        except ClientDecodeError as error:  # a proxy's HTML error page instead of JSON
            raise Transient(f"unreadable answer: {error}"[:300]) from error

    async def _send(self, chat_id: int, reply: Reply) -> None:
        """A picture carries the text as its caption when it fits; otherwise the picture
        goes first and the text follows it, split like any long message."""
        if reply.image is not None:
            photo = BufferedInputFile(reply.image.data, filename=reply.image.filename)
            if len(reply.text) <= CAPTION_LIMIT:
                markup = inline_keyboard(reply)
                await self.bot(
                    SendPhoto(chat_id=chat_id, photo=photo, caption=reply.text, reply_markup=markup)
                )
                return
            await self.bot(SendPhoto(chat_id=chat_id, photo=photo))
        chunks = split_text(reply.text)
        for number, chunk in enumerate(chunks, start=1):
            markup = inline_keyboard(reply) if number == len(chunks) else None
            await self.bot(SendMessage(chat_id=chat_id, text=chunk, reply_markup=markup))
