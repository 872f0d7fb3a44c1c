"""The owner's digest with its chart on a big shop: 100,000 clients and 1,000,000 visits.

    .venv/bin/python -m bench.digest [--sizes 10000,100000] [--plain-at 10000] [--keep DIR]
        [--postgres URL|none]
    .venv/bin/python -m bench.digest --run-only DB      # one digest, in this process

Per size N (clients), a SQLite file with the app's schema (the migrations, so every index
is the app's), the demo barbershop, N clients and 10×N visits over three years up to D =
Monday 23 November 2026 (85 % completed, 8 % cancelled, 7 % no-shows), feedback on a fifth
of the completed visits and win-backs (sent or held out) for a tenth of the clients,
written with sqlite3's executemany in the formats SQLAlchemy writes (naive UTC, money in
kopecks), in a process of its own. Then, in a fresh process (`--run-only`), the digest as
of D: the SQL tallies, the figures, the text and the PNG chart — timed from before the
first query to the chart's bytes (wall time, and the CPU time of the process's threads,
which the other work on a shared machine does not inflate), with the process's peak
memory (ru_maxrss, imports included) and the peak of the Python allocations during the
digest (tracemalloc, run a second time: it slows the code).

The baseline, at the sizes of `--plain-at` (clients; the smallest by default): the same
digest computed the plain way (testing/digest_reference.py: every visit, client, rating
and win-back read as rows, the figures computed from them), in a fresh process too, its
time and memory, the ratio, and whether every figure, the chart's points and the masters'
lines are the same.

With a PostgreSQL server (`--postgres URL`, or `REGULARS_BENCH_POSTGRES` /
`REGULARS_TEST_POSTGRES`; bench/postgres.py), each size's rows are copied from the SQLite
file into a fresh database there (read into the OS page cache with pg_prewarm, as the file
is) and the same digest, and the plain computation, run on it in a fresh process too; a
table puts both back-ends side by side. The process's memory is the bot's; the server's is
not in it.

The goal: ≤ 2 s and ≤ 300 MB at 1,000,000 visits (stated for SQLite; PostgreSQL's figures
are shown against it). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench import postgres
from bot.composition import Core, build_core
from scheduler.digest import OwnerDigest, digest_text, owner_digest
from scheduler.digest_chart import weekly_chart
from storage.db import sqlite_url_for
from storage.migrate import upgrade
from testing.digest_reference import plain_owner_digest

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
    taken: set[tuple[int, datetime]] = set()
    for visit_id in range(1, clients * VISITS_PER_CLIENT + 1):
        client = rng.randint(1, clients)
        service, price = rng.choice(services)
        at = start + timedelta(seconds=rng.randrange(span))
        at = at.replace(minute=0, second=0, microsecond=0)
        # A client is in one chair at a time (the digest's SQL relies on it): a second
        # visit drawn at the same hour moves to the next free one.
        while (client, at) in taken:
            at += timedelta(hours=1)
        taken.add((client, at))
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
    # What refresh_client_stats keeps: the first and the last visit, a predicted next one
    # (28 days on).
    db.execute(
        "UPDATE client SET first_visit_at = v.first, last_visit_at = v.last,"
        " next_visit_due = date(v.last, '+28 days')"
        " FROM (SELECT client_id, min(starts_at) AS first, max(starts_at) AS last FROM visit"
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


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (aiosqlite's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _database_url(target: str) -> str:
    """A child's database: a SQLite file's path, or a PostgreSQL URL."""
    return target if "://" in target else sqlite_url_for(target)


async def _core(target: str) -> Core:
    return await build_core(database_url=_database_url(target), config_path=CONFIG, migrate=False)


async def _report(core: Core, *, plain: bool) -> OwnerDigest:
    if plain:
        return await plain_owner_digest(core, AS_OF)
    async with core.db.reading() as session:
        return await owner_digest(
            session=session, config=core.config, catalog=core.deps.catalog, as_of=AS_OF
        )


async def _digest(target: str, *, plain: bool = False) -> tuple[float, float, int, int]:
    """One digest with its chart: wall seconds, CPU seconds, text length, PNG bytes."""
    core = await _core(target)
    tr = core.deps.translators[core.config.business.default_locale]
    try:
        began, cpu = time.perf_counter(), _cpu()
        report = await _report(core, plain=plain)
        text = digest_text(report, tr)
        chart = weekly_chart(report.weeks, tr)
        return time.perf_counter() - began, _cpu() - cpu, len(text), len(chart)
    finally:
        await core.close()


def _warm(target: str) -> None:
    """Into the OS page cache, as a running bot's database would be (the file, or every
    table and index of the PostgreSQL database)."""
    if "://" in target:
        asyncio.run(postgres.prewarm(target))
        return
    with Path(target).open("rb") as handle:
        while handle.read(1 << 20):
            pass


def run_only(target: str) -> None:
    """Prints `seconds cpu rss_mb traced_mb png`: the first run timed, a second one traced."""
    _warm(target)
    seconds, cpu, _, png = asyncio.run(_digest(target))
    rss_mb = _peak_rss_mb()
    tracemalloc.start()
    asyncio.run(_digest(target))
    traced_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"{seconds:.3f} {cpu:.3f} {rss_mb:.1f} {traced_mb:.1f} {png}")


async def _same_figures(target: str) -> bool:
    core = await _core(target)
    try:
        fast, plain = await _report(core, plain=False), await _report(core, plain=True)
    finally:
        await core.close()
    return (
        fast.digest.as_json() == plain.digest.as_json()
        and fast.digest == plain.digest
        and fast.digest.open_complaints == plain.digest.open_complaints
        and (fast.weeks, fast.fewer_returns, fast.pay)
        == (plain.weeks, plain.fewer_returns, plain.pay)
    )


def plain_only(target: str) -> None:
    """Prints `seconds cpu rss_mb same`: the plain computation timed, then compared."""
    _warm(target)
    seconds, cpu, _, _ = asyncio.run(_digest(target, plain=True))
    rss_mb = _peak_rss_mb()
    print(f"{seconds:.3f} {cpu:.3f} {rss_mb:.1f} {int(asyncio.run(_same_figures(target)))}")


def _in_a_process(*args: str) -> list[str]:
    """This module with `args` in a fresh process (its peak memory is its own), its output."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.digest", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return result.stdout.split()


