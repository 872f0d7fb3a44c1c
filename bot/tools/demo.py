"""`regulars demo` and `regulars chat`: the bot in a terminal, on a demo barbershop."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

from sqlmodel import col, func, select

from bot.adapters.console import ConsoleChat
from bot.clock import utc_now
from bot.composition import Core, build_core
from bot.config import Settings
from bot.tools.demo_history import seed_history
from domain.payloads import pack
from domain.vocabulary import Act
from handlers.conversation import CONSOLE_STAFF
from handlers.registration import normalise_phone
from storage.db import sqlite_url_for
from storage.queries import client_by_phone, conversation_for
from storage.staff import staff_by_key
from storage.tables import ACTIVE_VISIT, Client, Conversation, Visit, VisitStatus

DEMO_DB = "demo.db"
BANNER = "Type a button's number or its text, or a message, or /help; Ctrl-D quits.\n"


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    path = _fresh_file(Path(args.db or DEMO_DB))
    config_path = Path(args.config) if args.config else _demo_config(settings)
    core = await build_core(database_url=sqlite_url_for(str(path)), config_path=config_path)
    try:
        now = utc_now()
        stats = await seed_history(
            db=core.db, catalog=core.deps.catalog, config=core.config, now=now, clients=args.clients
        )
        print(
            f"Demo barbershop «{core.config.business.name}» in {path}: {stats.clients} clients, "
            f"{stats.visits} visits over 18 months ({stats.upcoming} upcoming)."
        )
        print(_remember_demo(path, config_path) + "\n")
        if sys.stdin.isatty():
            print("You are a new client. " + BANNER)
            await _interactive(ConsoleChat(core.conversations, external_id="demo-visitor"))
        else:
            await tour(core)
    finally:
        await core.close()
    return 0


DEMO_ENV = """\
# Written by `regulars demo`: the other commands (chat, simulate, import, run) use the demo
# barbershop until you change these two lines (README: "Running the bot for a business").
DATABASE_URL={url}
BUSINESS_CONFIG={config}
"""


def _remember_demo(path: Path, config_path: Path) -> str:
    """Make the demo's database and config the defaults of the other commands, when the
    operator has not chosen any (no .env, nothing in the environment); say what was done."""
    flags = f"--db {path} --config {config_path}"
    env = Path(".env")
    chosen = {"DATABASE_URL", "BUSINESS_CONFIG"} & set(os.environ)
    ours = env.exists() and env.read_text(encoding="utf-8").startswith(DEMO_ENV[:30])
    if (env.exists() and not ours) or chosen:
        return f"Your own settings are kept: give the other commands {flags} to use the demo."
    config = config_path.resolve()
    shown = config.relative_to(Path.cwd()) if config.is_relative_to(Path.cwd()) else config
    env.write_text(DEMO_ENV.format(url=sqlite_url_for(str(path)), config=shown), encoding="utf-8")
    return (
        "The demo is now the default for the other commands (written to .env): "
        "regulars chat, simulate and import use it."
    )


def _fresh_file(path: Path) -> Path:
    """The demo starts from scratch every time: its history is made relative to now."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _demo_config(settings: Settings) -> Path:
    if settings.business_config.exists():
        return settings.business_config
    return Path(__file__).resolve().parents[2] / "business.example.toml"


async def chat(
    settings: Settings, *, phone: str | None, new: bool = False, as_staff: str | None = None
) -> int:
    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    try:
        external_id = "console"
        if as_staff is not None:
            async with core.db.reading() as reading:
                person = await staff_by_key(session=reading, key=as_staff)
            if person is None:
                keys = ", ".join(m.key for m in core.deps.catalog.masters.values())
                print(
                    f"regulars: no master with the key {as_staff!r} (keys: {keys})", file=sys.stderr
                )
                return 2
            print(f"You are {person.name} ({person.role}), on the staff side.")
            external_id = CONSOLE_STAFF + as_staff
        elif new:
            external_id = f"console:{secrets.token_hex(4)}"
            print("You are a new client (a fresh chat).")
        elif not phone:
            print("Your console chat continues where it was; --new starts as a new client.")
        print(BANNER)
        if phone:
            e164 = normalise_phone(phone, core.config.business.phone_region)
            if e164 is None:
                print(f"regulars: {phone!r} is not a valid phone number", file=sys.stderr)
                return 2
            external_id = await _link_console(core, e164)
        session = ConsoleChat(core.conversations, external_id=external_id, phone=phone)
        await _interactive(session)
    finally:
        await core.close()
    return 0


