"""Counting (and timing) the SQL statements a benchmark sends, by their first word."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import Database
from storage.prepared import Prepared


@dataclass
class SqlCounter:
    """Statements sent to the database while an update is fed, by their first word (BEGIN, SELECT,
    …), and — with `timed` — the wall time of each distinct statement, from before its
    execute to after its rows were fetched (a trip to a worker thread included)."""

    timed: bool = False
    recording: bool = False
    total: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _started: list[float] = field(default_factory=list)
    _stop: Callable[[], None] | None = None

    def attach(self, target: Database | AsyncEngine) -> None:
        """Count what SQLAlchemy sends on this engine, and the prepared statements
        (`storage.prepared`) run on its connections."""
        engine = target.engine if isinstance(target, Database) else target
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        if self.timed:
            event.listen(engine.sync_engine, "after_cursor_execute", self._after)
        pool = engine.sync_engine.pool

        def prepared(connection: Connection, statement: str, seconds: float) -> None:
            if self.recording and connection.engine.pool is pool:
                self.total += 1
                self.kinds[statement.lstrip().split(None, 1)[0].upper()] += 1
                if self.timed:
                    self.times[statement].append(seconds)

        self._stop = Prepared.observe(prepared)

    def detach(self) -> None:
        """Stop counting the prepared statements."""
        if self._stop is not None:
            self._stop()
            self._stop = None

    def _before(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if not self.recording:
            return
        self.total += 1
        self.kinds[statement.lstrip().split(None, 1)[0].upper()] += 1
        if self.timed:
            self._started.append(time.perf_counter())

    def _after(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if self.recording and self._started:
            self.times[statement].append(time.perf_counter() - self._started.pop())

    def print_top(self, count: int, busy: float, updates: int) -> None:
        ranked = sorted(self.times.items(), key=lambda item: -sum(item[1]))
        spent = sum(sum(times) for times in self.times.values())
        print(
            f"  SQL statements (Regulars): {spent:.2f} s in execute+fetch, "
            f"{spent / busy:.1%} of the time inside feed_update; the top {count}:"
        )
        for statement, times in ranked[:count]:
            text = " ".join(statement.split())
            print(
                f"    {sum(times):6.2f} s {sum(times) / busy:6.1%}  {len(times) / updates:4.2f}"
                f"/update  mean {statistics.fmean(times) * 1000:6.2f} ms  {text[:150]}"
            )
