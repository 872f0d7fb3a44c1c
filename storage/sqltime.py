"""Date arithmetic SQLAlchemy does not render on SQLite: one construct, with its SQLite
and its PostgreSQL form side by side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage.types import UTCDateTime


class days_after(FunctionElement[datetime]):
    """`moment` plus a whole number of days, in SQL: `days_after(col(Client.last_visit_at),
    2)`. On SQLite the result has no fraction of a second, so it compares as a bound, not
    as an exact instant."""

    type = UTCDateTime()
    inherit_cache = True
    name = "days_after"

    def __init__(self, moment: Any, days: int) -> None:
        super().__init__(moment, literal(days))


@compiles(days_after, "sqlite")
def _days_after_sqlite(element: days_after, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    return (
        f"datetime({compiler.process(moment, **kw)}, "
        f"'+' || {compiler.process(days, **kw)} || ' days')"
    )


@compiles(days_after)
def _days_after_postgresql(element: days_after, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    moment_sql, days_sql = compiler.process(moment, **kw), compiler.process(days, **kw)
    return f"({moment_sql} + make_interval(days => {days_sql}))"


class iso_date(FunctionElement[str]):
    """A date column as text, YYYY-MM-DD (what `date.isoformat()` gives)."""

    type = String()
    inherit_cache = True
    name = "iso_date"


@compiles(iso_date, "sqlite")
def _iso_date_sqlite(element: iso_date, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = list(element.clauses)
    return f"CAST({compiler.process(day, **kw)} AS TEXT)"  # stored as YYYY-MM-DD


@compiles(iso_date)
def _iso_date_postgresql(element: iso_date, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = list(element.clauses)
    return f"to_char({compiler.process(day, **kw)}, 'YYYY-MM-DD')"
