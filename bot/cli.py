"""The `regulars` command line (`python -m bot` works too)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot.config import ConfigError, Settings

EXIT_CONFIG = 2


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
    chat.add_argument("--phone", help="talk as the client with this phone number")
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
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", parents=[common], help="apply Alembic migrations")
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from None


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
    try:
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as error:
        print(f"regulars: {error.source} has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.app import NothingToRun, run

        try:
            await run(settings)
        except NothingToRun as reason:
            print(f"regulars: {reason}", file=sys.stderr)
            return EXIT_CONFIG
        return 0
    if args.command == "demo":
        from bot.tools.demo import demo

        return await demo(args, settings)
    if args.command == "chat":
        from bot.tools.demo import chat

        return await chat(settings, phone=args.phone)
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
    if args.command == "db" and args.db_command == "upgrade":
        from storage.migrate import upgrade

        await upgrade(settings.database_url)
        print("database is up to date")
        return 0
    raise AssertionError(args.command)


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
            core=core, clients=args.clients, visits=args.visits, now=utc_now()
        )
    except ImportFileError as error:
        print(f"regulars import: {error}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await core.close()
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
