"""The benchmarks' PostgreSQL side (bench/postgres.py) at a tiny size, so it cannot rot:
each benchmark builds its data set on both back-ends, measures both and prints a table with
a SQLite and a PostgreSQL column holding figures. Timing is not checked here (bench/ is
where speed is measured); what is checked is that both columns are there, hold numbers and
agree where the work is the same. Needs a server: `REGULARS_TEST_POSTGRES` (`make
test-postgres`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testing.databases import postgres_server

SERVER = postgres_server()
pytestmark = pytest.mark.skipif(
    SERVER is None,
    reason="the benchmarks' PostgreSQL path needs a server: set REGULARS_TEST_POSTGRES "
    "(make test-postgres starts one)",
)
NUMBER = re.compile(r"\d[\d,]*(\.\d+)?")


def table(output: str, title: str) -> dict[str, list[str]]:
    """The side-by-side table under `title`: each row's label and its cells."""
    assert title in output, output[-3000:]
    lines = output[output.index(title) :].splitlines()[1:]
    header = re.split(r"\s{2,}", lines[0].strip())
    assert header == ["SQLite", "PostgreSQL"], lines[0]
    rows = {}
    for line in lines[2:]:
        if not line.startswith("  ") or line.strip().startswith("("):
            break
        label, *cells = re.split(r"\s{2,}", line.strip())
        rows[label] = cells
    return rows


def numbers(cells: list[str]) -> list[float]:
    found = []
    for cell in cells:
        match = NUMBER.search(cell)
        assert match, f"no figure in {cell!r}"
        found.append(float(match.group().replace(",", "")))
    return found


async def test_updates_on_both_backends(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import updates  # here: aiogram's import is seconds, a skipped run spares them

    tiny = "--updates 40 --clients 3 --concurrent 3 --db-clients 40 --months 3 --batch 2"
    argv = [*tiny.split(), "--batch-updates", "6", "--postgres", str(SERVER)]
    await updates.main(updates.parse_args(argv))
    rows = table(capsys.readouterr().out, "Regulars on both back-ends")
    sqlite_rate, pg_rate = numbers(rows["updates/s inside feed_update"])
    assert sqlite_rate > 0 and pg_rate > 0
    assert numbers(rows["updates (sequential)"]) == [40, 40]
    # The same people registered on each back-end and booked the same visits.
    sqlite_registered, pg_registered = numbers(rows["registered"])
    assert sqlite_registered == pg_registered >= 3
    booked = numbers(rows["visits booked (both modes)"])
    assert booked[0] == booked[1] > 0
    assert numbers(rows["stuck users"]) == [0, 0]
    goal = next(label for label in rows if label.startswith("ratio to echo"))
    assert all(cell.endswith(("met", "NOT met")) for cell in rows[goal])
    from storage.prepared import Prepared

    assert Prepared.observers == ()  # its counting stopped with it: later tests run uncounted


def test_planner_on_both_backends(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from bench import planner

    tiny = [
        "--sizes",
        "200",
        "--postgres-sizes",
        "200",
        "--workers",
        "1",
        "--baseline",
        "none",
        "--keep",
        str(tmp_path),
    ]
    planner.main([*tiny, "--postgres", str(SERVER)])
    rows = table(capfd.readouterr().out, "planner passes, a fresh process each")
    assert all(seconds > 0 for seconds in numbers(rows["200 clients: pass 1"]))
    assert all(seconds > 0 for seconds in numbers(rows["pass 2"]))
    sqlite_planned, pg_planned = numbers(rows["planned"])
    assert sqlite_planned == pg_planned > 0  # the same rows: the same offers and reminders
    assert all(megabytes > 0 for megabytes in numbers(rows["peak RSS"]))


def test_digest_on_both_backends(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from bench import digest

    digest.main(
        ["--sizes", "100", "--plain-at", "", "--keep", str(tmp_path), "--postgres", str(SERVER)]
    )
    rows = table(capfd.readouterr().out, "the owner's digest with its chart")
    assert all(seconds > 0 for seconds in numbers(rows["1,000 visits"]))
    goal = next(label for label in rows if label.startswith("goal"))
    assert all(cell in ("met", "NOT met") for cell in rows[goal])
