"""One turn of a conversation: the inbound event, who sent it, where they are, and the
services a handler needs. Handlers read and change it; `Conversations` saves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from domain.text import Translator, translator_for
from handlers.events import Inbound
from storage.catalog import Catalog
from storage.queries import Chat
from storage.tables import Client, Conversation, Staff


@dataclass(slots=True)
class Links:
    """How people reach the bot, learnt by the channels when they start: the Telegram
    bot's username (t.me/<username>), unknown in the terminal."""

    telegram_username: str | None = None

    def telegram_start(self, payload: str) -> str | None:
        """A link that opens the bot with /start <payload>; None while unknown."""
        if not self.telegram_username:
            return None
        return f"https://t.me/{self.telegram_username}?start={payload}"


@dataclass(frozen=True, slots=True)
class Deps:
    """What every conversation needs, built once by the composition root."""

    config: BusinessConfig
    catalog: Catalog
    translators: Mapping[str, Translator]
    links: Links = field(default_factory=Links)

    def translator(self, locale: str | None) -> Translator:
        return translator_for(self.translators, locale, self.config.business.default_locale)


@dataclass(slots=True)
class Turn:
    session: AsyncSession
    inbound: Inbound
    deps: Deps
    conversation: Conversation
    client: Client | None
    tr: Translator
    staff: Staff | None = None  # the sender is a member of staff (checked in the database)
    forget_chat: bool = False  # /forget: the conversation row is deleted, not saved
    read: Chat | None = None  # the chat's rows as the turn began (saving compares them)

    @property
    def now(self) -> datetime:
        return self.inbound.received_at

    @property
    def step(self) -> str:
        return self.conversation.step

    @property
    def data(self) -> dict[str, Any]:
        return self.conversation.data

    @property
    def config(self) -> BusinessConfig:
        return self.deps.config

    @property
    def catalog(self) -> Catalog:
        return self.deps.catalog

    @property
    def locale(self) -> str:
        return self.tr.locale

    def goto(self, step: str, **data: Any) -> None:
        """Move to `step`; `data` is everything needed to show that step again."""
        self.conversation.step = step
        self.conversation.data = dict(data)

    def use_locale(self, locale: str) -> None:
        self.tr = self.deps.translator(locale)

    def _(self, message: str) -> str:
        return self.tr._(message)
