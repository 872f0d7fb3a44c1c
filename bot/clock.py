"""The one real clock. Everything below the shell takes `now` (or a clock) as an argument,
so tests and `regulars simulate` can run on a simulated one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