async def _link_console(core: Core, phone: str) -> str:
    """Talk as the client with this phone: the console conversation is linked to them."""
    external_id = f"phone:{phone}"
    async with core.db.transaction() as session:
        client = await client_by_phone(session=session, phone=phone)
        if client is None:
            return external_id
        conversation = await conversation_for(
            session=session, channel="console", external_id=external_id
        ) or Conversation(channel="console", external_id=external_id, updated_at=utc_now())
        conversation.client_id = client.id
        session.add(conversation)
    return external_id


async def _interactive(session: ConsoleChat) -> None:
    await session.say("/start")
    while True:
        try:
            typed = await asyncio.to_thread(input, "> ")
        except EOFError:
            print()
            return
        if typed.strip() in ("quit", "exit"):
            return
        if typed.strip():
            await session.say(typed)


async def tour(core: Core) -> None:
    """A scripted walk through, for a terminal that cannot answer (CI, a pipe)."""
    print("=== 1. A new client registers and books a visit ===\n")
    new = ConsoleChat(core.conversations, external_id="tour-new-client", display_name="Алексей")
    await new.type("/start")
    await _press(new, Act.USE_SHOWN_NAME)
    await new.type("8 916 555-12-34")
    await _press(new, Act.ANSWER_CONSENT, "1")
    await _press(new, Act.ANSWER_MARKETING, "1")
    await new.type("27.11.1990")
    await _press(new, Act.START_BOOKING)
    await _press(new, Act.CHOOSE_SERVICE)
    await _press(new, Act.CHOOSE_DAYS_FOR)
    await _press(new, Act.CHOOSE_DAY)
    await _press_if_shown(new, Act.CHOOSE_PART_OF_DAY)  # a day with many free times
    await _press(new, Act.CHOOSE_TIME)
    await _press(new, Act.CONFIRM_BOOKING)

    print("=== 2. A regular repeats their last visit in one tap ===\n")
    phone = await _regular_without_booking(core)
    external_id = await _link_console(core, phone)
    regular = ConsoleChat(core.conversations, external_id=external_id)
    await regular.type("/start")
    await _press(regular, Act.REPEAT_LAST_VISIT)
    await _press(regular, Act.CHOOSE_TIME)
    await _press(regular, Act.CONFIRM_BOOKING)
    print("=== The end of the tour. `make demo` in a terminal lets you chat yourself. ===")


async def _press(chat: ConsoleChat, action: Act, *args: str) -> None:
    prefix = pack(action, *args)
    buttons = chat.last.flat_buttons if chat.last else []
    for button in buttons:
        if button.payload == prefix or button.payload.startswith(prefix + ":"):
            await chat.choose(button.label)
            return
    raise LookupError(f"the tour expected a {prefix!r} button; the bot showed {buttons}")


async def _press_if_shown(chat: ConsoleChat, action: Act) -> None:
    buttons = chat.last.flat_buttons if chat.last else []
    if any(button.payload.startswith(pack(action) + ":") for button in buttons):
        await _press(chat, action)


async def _regular_without_booking(core: Core) -> str:
    """A client with several completed visits and nothing booked ahead."""
    now = utc_now()
    async with core.db.reading() as session:
        booked = select(Visit.client_id).where(
            col(Visit.status).in_(ACTIVE_VISIT), col(Visit.starts_at) > now
        )
        rows = await session.exec(
            select(Client.phone)
            .join(Visit, col(Visit.client_id) == col(Client.id))
            .where(Visit.status == VisitStatus.completed, col(Client.id).not_in(booked))
            .group_by(col(Client.id))
            .having(func.count(col(Visit.id)) >= 3)
            .order_by(func.max(Visit.starts_at).desc())
            .limit(5)
        )
        for phone in rows.all():
            if phone:
                return phone
    raise LookupError("the demo history has no regular without a booking")
