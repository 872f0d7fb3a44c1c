"""The same shop on both back-ends: one import into a SQLite file and into PostgreSQL gives
the same owner's digest (`regulars digest --json`), figure for figure. Runs in the
PostgreSQL pass of the suite (`make test-postgres`); the SQLite pass has nothing to compare
with."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from storage.db import sqlite_url_for
from testing.databases import new_database_url, postgres_server
from tests.test_import import CLIENTS, VISITS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "business.example.toml")

pytestmark = pytest.mark.skipif(
    postgres_server() is None, reason="needs PostgreSQL (REGULARS_TEST_POSTGRES)"
)


def _digest_after_import(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    common = ["--database-url", url, "--config", CONFIG]
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert main(["import", *common, "--clients", str(CLIENTS), "--visits", str(VISITS)]) == 0
    capsys.readouterr()
    figures: dict[str, object] = {}
    for as_of in ("2026-06-15", "2026-09-14", "2026-10-12", "2026-11-16"):
        assert main(["digest", *common, "--as-of", as_of, "--json"]) == 0
        figures[as_of] = json.loads(capsys.readouterr().out)
    return figures


def test_one_import_gives_the_same_digest_on_sqlite_and_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    on_sqlite = _digest_after_import(sqlite_url_for(str(tmp_path / "shop.db")), capsys)
    with asyncio.Runner() as runner:
        database = new_database_url(tmp_path)
        url = runner.run(database.__aenter__())
        try:
            on_postgres = _digest_after_import(url, capsys)
        finally:
            runner.run(database.__aexit__(None, None, None))

    assert on_postgres == on_sqlite
    # Weeks with visits in them: the comparison is of figures, not of zeros.
    visits = [week["visits_completed"] for week in on_sqlite.values()]  # type: ignore[index]
    assert all(visits), visits
