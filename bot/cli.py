"""The `regulars` command line (`python -m bot` works too)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings, StartupError

if TYPE_CHECKING:
    from bot.composition import Core

EXIT_CONFIG = 2
# At DEBUG these log whole requests and statements: recipients' numbers, message texts,
# query values. LOG_LEVEL=DEBUG is for our own code; they stay at INFO.
CHATTY_LIBRARIES = ("pywa", "pywa_async", "aiosqlite", "httpcore")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="SQLite file (overrides DATABASE_URL)")
    common.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL)")
    common.add_argument("--config", help="business.toml (default: BUSINESS_CONFIG)")

    parser = argparse.ArgumentParser(
        prog="regulars", description="Booking and retention bot for small service businesses."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="the bot on every configured channel")
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="demo barbershop with 18 months of history, chat in the terminal",
    )
    demo.add_argument("--clients", type=int, default=300, help="synthetic clients (default 300)")
    chat = commands.add_parser("chat", parents=[common], help="talk to the bot in the terminal")
    who = chat.add_mutually_exclusive_group()
    who.add_argument("--phone", help="talk as the client with this phone number")
    who.add_argument("--new", action="store_true", help="talk as a new client (a fresh chat)")
    who.add_argument(
        "--as", dest="as_staff", metavar="KEY", help="talk as the master with this key (staff side)"
    )
    simulate = commands.add_parser(
        "simulate", parents=[common], help="preview what the bot will send (on a copy of the data)"
    )
    simulate.add_argument(
        "--from", dest="start", type=_date, help="from this local day's midnight (default: now)"
    )
    simulate.add_argument("--days", type=_days, default=7, help="how many days (default 7)")
    simulate.add_argument("--json", action="store_true", help="one JSON object per message")
    load = commands.add_parser(
        "import", parents=[common], help="clients and visit history from CSV or XLSX"
    )
    load.add_argument("--clients", type=Path, metavar="FILE", help="clients (CSV or XLSX)")
    load.add_argument("--visits", type=Path, metavar="FILE", help="visits (CSV or XLSX)")
    load.add_argument(
        "--sheet", metavar="NAME", help="the XLSX sheet to read (default: the first with a header)"
    )
    digest = commands.add_parser(
        "digest", parents=[common], help="the owner's weekly digest (the 7 days before --as-of)"
    )
    digest.add_argument("--as-of", type=_date, help="a local date (default: today)")
    digest.add_argument("--json", action="store_true", help="the figures as JSON")
    digest.add_argument("--chart", type=Path, metavar="FILE", help="write the chart as PNG")
    payroll = commands.add_parser(
        "payroll", parents=[common], help="the masters' bonuses for a month ([payroll])"
    )
    payroll.add_argument("--month", type=_month, required=True, help="like 2026-11")
    payroll.add_argument("--json", action="store_true", help="as JSON")
    export = commands.add_parser(
        "export", parents=[common], help="clients, visits, feedback and loyalty as CSV"
    )
    export.add_argument("--out", type=Path, default=Path("export"), help="folder (./export)")
    export.add_argument("--xlsx", action="store_true", help="also one regulars.xlsx workbook")
    backup = commands.add_parser(
        "backup", parents=[common], help="a consistent copy of the live SQLite database"
    )
    backup.add_argument("file", type=Path, help="where to write the copy")
    restore = commands.add_parser(
        "restore", parents=[common], help="put a backup in place of the database (bot stopped)"
    )
    restore.add_argument("file", type=Path, help="the backup to restore")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", parents=[common], help="apply Alembic migrations")
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from None


def _month(text: str) -> str:
    try:
        date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-11") from None
    return text


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 366:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 366")
    return days


def _settings(args: argparse.Namespace) -> Settings:
    from bot.composition import settings_from

    return settings_from(db=args.db, database_url=args.database_url, config=args.config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except Exception as exc:  # pydantic's ValidationError for a bad environment value
        print(f"regulars: bad setting: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:  # migrations say nothing unless asked
        logging.getLogger("alembic").setLevel(logging.WARNING)
    for library in CHATTY_LIBRARIES:
        logging.getLogger(library).setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as error:
        print(f"regulars: {error.source} has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as error:
        print(f"regulars: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `regulars import … | head`: the reader left; say nothing more, and let the
        # interpreter's final flush go nowhere instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.app import NothingToRun, run, stopping_on_signals

        stop = asyncio.Event()
        try:
            with stopping_on_signals(stop):
                await run(settings, stop=stop)
        except NothingToRun as reason:
            print(f"regulars: {reason}", file=sys.stderr)
            return EXIT_CONFIG
        return 0
    if args.command == "demo":
        from bot.tools.demo import demo

        return await demo(args, settings)
    if args.command == "chat":
        from bot.tools.demo import chat

        return await chat(settings, phone=args.phone, new=args.new, as_staff=args.as_staff)
    if args.command == "simulate":
        from bot.tools.simulate import SimulationError, print_human, print_lines, simulate

        try:
            outcome = await simulate(
                database_url=settings.database_url,
                config_path=settings.business_config,
                start=args.start,
                days=args.days,
            )
        except SimulationError as reason:
            print(f"regulars: {reason}", file=sys.stderr)
            return EXIT_CONFIG
        (print_lines if args.json else print_human)(outcome)
        return 0
    if args.command == "import":
        return await _import(args, settings)
    if args.command in ("digest", "payroll", "export"):
        return await _report(args, settings)
    if args.command in ("backup", "restore"):
        return _backup(args, settings)
    if args.command == "db" and args.db_command == "upgrade":
        return await _db_upgrade(settings.database_url)
    raise AssertionError(args.command)


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            print(f"backup written to {backup(settings.database_url, args.file)}")
        else:
            print(f"restored {args.file} into {restore(settings.database_url, args.file)}")
    except BackupError as error:
        print(f"regulars {args.command}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _missing_sqlite_file(url: str) -> str | None:
    """The SQLite file behind `url` when it does not exist yet."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    path = parsed.database if parsed.drivername.startswith("sqlite") else None
    if not path or path == ":memory:" or os.path.exists(path):
        return None
    return path


