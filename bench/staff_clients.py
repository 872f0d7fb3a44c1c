"""Staff's client tools on a big shop: /client by name and by phone, /segments and a
/broadcast preview to everyone, against /today in the same run.

    .venv/bin/python -m bench.staff_clients [--sizes 10000,100000] [--keep DIR]

Per size N (clients), the SQLite file of bench/digest.py (N clients, 10×N visits over three
years, feedback, win-backs), where 60 % of the clients agreed to offers and every client has
a Telegram chat. The owner (`regulars chat --as artem`, the terminal) then sends each
command 5 times through the real conversations; the median answer time is printed with the
ratio to /today's. The goal: every answer ≤ 1 s at 10,000 clients (a big barbershop). Not
part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.digest import CONFIG, END, _stamp, seed
from bot.composition import build_core
from handlers.conversation import CONSOLE_STAFF
from storage.db import sqlite_url_for
from testing.chat import ChatClient, Clock, utc

GOAL_SECONDS = 1.0
GOAL_AT = 10_000
REPEAT = 5
NOW = utc(2026, 11, 23, 7, 0)  # Monday 10:00 in Moscow: offers may go at once


def prepare(path: Path, clients: int) -> None:
    seed(path, clients)
    db = sqlite3.connect(path)
    db.execute("UPDATE client SET consent_at = ?", (_stamp(END),))
    db.execute("UPDATE client SET marketing_opt_in_at = ? WHERE id % 10 < 6", (_stamp(END),))
    db.executemany(
        "INSERT INTO client_identity (client_id, channel, external_id, verified, created_at)"
        " VALUES (?, 'telegram', ?, 1, ?)",
        ((n, str(100_000_000 + n), _stamp(END)) for n in range(1, clients + 1)),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def _timed(owner: ChatClient, steps: list[str]) -> float:
    """The median of REPEAT runs of these inputs: typed text, or "click:<button label>"."""
    times = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        for step in steps:
            if step.startswith("click:"):
                await owner.click(step.removeprefix("click:"))
            else:
                await owner.send(step)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def measure(path: Path, clients: int) -> dict[str, float]:
    core = await build_core(
        database_url=sqlite_url_for(str(path)), config_path=CONFIG, migrate=False
    )
    try:
        owner = ChatClient(
            core.conversations,
            Clock(NOW),
            channel="console",
            external_id=CONSOLE_STAFF + "artem",
            language="en",
        )
        await owner.send("/start")
        number = clients // 2 + 7
        return {
            "/today (baseline)": await _timed(owner, ["/today"]),
            f"/client Клиент {number} (name)": await _timed(owner, [f"/client Клиент {number}"]),
            f"/client +7900{number:07d} (card)": await _timed(
                owner, [f"/client +7900{number:07d}"]
            ),
            "/segments": await _timed(owner, ["/segments"]),
            "/broadcast preview, everyone": await _timed(
                owner,
                ["/broadcast", "click:Все, кто согласен на предложения", "Hello from the bench"],
            ),
        }
    finally:
        await core.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="clients per run")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the databases here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-staff-clients-"))
    folder.mkdir(parents=True, exist_ok=True)
    met = True
    for clients in (int(size) for size in args.sizes.split(",")):
        path = folder / f"staff-clients-{clients}.db"
        if not path.exists():
            began = time.perf_counter()
            prepare(path, clients)
            print(f"{clients:,} clients: database written in {time.perf_counter() - began:.0f} s")
        results = asyncio.run(measure(path, clients))
        baseline = results["/today (baseline)"]
        print(f"{clients:,} clients, {clients * 10:,} visits (median of {REPEAT}):")
        for name, seconds in results.items():
            print(f"  {name:<40} {seconds * 1000:8.0f} ms   ×{seconds / baseline:6.1f} /today")
        if clients == GOAL_AT:
            worst = max(results.values())
            met = worst <= GOAL_SECONDS
            print(
                f"  goal: every answer ≤ {GOAL_SECONDS:.0f} s at {GOAL_AT:,} clients: "
                + ("met" if met else "NOT met")
            )
    if not args.keep:
        for path in folder.glob("*.db"):
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
