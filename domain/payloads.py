"""Button payloads: short, versioned, self-contained strings shared by every channel.

`1:tm:n3.2:29385120` — version 1, action "tm" (a time was picked), its arguments. A payload
carries everything its action needs, so a button from an old message still means exactly
what it said; the action then checks that it still makes sense (slot free, visit active).
Telegram allows 64 bytes of callback data; WhatsApp ids allow more; we keep to 64.
"""

from __future__ import annotations

VERSION = "1"
MAX_BYTES = 64


class BadPayload(ValueError):
    """A payload this version of the bot cannot read (another version, or garbage)."""


def pack(action: str, *args: str | int | None) -> str:
    if any(arg is None for arg in args):
        raise ValueError(f"an argument of {action!r} is missing: {args!r}")
    parts = [VERSION, action, *(str(arg) for arg in args)]
    if any(":" in part for part in parts[1:]):
        raise ValueError(f"':' inside a payload part: {parts!r}")
    payload = ":".join(parts)
    if len(payload.encode()) > MAX_BYTES:
        raise ValueError(f"payload longer than {MAX_BYTES} bytes: {payload!r}")
    return payload


def unpack(payload: str) -> tuple[str, list[str]]:
    parts = payload.split(":")
    if len(parts) < 2 or parts[0] != VERSION or not parts[1]:
        raise BadPayload(payload[:MAX_BYTES])
    return parts[1], parts[2:]


LARGEST = 2**53  # ids, minutes since 1970: anything beyond is not ours


def number(text: str) -> int:
    """A number inside a payload: plain ASCII digits below LARGEST, else BadPayload. A
    forged button must get "out of date", never reach the database as a 100-digit id."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(LARGEST)):
        raise BadPayload(text[:MAX_BYTES])
    value = int(text)
    if value >= LARGEST:
        raise BadPayload(text[:MAX_BYTES])
    return value


def int_arg(args: list[str], index: int) -> int:
    if index >= len(args):
        raise BadPayload(":".join(args)[:MAX_BYTES])
    return number(args[index])