async def _db_upgrade(url: str) -> int:
    """Says what it did: created the file, upgraded it, or found it up to date."""
    from storage.migrate import current_revision, head_revision, upgrade

    path = _missing_sqlite_file(url)
    missing = path is not None
    before = None if missing else await current_revision(url)
    await upgrade(url)
    head = head_revision()
    if missing:
        print(f"created {path} with the whole schema (revision {head})")
    elif before == head:
        print(f"the database is up to date (revision {head})")
    else:
        print(f"upgraded the database from revision {before or 'none'} to {head}")
    return 0


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    """0 when the files were read (even with rejected rows, which the summary lists), 2 for
    a file that cannot be used (nothing is written then)."""
    from bot.clock import utc_now
    from bot.composition import build_core
    from bot.tools.importer import ImportFileError, import_files

    if args.clients is None and args.visits is None:
        print("regulars import: give --clients FILE, --visits FILE or both", file=sys.stderr)
        return EXIT_CONFIG
    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    try:
        report = await import_files(
            core=core, clients=args.clients, visits=args.visits, now=utc_now(), sheet=args.sheet
        )
    except ImportFileError as error:
        print(f"regulars import: {error}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await core.close()
    print(report.summary())
    return 0


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    """The owner's read-only reports on the current database."""
    from bot.composition import build_core

    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    try:
        if args.command == "digest":
            from bot.reports import DigestRequest, print_digest

            return await print_digest(core, DigestRequest(args.as_of, args.json, args.chart))
        if args.command == "payroll":
            from bot.reports import print_payroll

            return await print_payroll(core, month=args.month, as_json=args.json)
        return await _export(core, out=args.out, xlsx=args.xlsx)
    finally:
        await core.close()


async def _export(core: Core, *, out: Path, xlsx: bool) -> int:
    from bot.export import export_tables, write_csv, write_xlsx

    async with core.db.reading() as session:
        tables = await export_tables(session, core.config.tz)
    written = write_csv(tables, out)
    if xlsx:
        written.append(write_xlsx(tables, out / "regulars.xlsx"))
    for path, table in zip(written, tables, strict=False):
        print(f"{path}: {len(table.rows)} rows")
    if xlsx:
        print(f"{written[-1]}: {len(tables)} sheets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
