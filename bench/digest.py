"""The owner's digest with its chart on a big shop: 100,000 clients and 1,000,000 visits.

    .venv/bin/python -m bench.digest [--sizes 10000,100000] [--keep DIR]
    .venv/bin/python -m bench.digest --run-only DB      # one digest, in this process

Per size N (clients), a SQLite file with the app's schema (the migrations, so every index
is the app's), the demo barbershop, N clients and 10×N visits over three years up to D =
Monday 23 November 2026 (85 % completed, 8 % cancelled, 7 % no-shows), feedback on a fifth
of the completed visits and win-backs (sent or held out) for a tenth of the clients,
written with sqlite3's executemany in the formats SQLAlchemy writes (naive UTC, money in
kopecks). Then, in a fresh process (`--run-only`), the digest as of D: the rows read, the
figures, the text and the PNG chart — timed from before the first query to the chart's
bytes, with the process's peak memory (ru_maxrss, imports included) and the peak of the
Python allocations during the digest (tracemalloc, run a second time: it slows the code).
The goal: ≤ 2 s and ≤ 300 MB at 1,000,000 visits. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.composition import build_core
from scheduler.digest import digest_text, owner_digest
from scheduler.digest_chart import weekly_chart
from storage.db import sqlite_url_for
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "business.example.toml"
AS_OF = date(2026, 11, 23)
END = datetime(2026, 11, 22, 21, 0, tzinfo=UTC)  # D's midnight in Moscow
YEARS = 3
VISITS_PER_CLIENT = 10
GOAL_SECONDS, GOAL_MB = 2.0, 300


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, clients: int, seed_value: int = 7) -> None:
    """N clients with their visits, feedback and win-backs, straight into SQLite."""
    asyncio.run(upgrade(sqlite_url_for(str(path))))
    asyncio.run(_catalog(path))  # the shop's masters and services, as the app syncs them
    rng = random.Random(seed_value)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    masters = [row[0] for row in db.execute("SELECT id FROM staff")]
    services = [(row[0], row[1]) for row in db.execute("SELECT id, price FROM service")]
    span = YEARS * 365 * 24 * 3600
    start = END - timedelta(seconds=span)
    db.executemany(
        "INSERT INTO client (id, name, phone, locale, source, staff_notes, preference_note,"
        " holdout, created_at, completed_visits, phone_verified) "
        "VALUES (?, ?, ?, 'ru', 'import', '', '', ?, ?, 0, 1)",
        (
            (n, f"Клиент {n}", f"+7900{n:07d}", n % 10 == 0, _stamp(start))
            for n in range(1, clients + 1)
        ),
    )
    visits, feedback, outbox = [], [], []
    for visit_id in range(1, clients * VISITS_PER_CLIENT + 1):
        client = rng.randint(1, clients)
        service, price = rng.choice(services)
        at = start + timedelta(seconds=rng.randrange(span))
        at = at.replace(minute=0, second=0, microsecond=0)
        roll = rng.random()
        status = "completed" if roll < 0.85 else "cancelled" if roll < 0.93 else "no_show"
        visits.append(
            (
                visit_id,
                client,
                rng.choice(masters),
                service,
                _stamp(at),
                _stamp(at + timedelta(hours=1)),
                status,
                price,
                _stamp(at - timedelta(days=3)),
            )
        )
        if status == "completed" and rng.random() < 0.2:
            feedback.append(_feedback(rng, visit_id, at))
    for client in rng.sample(range(1, clients + 1), clients // 10):
        due = END - timedelta(days=rng.randrange(1, 365))
        status = "held_out" if client % 10 == 0 else "sent"
        outbox.append(("winback", client, _stamp(due), f"winback:1:client:{client}", status))
    db.executemany(
        "INSERT INTO visit (id, client_id, master_id, service_id, starts_at, ends_at, status,"
        " price, source, created_at, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'import', ?, '')",
        visits,
    )
    db.executemany(
        "INSERT INTO feedback (visit_id, rating, comment, status, resolution, created_at,"
        " resolved_at) VALUES (?, ?, '', ?, '', ?, ?)",
        feedback,
    )
    db.executemany(
        "INSERT INTO outbox (kind, client_id, due_at, dedupe_key, status, attempts, payload,"
        " created_at) VALUES (?, ?, ?, ?, ?, 0, '{}', ?)",
        [(*row[:4], row[4], row[2]) for row in outbox],
    )
    # What refresh_client_stats keeps: the last visit and a predicted next one (28 days on).
    db.execute(
        "UPDATE client SET last_visit_at = v.last, next_visit_due = date(v.last, '+28 days')"
        " FROM (SELECT client_id, max(starts_at) AS last FROM visit"
        "       WHERE status = 'completed' GROUP BY client_id) AS v WHERE v.client_id = client.id"
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def _feedback(rng: random.Random, visit_id: int, at: datetime) -> tuple[object, ...]:
    """A rating 4 hours after the visit; a complaint is resolved a day later, but those of
    the last month, a third of which are still open."""
    rating = rng.choice((5, 5, 5, 4, 4, 3, 2))
    given = at + timedelta(hours=4)
    if rating > 3:
        return (visit_id, rating, "ok", _stamp(given), None)
    if END - given < timedelta(days=30) and rng.random() < 1 / 3:
        return (visit_id, rating, "open", _stamp(given), None)
    return (visit_id, rating, "resolved", _stamp(given), _stamp(given + timedelta(days=1)))


async def _catalog(path: Path) -> None:
    core = await build_core(database_url=sqlite_url_for(str(path)), config_path=CONFIG)
    await core.close()


async def _digest(path: Path) -> tuple[float, int, int]:
    """One digest with its chart: seconds, text length, PNG bytes."""
    core = await build_core(
        database_url=sqlite_url_for(str(path)), config_path=CONFIG, migrate=False
    )
    tr = core.deps.translators[core.config.business.default_locale]
    try:
        began = time.perf_counter()
        async with core.db.reading() as session:
            report = await owner_digest(
                session=session, config=core.config, catalog=core.deps.catalog, as_of=AS_OF
            )
        text = digest_text(report, tr)
        chart = weekly_chart(report.weeks, tr)
        return time.perf_counter() - began, len(text), len(chart)
    finally:
        await core.close()


def run_only(path: Path) -> None:
    """Prints `seconds rss_mb traced_mb`: the first run timed, a second one traced."""
    with path.open("rb") as handle:  # into the page cache, as a running bot's file would be
        while handle.read(1 << 20):
            pass
    seconds, _, png = asyncio.run(_digest(path))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    asyncio.run(_digest(path))
    traced_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"{seconds:.3f} {rss_mb:.1f} {traced_mb:.1f} {png}")


def measure(path: Path) -> tuple[float, float, float]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.digest", "--run-only", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds, rss, traced, _ = result.stdout.split()
    return float(seconds), float(rss), float(traced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="clients per run")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the databases here")
    parser.add_argument("--run-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_only:
        run_only(args.run_only)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-digest-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for clients in (int(size) for size in args.sizes.split(",")):
        path = folder / f"digest-{clients}.db"
        if not path.exists():
            began = time.perf_counter()
            seed(path, clients)
            print(f"seeded {clients:,} clients, {clients * VISITS_PER_CLIENT:,} visits "
                  f"in {time.perf_counter() - began:.1f} s")  # fmt: skip
        results[clients] = measure(path)
        seconds, rss, traced = results[clients]
        print(
            f"{clients * VISITS_PER_CLIENT:>9,} visits: digest + chart {seconds:.2f} s, "
            f"peak RSS {rss:.0f} MB (imports included), Python allocations {traced:.0f} MB"
        )
        if not args.keep:
            path.unlink()
    sizes = sorted(results)
    if len(sizes) > 1:
        small, big = results[sizes[0]], results[sizes[-1]]
        print(
            f"growth {sizes[0] * VISITS_PER_CLIENT:,} → {sizes[-1] * VISITS_PER_CLIENT:,} "
            f"visits: time ×{big[0] / small[0]:.1f}, peak RSS ×{big[1] / small[1]:.1f}"
        )
    seconds, rss, _ = results[sizes[-1]]
    met = seconds <= GOAL_SECONDS and rss <= GOAL_MB
    print(
        f"goal (≤ {GOAL_SECONDS:.0f} s, ≤ {GOAL_MB} MB at {sizes[-1] * VISITS_PER_CLIENT:,} "
        f"visits): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
