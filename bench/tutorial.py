"""A typical aiogram 3 booking bot, written the way tutorials write one: the third
contestant of `bench.updates`.

What makes it typical: the conversation lives in aiogram's FSM with `MemoryStorage` (lost
on every restart), a middleware opens an `AsyncSession` for every update on the stock
`sqlite+aiosqlite` driver, handlers filter on FSM states and `CallbackData` factories,
keyboards come from `InlineKeyboardBuilder`, the free times of a day are one SELECT of the
master's bookings, and Confirm INSERTs the booking without looking again (two people can
book one slot). It is not sloppy where it would be unfair: its tables have the indexes a
careful author adds (users by Telegram id, bookings by master and start), and it reads the
same shop — the same masters, services and working hours, its own copy of the same
clients and visits (`copy_shop`).

The same 13 steps as Regulars: /start, name, phone, consent, offers, birthday, then Book
→ service → master → day → time → Confirm → My visits.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import BaseMiddleware, Dispatcher, F, Router
from aiogram.filters import CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import BigInteger, ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TZ = ZoneInfo("Europe/Moscow")
DAYS_AHEAD = 14
SLOT = timedelta(minutes=30)
HOURS = {  # the shop's hours (business.example.toml), as a tutorial keeps them in config.py
    0: (time(10), time(21)),
    1: (time(10), time(21)),
    2: (time(10), time(21)),
    3: (time(10), time(21)),
    4: (time(10), time(21)),
    5: (time(10), time(20)),
    6: (time(11), time(18)),
}
PHONE = re.compile(r"\+?\d{10,15}")


# --- models ----------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    tg_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    marketing: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Master(Base):
    __tablename__ = "masters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    duration: Mapped[int]  # minutes
    price: Mapped[int]


class MasterService(Base):
    __tablename__ = "master_services"

    master_id: Mapped[int] = mapped_column(ForeignKey("masters.id"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), primary_key=True)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_master_start", "master_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    master_id: Mapped[int] = mapped_column(ForeignKey("masters.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[datetime]


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)


def copy_shop(regulars_db: Path, tutorial_db: Path) -> dict[str, int]:
    """The shop's masters, services, clients and visits, copied from the Regulars database
    into the tutorial bot's own tables (with plain sqlite3: this is set-up, not timed)."""
    with closing(sqlite3.connect(tutorial_db)) as db:
        db.execute("ATTACH DATABASE ? AS regulars", (str(regulars_db),))
        db.executescript(
            """
            INSERT INTO masters (id, name) SELECT id, name FROM regulars.staff WHERE active;
            INSERT INTO services (id, name, duration, price)
                SELECT id, name, duration_minutes, price / 100 FROM regulars.service;
            INSERT INTO master_services (master_id, service_id)
                SELECT staff_id, service_id FROM regulars.staff_service
                WHERE staff_id IN (SELECT id FROM masters);
            INSERT INTO users (id, tg_id, name, phone, marketing, created_at)
                SELECT c.id, (SELECT CAST(i.external_id AS INTEGER) FROM regulars.client_identity i
                              WHERE i.client_id = c.id AND i.channel = 'telegram' LIMIT 1),
                       c.name, c.phone, c.marketing_opt_in_at IS NOT NULL, c.created_at
                FROM regulars.client c;
            INSERT INTO bookings (id, user_id, master_id, service_id, starts_at, ends_at,
                                  status, created_at)
                SELECT id, client_id, master_id, service_id, starts_at, ends_at, status,
                       created_at FROM regulars.visit;
            """
        )
        db.commit()
        counts = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("masters", "services", "users", "bookings")
        }
        db.execute("DETACH DATABASE regulars")
    return counts


# --- the bot ---------------------------------------------------------------------------


class Registration(StatesGroup):
    name = State()
    phone = State()
    consent = State()
    marketing = State()
    birthday = State()


class ServiceCb(CallbackData, prefix="sv"):
    service_id: int


class MasterCb(CallbackData, prefix="ms"):
    service_id: int
    master_id: int


class DayCb(CallbackData, prefix="dy"):
    service_id: int
    master_id: int
    day: str


class TimeCb(CallbackData, prefix="tm"):
    service_id: int
    master_id: int
    at: int  # unix time


class ConfirmCb(CallbackData, prefix="ok"):
    service_id: int
    master_id: int
    at: int


class DbSessionMiddleware(BaseMiddleware):
    """The tutorials' session-per-update middleware."""

    def __init__(self, session_pool: async_sessionmaker[AsyncSession]) -> None:
        self.session_pool = session_pool

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        async with self.session_pool() as session:
            data["session"] = session
            return await handler(event, data)


def menu_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text="📅 Book a visit", callback_data="book")
    builder.button(text="🗓 My visits", callback_data="my")
    builder.adjust(1)
    return builder.as_markup()


async def start(message: Message, state: FSMContext, session: AsyncSession) -> None:
    assert message.from_user is not None
    user = await session.scalar(select(User).where(User.tg_id == message.from_user.id))
    await state.clear()
    if user is not None:
        await message.answer(f"Welcome back, {user.name}!", reply_markup=menu_keyboard())
        return
    await state.set_state(Registration.name)
    await message.answer("Hello! What is your name?")


