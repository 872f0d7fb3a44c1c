"""What every channel adapter needs the same way: long texts cut into the pieces a
messenger accepts, and one turn at a time per chat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

Chat = TypeVar("Chat", bound=Hashable)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """`text` in pieces of at most `limit` units (as `measure` counts them: characters,
    or Telegram's UTF-16 units), cut at a line break or a space where one is near, never
    empty."""
    chunks: list[str] = []
    while measure(text) > limit:
        fits = _fitting(text, limit, measure)
        cut = text.rfind("\n", 0, fits)
        if cut < fits // 2:
            cut = text.rfind(" ", 0, fits)
        if cut < fits // 2:
            chunks.append(text[:fits])
            text = text[fits:]
        else:
            chunks.append(text[:cut])
            text = text[cut + 1 :]
    chunks.append(text)
    return [chunk for chunk in chunks if chunk.strip()] or ["…"]


def _fitting(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """How many leading characters of `text` fit in `limit` units."""
    if measure is len:
        return min(limit, len(text))
    used = 0
    for index, char in enumerate(text):
        used += measure(char)
        if used > limit:
            return index
    return len(text)


class ChatLocks(Generic[Chat]):
    """One turn at a time per chat, in arrival order: two quick taps in one chat must not
    race for the same conversation state. A chat's lock is dropped when nobody waits."""

    def __init__(self) -> None:
        self._locks: dict[Chat, asyncio.Lock] = {}
        self._waiting: dict[Chat, int] = {}

    @asynccontextmanager
    async def one_at_a_time(self, chat: Chat) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._waiting[chat] = self._waiting.get(chat, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[chat] -= 1
            if not self._waiting[chat]:
                del self._waiting[chat], self._locks[chat]
