"""The benchmarks' PostgreSQL side: which server, a fresh database on it holding the same
rows as a benchmark's SQLite file, and the table that puts both back-ends side by side.

The server comes from `--postgres URL` or, without it, `REGULARS_BENCH_POSTGRES`, else
`REGULARS_TEST_POSTGRES` (`.ci/postgres` starts a throwaway one and prints its URL); `--postgres
none` runs SQLite alone. Each run gets a database of its own on that server
(`regulars_bench_…`), dropped afterwards.

The data set is built once, by the benchmark's own builder, into its SQLite file, and copied
from there (`copy_sqlite_to_postgres`): the schema by the app's migrations, every table's
rows with COPY (asyncpg's `copy_records_to_table`) in foreign-key order, the secondary
indexes dropped for the load and made again after, the sequences moved past the copied ids,
then VACUUM ANALYZE, as autovacuum would have left a running database (PostgreSQL's
index-only scans need the visibility map). So both back-ends hold the same rows, ids
included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, closing, suppress
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  # the tables, for their foreign-key order
from storage.migrate import upgrade
from testing.databases import POSTGRES_ENV, new_postgres_database

ROOT = Path(__file__).resolve().parent.parent
BENCH_ENV = "REGULARS_BENCH_POSTGRES"
BACKENDS = ("SQLite", "PostgreSQL")
GOAL_NOTE = "the goals are SQLite's (issue 14); PostgreSQL's figures are shown against them"
ROWS_AT_A_TIME = 50_000  # read from SQLite, handed to COPY


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get(BENCH_ENV) or os.environ.get(POSTGRES_ENV) or None,
        help=f"also run on this PostgreSQL server, in a fresh database (default: ${BENCH_ENV}, "
        f"else ${POSTGRES_ENV}; 'none': SQLite only)",
    )


def server(value: str | None) -> str | None:
    """The server URL asked for, or None (SQLite only)."""
    if not value or value.strip().lower() == "none":
        return None
    return value


def shown(url: str) -> str:
    """The URL without its password, for the output."""
    return make_url(url).render_as_string(hide_password=True)


def fresh_database(server_url: str) -> AbstractAsyncContextManager[str]:
    """A new, empty database on the server (its URL), dropped afterwards."""
    return new_postgres_database(server_url, prefix="regulars_bench")


def dsn(url: str) -> str:
    """The URL asyncpg itself takes (no `+asyncpg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the copy --------------------------------------------------------------------------


def _converter(data_type: str) -> Callable[[Any], Any] | None:
    """How a value SQLite holds (as SQLAlchemy or the benchmarks wrote it) becomes the
    Python value asyncpg encodes for a column of this PostgreSQL type; None: as it is."""
    if data_type.startswith("timestamp"):
        return lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(v)
    if data_type == "date":
        return lambda v: v if isinstance(v, date) else date.fromisoformat(v)
    if data_type.startswith("time"):
        return lambda v: v if isinstance(v, time_of_day) else time_of_day.fromisoformat(v)
    if data_type == "boolean":
        return bool
    if data_type in ("character varying", "text", "json", "jsonb"):
        return lambda v: v if isinstance(v, str) else str(v)
    if data_type == "double precision":
        return float
    return None


def _rows(
    cursor: sqlite3.Cursor, converters: Sequence[Callable[[Any], Any] | None]
) -> Iterator[tuple[Any, ...]]:
    pairs = list(enumerate(converters))
    plain = all(c is None for c in converters)
    while batch := cursor.fetchmany(ROWS_AT_A_TIME):
        if plain:
            yield from batch
            continue
        for row in batch:
            yield tuple(
                value if value is None or convert is None else convert(value)
                for (_, convert), value in zip(pairs, row, strict=True)
            )


async def copy_sqlite_to_postgres(sqlite_path: Path, url: str, *, log: bool = True) -> float:
    """Fill the empty PostgreSQL database at `url` with the rows of the SQLite file (same
    app schema). Returns the seconds it took."""
    import asyncpg  # type: ignore[import-untyped]  # the PostgreSQL run only

    started = time.perf_counter()
    await upgrade(url)
    connection = await asyncpg.connect(dsn(url))
    try:
        columns: dict[str, list[tuple[str, str]]] = {}
        for row in await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            columns.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
        indexes = await connection.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS sql FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["name"]}"')
        # The rows are the app's, copied whole: the foreign keys hold already. Checking
        # them row by row needs the right to switch triggers off (a superuser, as on the
        # throwaway server); elsewhere they are checked.
        with suppress(asyncpg.PostgresError):
            await connection.execute("SET session_replication_role = replica")
        counts: dict[str, int] = {}
        with closing(sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)) as source:
            present = {
                row[0]: {c[1] for c in source.execute(f'PRAGMA table_info("{row[0]}")')}
                for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table in SQLModel.metadata.sorted_tables:
                if table.name not in present or table.name not in columns:
                    continue
                wanted = [(c, t) for c, t in columns[table.name] if c in present[table.name]]
                names = [c for c, _ in wanted]
                quoted = ", ".join(f'"{name}"' for name in names)
                cursor = source.execute(f'SELECT {quoted} FROM "{table.name}"')
                records = _rows(cursor, [_converter(t) for _, t in wanted])
                result = await connection.copy_records_to_table(
                    table.name, records=records, columns=names
                )
                counts[table.name] = int(result.split()[-1])
        await connection.execute("RESET session_replication_role")
        copied = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            await connection.execute(index["sql"])
        for row in await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'"
        ):
            table, column = row["table_name"], row["column_name"]
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
                f'coalesce(max("{column}"), 0) + 1, false) FROM "{table}"'
            )
        indexed = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    seconds = time.perf_counter() - started
    if log:
        biggest = sorted(counts.items(), key=lambda item: -item[1])[:4]
        rows = ", ".join(f"{count:,} {table}" for table, count in biggest if count)
        print(
            f"  PostgreSQL: copied from the SQLite file in {seconds:.1f} s ({rows}; COPY "
            f"{copied - started:.1f} s, indexes {indexed - copied:.1f} s, VACUUM ANALYZE "
            f"{started + seconds - indexed:.1f} s)",
            flush=True,
        )
    return seconds


async def copy_in_a_process(sqlite_path: Path, url: str) -> None:
    """`copy_sqlite_to_postgres` in a process of its own: Linux counts the parent's memory
    at a fork in the child's peak RSS, and the benchmarks measure their children's."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.postgres", str(sqlite_path), url, cwd=ROOT
    )
    if await process.wait():
        raise RuntimeError(f"copying {sqlite_path} to PostgreSQL failed")


async def prewarm(url: str) -> str:
    """Read every table and index of the database into the OS page cache (pg_prewarm's
    'read' mode), as the SQLite benchmarks read their file first; what was done, or why
    not."""
    import asyncpg

    connection = await asyncpg.connect(dsn(url))
    try:
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except asyncpg.PostgresError as error:
            return f"not warmed (pg_prewarm: {error.__class__.__name__})"
        started = time.perf_counter()
        blocks = await connection.fetchval(
            "SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')"
        )
        return (
            f"{int(blocks) * 8 / 1024:,.0f} MB read into the OS page cache in "
            f"{time.perf_counter() - started:.1f} s (pg_prewarm)"
        )
    finally:
        await connection.close()


async def database_megabytes(url: str) -> float:
    import asyncpg

    connection = await asyncpg.connect(dsn(url))
    try:
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    return int(size) / 2**20


# --- the side-by-side table ------------------------------------------------------------


def side_by_side(
    title: str, rows: Sequence[tuple[str, Sequence[str]]], backends: Sequence[str] = BACKENDS
) -> None:
    """A table: one row per figure, one column per back-end."""
    cells = [[label, *values] for label, values in rows]
    header = ["", *backends]
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header))]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if len(backends) > 1:
        print(f"  ({GOAL_NOTE})")


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


if __name__ == "__main__":  # python -m bench.postgres SQLITE_FILE DATABASE_URL
    asyncio.run(copy_sqlite_to_postgres(Path(sys.argv[1]), sys.argv[2]))