async def got_name(message: Message, state: FSMContext) -> None:
    await state.update_data(name=(message.text or "").strip()[:100])
    await state.set_state(Registration.phone)
    await message.answer("Please send your phone number.")


async def got_phone(message: Message, state: FSMContext) -> None:
    phone = re.sub(r"[^\d+]", "", message.text or "")
    if not PHONE.fullmatch(phone):
        await message.answer("That does not look like a phone number, please try again.")
        return
    await state.update_data(phone=phone)
    await state.set_state(Registration.consent)
    builder = InlineKeyboardBuilder()
    builder.button(text="✅ I agree", callback_data="consent")
    await message.answer(
        "Do you agree to the processing of your personal data?",
        reply_markup=builder.as_markup(),
    )


async def got_consent(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(Registration.marketing)
    builder = InlineKeyboardBuilder()
    builder.button(text="Yes, please", callback_data="mkt:yes")
    builder.button(text="No, thanks", callback_data="mkt:no")
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text(
        "May we send you offers now and then?", reply_markup=builder.as_markup()
    )


async def got_marketing(callback: CallbackQuery, state: FSMContext) -> None:
    await state.update_data(marketing=callback.data == "mkt:yes")
    await state.set_state(Registration.birthday)
    builder = InlineKeyboardBuilder()
    builder.button(text="Skip", callback_data="bday:skip")
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text(
        "When is your birthday? (DD.MM) We have a gift.", reply_markup=builder.as_markup()
    )


async def skipped_birthday(
    callback: CallbackQuery, state: FSMContext, session: AsyncSession, now: datetime
) -> None:
    data = await state.get_data()
    session.add(
        User(
            tg_id=callback.from_user.id,
            name=data["name"],
            phone=data["phone"],
            marketing=data.get("marketing", False),
            created_at=now.replace(tzinfo=None),
        )
    )
    await session.commit()
    await state.clear()
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text("You are registered! 🎉", reply_markup=menu_keyboard())


async def book(callback: CallbackQuery, session: AsyncSession) -> None:
    services = (await session.scalars(select(Service).order_by(Service.id))).all()
    builder = InlineKeyboardBuilder()
    for service in services:
        builder.button(
            text=f"{service.name} — {service.price} ₽",
            callback_data=ServiceCb(service_id=service.id),
        )
    builder.adjust(1)
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text("Choose a service:", reply_markup=builder.as_markup())


async def chose_service(
    callback: CallbackQuery, callback_data: ServiceCb, session: AsyncSession
) -> None:
    masters = (
        await session.scalars(
            select(Master)
            .join(MasterService, MasterService.master_id == Master.id)
            .where(MasterService.service_id == callback_data.service_id)
            .order_by(Master.id)
        )
    ).all()
    builder = InlineKeyboardBuilder()
    for master in masters:
        builder.button(
            text=master.name,
            callback_data=MasterCb(service_id=callback_data.service_id, master_id=master.id),
        )
    builder.adjust(2)
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text("Choose a master:", reply_markup=builder.as_markup())


async def chose_master(callback: CallbackQuery, callback_data: MasterCb, now: datetime) -> None:
    today = now.astimezone(TZ).date()
    builder = InlineKeyboardBuilder()
    for offset in range(DAYS_AHEAD):
        day = today + timedelta(days=offset)
        builder.button(
            text=day.strftime("%a %d.%m"),
            callback_data=DayCb(
                service_id=callback_data.service_id,
                master_id=callback_data.master_id,
                day=day.isoformat(),
            ),
        )
    builder.adjust(3)
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text("Choose a day:", reply_markup=builder.as_markup())


def free_times(
    day: date, duration: timedelta, booked: list[tuple[datetime, datetime]], now: datetime
) -> list[datetime]:
    opens, closes = HOURS[day.weekday()]
    start = datetime.combine(day, opens, TZ)
    end = datetime.combine(day, closes, TZ)
    times = []
    while start + duration <= end:
        taken = any(s < start + duration and start < e for s, e in booked)
        if not taken and start > now:
            times.append(start)
        start += SLOT
    return times


async def chose_day(
    callback: CallbackQuery, callback_data: DayCb, session: AsyncSession, now: datetime
) -> None:
    service = await session.get(Service, callback_data.service_id)
    assert service is not None
    day = date.fromisoformat(callback_data.day)
    day_start = datetime.combine(day, time(), TZ).astimezone(UTC).replace(tzinfo=None)
    rows = await session.execute(
        select(Booking.starts_at, Booking.ends_at).where(
            Booking.master_id == callback_data.master_id,
            Booking.status.in_(("booked", "confirmed")),
            Booking.starts_at >= day_start,
            Booking.starts_at < day_start + timedelta(days=1),
        )
    )
    booked = [(s.replace(tzinfo=UTC), e.replace(tzinfo=UTC)) for s, e in rows.all()]
    times = free_times(day, timedelta(minutes=service.duration), booked, now)
    builder = InlineKeyboardBuilder()
    for moment in times:
        builder.button(
            text=moment.strftime("%H:%M"),
            callback_data=TimeCb(
                service_id=service.id,
                master_id=callback_data.master_id,
                at=int(moment.timestamp()),
            ),
        )
    builder.button(
        text="« Other day",
        callback_data=MasterCb(service_id=service.id, master_id=callback_data.master_id),
    )
    builder.adjust(4)
    await callback.answer()
    assert isinstance(callback.message, Message)
    text = "Choose a time:" if times else "No free time on this day."
    await callback.message.edit_text(text, reply_markup=builder.as_markup())


async def chose_time(callback: CallbackQuery, callback_data: TimeCb, session: AsyncSession) -> None:
    service = await session.get(Service, callback_data.service_id)
    master = await session.get(Master, callback_data.master_id)
    assert service is not None and master is not None
    when = datetime.fromtimestamp(callback_data.at, TZ)
    builder = InlineKeyboardBuilder()
    builder.button(
        text="✅ Confirm",
        callback_data=ConfirmCb(service_id=service.id, master_id=master.id, at=callback_data.at),
    )
    builder.button(text="« Back", callback_data="book")
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text(
        f"{service.name} with {master.name}\n{when:%d.%m.%Y %H:%M}, {service.duration} min, "
        f"{service.price} ₽\nConfirm?",
        reply_markup=builder.as_markup(),
    )


async def confirmed(
    callback: CallbackQuery, callback_data: ConfirmCb, session: AsyncSession, now: datetime
) -> None:
    user = await session.scalar(select(User).where(User.tg_id == callback.from_user.id))
    service = await session.get(Service, callback_data.service_id)
    assert user is not None and service is not None
    starts = datetime.fromtimestamp(callback_data.at, UTC).replace(tzinfo=None)
    session.add(
        Booking(
            user_id=user.id,
            master_id=callback_data.master_id,
            service_id=service.id,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=service.duration),
            created_at=now.replace(tzinfo=None),
        )
    )
    await session.commit()
    builder = InlineKeyboardBuilder()
    builder.button(text="🗓 My visits", callback_data="my")
    await callback.answer("Booked!")
    assert isinstance(callback.message, Message)
    when = datetime.fromtimestamp(callback_data.at, TZ)
    await callback.message.edit_text(
        f"You are booked: {service.name}, {when:%d.%m %H:%M}", reply_markup=builder.as_markup()
    )