@dataclass
class Result:
    """One back-end's digest at one size."""

    seconds: float
    cpu: float
    rss: float
    traced: float
    plain: tuple[float, float, float, bool] | None = None  # seconds, CPU, RSS, same figures

    def line(self, visits: int, backend: str) -> str:
        text = (
            f"{visits:>9,} visits, {backend}: digest + chart {self.seconds:.2f} s "
            f"(CPU {self.cpu:.2f} s), peak RSS {self.rss:.0f} MB (imports included), "
            f"Python allocations {self.traced:.0f} MB"
        )
        if self.plain is not None:
            plain, plain_cpu, plain_rss, same = self.plain
            text += (
                f"\n{'':>9}  plain computation (every row read): {plain:.2f} s "
                f"(CPU {plain_cpu:.2f} s), peak RSS {plain_rss:.0f} MB; the SQL tallies "
                f"×{plain / self.seconds:.1f} faster; "
                + ("the same figures" if same else "THE FIGURES DIFFER")
            )
        return text


def _measure(target: str, *, plain: bool) -> Result:
    seconds, cpu, rss, traced, _ = (float(v) for v in _in_a_process("--run-only", target))
    result = Result(seconds, cpu, rss, traced)
    if plain:
        p_seconds, p_cpu, p_rss, same = (float(v) for v in _in_a_process("--plain-only", target))
        result.plain = (p_seconds, p_cpu, p_rss, bool(same))
    return result


