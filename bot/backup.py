"""`regulars backup` and `regulars restore`, and the daily automatic backup of
`regulars run`: consistent snapshots of a live SQLite database (SQLite's online backup
API copies it page by page while the bot goes on writing)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

from bot.app import sole_runner, sqlite_file
from bot.config import StartupError

log = logging.getLogger(__name__)

BACKUP_PREFIX = "regulars-"
CHECK_EVERY = timedelta(hours=1)


class BackupError(Exception):
    """What keeps a backup or a restore from happening, in one line for the operator."""


def _database(database_url: str) -> Path:
    path = sqlite_file(database_url)
    if path is None:
        raise BackupError(
            "backup and restore work on a SQLite database; for PostgreSQL use pg_dump and "
            'pg_restore (README: "Moving to PostgreSQL")'
        )
    return path


def backup(database_url: str, target: Path) -> Path:
    """A consistent copy of the live database at `target` (written beside it, then moved
    into place, so a half-written file never carries the name)."""
    source = _database(database_url)
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    target = target.resolve()
    if target == source:
        raise BackupError("the backup file cannot be the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with sqlite3.connect(source) as live, sqlite3.connect(partial) as copy:
        live.backup(copy)
    live.close()
    copy.close()
    os.replace(partial, target)
    return target


def restore(database_url: str, source: Path) -> Path:
    """Put the backup `source` in place of the database; refused while a `regulars run`
    uses it (the same lock the bot holds) or when `source` is not a Regulars database."""
    target = _database(database_url)
    _check_backup(source)
    try:
        with sole_runner(database_url):
            partial = target.with_name(target.name + ".restoring")
            with sqlite3.connect(source) as backup_db, sqlite3.connect(partial) as copy:
                backup_db.backup(copy)
            backup_db.close()
            copy.close()
            for suffix in ("-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            os.replace(partial, target)
    except StartupError:
        raise BackupError(
            f"a running bot uses {target}: stop `regulars run` first, then restore"
        ) from None
    return target


def _check_backup(source: Path) -> None:
    if not source.is_file():
        raise BackupError(f"there is no backup file at {source}")
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
            found = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                "AND name IN ('client', 'visit', 'outbox')"
            ).fetchone()
        db.close()
    except sqlite3.DatabaseError:
        found = None
    if not found or found[0] != 3:
        raise BackupError(f"{source} is not a Regulars database backup")


def rotate(folder: Path, keep: int) -> list[Path]:
    """Remove the oldest daily backups beyond `keep`; returns what was removed."""
    daily = sorted(folder.glob(f"{BACKUP_PREFIX}*.db"))
    removed = daily[: max(0, len(daily) - keep)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def daily_backup(database_url: str, folder: Path, keep: int, now: datetime) -> Path | None:
    """Today's backup (UTC date in the name), unless it exists; then the rotation."""
    target = folder / f"{BACKUP_PREFIX}{now:%Y-%m-%d}.db"
    if target.exists():
        return None
    made = backup(database_url, target)
    rotate(folder, keep)
    return made


async def keep_backing_up(
    database_url: str,
    folder: Path,
    keep: int,
    *,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
) -> None:
    """`regulars run`'s daily backup: checked every hour, so a bot that was down at night
    still makes the day's copy; a failure is logged and tried again in an hour."""
    while not stop.is_set():
        try:
            made = await asyncio.to_thread(daily_backup, database_url, folder, keep, clock())
            if made is not None:
                log.info("daily backup written to %s", made)
        except (BackupError, OSError, sqlite3.Error) as error:
            log.error("daily backup failed: %s", error)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CHECK_EVERY.total_seconds())