async def my_visits(callback: CallbackQuery, session: AsyncSession, now: datetime) -> None:
    user = await session.scalar(select(User).where(User.tg_id == callback.from_user.id))
    assert user is not None
    rows = await session.execute(
        select(Booking.starts_at, Service.name, Master.name)
        .join(Service, Service.id == Booking.service_id)
        .join(Master, Master.id == Booking.master_id)
        .where(
            Booking.user_id == user.id,
            Booking.status == "booked",
            Booking.starts_at > now.replace(tzinfo=None),
        )
        .order_by(Booking.starts_at)
    )
    lines = [
        f"{starts.replace(tzinfo=UTC).astimezone(TZ):%d.%m %H:%M} {service} ({master})"
        for starts, service, master in rows.all()
    ]
    await callback.answer()
    assert isinstance(callback.message, Message)
    await callback.message.edit_text(
        "Your visits:\n" + "\n".join(lines) if lines else "You have no visits booked.",
        reply_markup=menu_keyboard(),
    )


def tutorial_router() -> Router:
    """The handlers, registered as a tutorial's `@router.message(...)` lines do."""
    router = Router(name="tutorial")
    router.message(CommandStart())(start)
    router.message(Registration.name, F.text)(got_name)
    router.message(Registration.phone, F.text)(got_phone)
    router.callback_query(Registration.consent, F.data == "consent")(got_consent)
    router.callback_query(Registration.marketing, F.data.startswith("mkt:"))(got_marketing)
    router.callback_query(Registration.birthday, F.data == "bday:skip")(skipped_birthday)
    router.callback_query(F.data == "book")(book)
    router.callback_query(ServiceCb.filter())(chose_service)
    router.callback_query(MasterCb.filter())(chose_master)
    router.callback_query(DayCb.filter())(chose_day)
    router.callback_query(TimeCb.filter())(chose_time)
    router.callback_query(ConfirmCb.filter())(confirmed)
    router.callback_query(F.data == "my")(my_visits)
    return router


def tutorial_dispatcher(engine: AsyncEngine, *, now: datetime) -> Dispatcher:
    """The bot as a tutorial's main.py would build it (`now` is the benchmark's fixed
    clock, where a tutorial calls datetime.now())."""
    dispatcher = Dispatcher(storage=MemoryStorage(), now=now)
    dispatcher.update.middleware(
        DbSessionMiddleware(async_sessionmaker(engine, expire_on_commit=False))
    )
    dispatcher.include_router(tutorial_router())
    return dispatcher