async def _on_postgres(server: str, path: Path, *, plain: bool) -> tuple[Result, float]:
    """The same rows in a fresh PostgreSQL database, the same measurement; the database's
    size in MB."""
    async with postgres.fresh_database(server) as url:
        await postgres.copy_in_a_process(path, url)
        megabytes = await postgres.database_megabytes(url)
        return await asyncio.to_thread(_measure, url, plain=plain), megabytes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="clients per run")
    parser.add_argument(
        "--plain-at", help="clients: the sizes to run the plain computation at (the smallest)"
    )
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the databases here")
    postgres.add_argument(parser)
    parser.add_argument("--run-only", help=argparse.SUPPRESS)
    parser.add_argument("--plain-only", help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_only:
        run_only(args.run_only)
        return
    if args.plain_only:
        plain_only(args.plain_only)
        return
    if args.seed_only:
        seed(Path(args.seed_only[0]), int(args.seed_only[1]))
        return
    server = postgres.server(args.postgres)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    plain_at = (
        {sizes[0]} if args.plain_at is None else {int(n) for n in args.plain_at.split(",") if n}
    )
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-digest-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {_load()}")
    if server is not None:
        print(f"PostgreSQL: {postgres.shown(server)} (a fresh database per size)")
    results: dict[int, dict[str, Result]] = {}
    for clients in sizes:
        path = folder / f"digest-{clients}.db"
        visits = clients * VISITS_PER_CLIENT
        if not path.exists():
            began = time.perf_counter()
            # In a process of its own: Linux counts the parent's memory at the fork in the
            # child's peak, and the rows written here are hundreds of MB.
            _in_a_process("--seed-only", str(path), str(clients))
            print(f"seeded {clients:,} clients, {visits:,} visits "
                  f"in {time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        plain = clients in plain_at
        results[clients] = {"SQLite": _measure(str(path), plain=plain)}
        print(results[clients]["SQLite"].line(visits, "SQLite"), flush=True)
        if server is not None:
            on_pg, megabytes = asyncio.run(_on_postgres(server, path, plain=plain))
            results[clients]["PostgreSQL"] = on_pg
            print(f"  PostgreSQL database: {megabytes:,.0f} MB")
            print(on_pg.line(visits, "PostgreSQL"), flush=True)
        if not args.keep:  # with its -wal and -shm files
            for leftover in folder.glob(f"{path.name}*"):
                leftover.unlink()
    if not args.keep:
        folder.rmdir()
    backends = list(results[sizes[0]])
    if len(sizes) > 1:
        for backend in backends:
            small, big = results[sizes[0]][backend], results[sizes[-1]][backend]
            print(
                f"growth {sizes[0] * VISITS_PER_CLIENT:,} → {sizes[-1] * VISITS_PER_CLIENT:,} "
                f"visits, {backend}: time ×{big.seconds / small.seconds:.1f}, "
                f"peak RSS ×{big.rss / small.rss:.1f}"
            )
    rows: list[tuple[str, list[str]]] = []
    for clients in sizes:
        rows.append(
            (
                f"{clients * VISITS_PER_CLIENT:,} visits",
                [
                    f"{r.seconds:.2f} s (CPU {r.cpu:.2f} s), {r.rss:.0f} MB"
                    for r in results[clients].values()
                ],
            )
        )
        if clients in plain_at:
            rows.append(
                (
                    "  plain computation",
                    [
                        f"{r.plain[0]:.2f} s, ×{r.plain[0] / r.seconds:.1f}, "
                        + ("same figures" if r.plain[3] else "FIGURES DIFFER")
                        for r in results[clients].values()
                        if r.plain is not None
                    ],
                )
            )
    last = results[sizes[-1]]
    goal = (
        f"goal ≤ {GOAL_SECONDS:.0f} s, ≤ {GOAL_MB} MB (at {sizes[-1] * VISITS_PER_CLIENT:,} visits)"
    )
    rows.append(
        (
            goal,
            [
                postgres.verdict(r.seconds <= GOAL_SECONDS and r.rss <= GOAL_MB)
                for r in last.values()
            ],
        )
    )
    postgres.side_by_side("the owner's digest with its chart, in a fresh process", rows, backends)
    sqlite_last = last["SQLite"]
    met = sqlite_last.seconds <= GOAL_SECONDS and sqlite_last.rss <= GOAL_MB
    print(
        f"goal (≤ {GOAL_SECONDS:.0f} s, ≤ {GOAL_MB} MB at {sizes[-1] * VISITS_PER_CLIENT:,} "
        f"visits): {sqlite_last.seconds:.2f} s, {sqlite_last.rss:.0f} MB — "
        f"{'met' if met else 'NOT met'}"
    )
    print(f"load average after: {_load()} (2 cores, shared)")


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    main()
