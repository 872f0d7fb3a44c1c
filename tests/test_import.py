"""`regulars import` (bot/tools/importer.py) on the files in tests/data (see its README.md)."""

from __future__ import annotations

import csv
import time as timer
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlmodel import SQLModel, func, select

from bot.composition import Core, build_core_on
from bot.tools.importer import ImportFileError, ImportReport, Rejected, import_files
from domain.business import BusinessConfig
from domain.retention import Segment, segment_of
from domain.slots import Interval, working_intervals
from storage.db import Database, create_engine
from storage.tables import Client, Visit, VisitStatus
from testing.chat import Clock
from tests.helpers import add_client, chat_id, clients, visits

DATA = Path(__file__).resolve().parent / "data"
CLIENTS = DATA / "clients.csv"
VISITS = DATA / "visits.csv"


def phone(number: int) -> str:
    """The E.164 phone of client NN in tests/data."""
    return f"+791630001{number:02d}"


def msk(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A Moscow wall time (UTC+3 all year) as aware UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


def master_id(core: Core, key: str) -> int:
    master = core.deps.catalog.master_by_key(key)
    assert master is not None
    return master.id


def service_id(core: Core, key: str) -> int:
    service = core.deps.catalog.service_by_key(key)
    assert service is not None
    return service.id


EXPECTED_REJECTED = [
    Rejected("clients.csv", 8, "invalid phone '12345'"),
    Rejected("visits.csv", 14, "unknown master 'Олег'"),
    Rejected("visits.csv", 28, "unknown service 'Маникюр'"),
    Rejected("visits.csv", 44, "unreadable date '31.09.2026 18:00' (no such day or time)"),
    Rejected(
        "visits.csv",
        60,
        "unknown client +79169999999: not in the clients file or the database",
    ),
    Rejected("visits.csv", 92, "negative price '-500'"),
    Rejected("visits.csv", 107, "booked visit in the past (20.11.2026 10:00)"),
]
# Пётр Ошибкин (NN 30) is imported without his impossible birthday, and so are his visits.
EXPECTED_WARNINGS = [
    Rejected(
        "clients.csv",
        22,
        "unreadable birthday '31.02.1990' (use DD.MM.YYYY or YYYY-MM-DD): imported without it",
    ),
]


async def run(
    core: Core, clock: Clock, *, sheet: str | None = None, **files: Path | None
) -> ImportReport:
    files.setdefault("clients", CLIENTS)
    files.setdefault("visits", VISITS)
    return await import_files(
        core=core, now=clock.now, clients=files["clients"], visits=files["visits"], sheet=sheet
    )


async def by_phone(core: Core) -> dict[str, Client]:
    return {c.phone or "": c for c in await clients(core)}


async def counts(core: Core) -> tuple[int, int]:
    async with core.db.reading() as session:
        n_clients = (await session.exec(select(func.count()).select_from(Client))).one()
        n_visits = (await session.exec(select(func.count()).select_from(Visit))).one()
    return n_clients, n_visits


async def snapshot(core: Core) -> list[tuple[Any, ...]]:
    """Everything the import writes, without ids, for comparing two imports."""
    people = {c.id: c for c in await clients(core)}
    masters = {m.id: m.key for m in core.deps.catalog.masters.values()}
    services = {s.id: s.key for s in core.deps.catalog.services.values()}
    rows: list[tuple[Any, ...]] = [
        (
            c.phone, c.name, c.birthday, await chat_id(core, c.id), c.staff_notes, c.consent_at,
            c.marketing_opt_in_at, c.created_at, c.source, c.completed_visits,
            c.next_visit_due,
        )
        for c in people.values()
    ]  # fmt: skip
    rows += [
        (
            people[v.client_id].phone, masters[v.master_id], services[v.service_id],
            v.starts_at, v.ends_at, v.status, v.price, v.completed_at, v.cancelled_at,
            v.source,
        )
        for v in await visits(core)
    ]  # fmt: skip
    return sorted(rows, key=repr)


# --- The demo files -----------------------------------------------------------------------


async def test_the_files_are_imported_and_bad_rows_are_reported_with_their_lines(
    core: Core, clock: Clock
) -> None:
    report = await run(core, clock)
    assert (report.clients_added, report.clients_updated, report.clients_unchanged) == (29, 0, 0)
    assert (report.visits_added, report.visits_skipped_existing) == (100, 0)
    assert report.rejected == EXPECTED_REJECTED
    assert report.warnings == EXPECTED_WARNINGS
    assert await counts(core) == (29, 100)
    summary = report.summary().splitlines()
    assert summary[:3] == [
        "Clients: 29 added, 0 updated, 0 unchanged.",
        "Visits: 100 added, 0 already present.",
        "Rejected rows: 7",
    ]
    assert summary[-2:] == [
        "Imported with a value left out: 1",
        "  clients.csv:22: unreadable birthday '31.02.1990' (use DD.MM.YYYY or YYYY-MM-DD):"
        " imported without it",
    ]
    assert summary[3] == "  clients.csv:8: invalid phone '12345'"
    assert "  visits.csv:14: unknown master 'Олег'" in summary


async def test_russian_headers_and_every_phone_format_are_read(core: Core, clock: Clock) -> None:
    await run(core, clock)
    people = await by_phone(core)
    assert sorted(people) == sorted(
        phone(n) for n in (*range(1, 29), 30)
    )  # E.164, whatever the input
    assert people[phone(30)].birthday is None  # his 31.02.1990 cannot be a birthday
    orlov = people[phone(1)]
    assert orlov.name == "Дмитрий Орлов"
    assert orlov.birthday == date(1987, 3, 14)
    assert await chat_id(core, orlov.id) == "500100101"
    assert orlov.preferred_channel == "telegram"
    assert orlov.staff_notes == "Любит короткие виски"
    assert people[phone(2)].birthday == date(1990, 7, 2)  # YYYY-MM-DD
    assert people[phone(27)].staff_notes == 'Кофе без сахара; просит "как в прошлый раз"'
    assert await chat_id(core, people[phone(17)].id) is None
    assert people[phone(17)].preferred_channel is None
    assert {c.source for c in people.values()} == {"import"}
    assert {c.locale for c in people.values()} == {"ru"}


async def test_consent_is_given_and_marketing_only_where_the_file_says_yes(
    core: Core, clock: Clock
) -> None:
    await run(core, clock)
    people = await by_phone(core)
    assert all(c.consent_at == clock.now for c in people.values())
    opted_in = {n for n in range(1, 29) if people[phone(n)].marketing_opt_in_at is not None}
    said_no_or_nothing = {13, 18, 20, 21, 23}  # нет, 0, (empty), 0, нет
    assert opted_in == set(range(1, 29)) - said_no_or_nothing
    assert people[phone(10)].marketing_opt_in_at == clock.now  # "yes"
    assert people[phone(2)].marketing_opt_in_at == clock.now  # "1"
    assert all(c.marketing_opt_out_at is None for c in people.values())


async def test_visits_are_stored_in_utc_with_their_service_length_price_and_status(
    core: Core, clock: Clock
) -> None:
    await run(core, clock)
    phones = {c.id: c.phone for c in await clients(core)}
    by_client: dict[str | None, list[Visit]] = {}
    for visit in await visits(core):
        by_client.setdefault(phones[visit.client_id], []).append(visit)

    first = by_client[phone(1)][0]  # "14.04.2026 12:00", Moscow
    assert first.starts_at == datetime(2026, 4, 14, 9, 0, tzinfo=UTC)
    assert first.ends_at == first.starts_at + timedelta(minutes=60)
    assert first.completed_at == first.ends_at
    assert first.status == VisitStatus.completed
    assert first.price == Decimal("1800.00")
    assert first.source == "import"
    assert (first.master_id, first.service_id) == (
        master_id(core, "artem"),
        service_id(core, "haircut"),
    )
    assert by_client[phone(1)][1].starts_at == msk(2026, 5, 12, 12, 0)  # "2026-05-12 12:00"

    fade = by_client[phone(15)][0]  # "Артем", "Фейд", 75 minutes
    assert (fade.master_id, fade.service_id) == (master_id(core, "artem"), service_id(core, "fade"))
    assert fade.ends_at - fade.starts_at == timedelta(minutes=75)

    booked = by_client[phone(6)][-1]
    assert (booked.status, booked.starts_at) == (VisitStatus.booked, msk(2026, 11, 24, 15, 0))
    assert booked.completed_at is None
    assert booked.created_at == clock.now
    kids = by_client[phone(8)][-1]  # "запись"
    assert (kids.status, kids.starts_at) == (VisitStatus.booked, msk(2026, 11, 25, 11, 0))

    yakovlev = [(v.status, v.price) for v in by_client[phone(23)]]
    assert yakovlev == [
        (VisitStatus.completed, Decimal("1800.00")),
        (VisitStatus.completed, Decimal("1800.00")),
        (VisitStatus.cancelled, Decimal("1800.00")),  # "отменён"
        (VisitStatus.no_show, Decimal("1800.00")),  # "не пришёл"
        (VisitStatus.completed, Decimal("1800.00")),  # "выполнен", "1 800"
    ]
    cancelled = by_client[phone(23)][2]
    assert cancelled.cancelled_at == cancelled.starts_at
    assert [v.price for v in by_client[phone(28)]] == [
        Decimal("2800.00"),
        Decimal("2800.00"),
        Decimal("3000.50"),  # "3000,50"
        Decimal("2500.00"),  # "2 500"
    ]


async def test_client_since_is_the_first_visit_and_figures_are_refreshed(
    core: Core, clock: Clock
) -> None:
    await run(core, clock)
    people = await by_phone(core)
    orlov = people[phone(1)]
    assert orlov.created_at == msk(2026, 4, 14, 12, 0)
    assert (orlov.completed_visits, orlov.rhythm_days) == (8, 28)
    assert orlov.last_visit_at == msk(2026, 10, 27, 12, 0)
    assert orlov.next_visit_due == date(2026, 11, 24)
    assert orlov.last_master_id == master_id(core, "artem")
    assert people[phone(5)].completed_visits == 6  # the no-show does not count
    assert people[phone(3)].next_visit_due == date(2026, 11, 23)  # median of 35,35,35,28,28
    assert people[phone(18)].rhythm_days == 61  # gaps 42 and 79
    assert people[phone(6)].completed_visits == 5  # the booked visit does not count
    prospect = people[phone(21)]
    assert (prospect.completed_visits, prospect.next_visit_due) == (0, None)
    assert prospect.created_at == clock.now


async def test_the_data_has_every_kind_of_client_for_the_retention_engine(
    core: Core, clock: Clock
) -> None:
    await run(core, clock)
    tz = core.config.tz
    today = clock.now.astimezone(tz).date()
    people = await by_phone(core)

    def segment(n: int) -> Segment:
        last = people[phone(n)].last_visit_at
        return segment_of(last.astimezone(tz).date() if last else None, today)

    assert {n for n in range(1, 29) if segment(n) is Segment.sleeping} == {11, 12, 13, 26}
    assert {n for n in range(1, 29) if segment(n) is Segment.prospect} == {21, 22}
    # Regulars a few days before their next visit are 28-35 days out: some hot, some warm.
    assert {n for n in range(1, 29) if segment(n) is Segment.warm} == {
        3, 4, 9, 16, 17, 18, 24, 27, 28,
    }  # fmt: skip
    assert sum(segment(n) is Segment.hot for n in range(1, 29)) == 13
    earliest, latest = today - timedelta(days=7), today + timedelta(days=5)
    due = {n: people[phone(n)].next_visit_due for n in range(1, 29)}
    due_soon = {n for n, day in due.items() if day and earliest <= day <= latest}
    assert due_soon == {1, 2, 3, 4, 5, 6, 7, 10, 24, 25, 28}
    assert people[phone(9)].birthday == date(1992, 11, 24)
    assert people[phone(10)].birthday == date(1988, 11, 25)
    week_ago = [
        v for v in await visits(core) if v.starts_at.astimezone(tz).date() == date(2026, 11, 16)
    ]
    assert {core.deps.catalog.services[v.service_id].key for v in week_ago} == {"fade", "beard"}
    assert all(core.deps.catalog.services[v.service_id].care_tip for v in week_ago)


async def test_every_visit_is_in_its_masters_hours_without_overlaps(
    core: Core, clock: Clock
) -> None:
    await run(core, clock)
    tz = core.config.tz
    catalog = core.deps.catalog
    taken: dict[int, list[Interval]] = {}
    for visit in await visits(core):
        master = catalog.masters[visit.master_id]
        assert visit.service_id in master.service_ids
        day = visit.starts_at.astimezone(tz).date()
        shifts = working_intervals(day, master.hours, tz)
        assert any(s.start <= visit.starts_at and visit.ends_at <= s.end for s in shifts), (
            f"{master.key} does not work at {visit.starts_at.astimezone(tz)}"
        )
        mine = Interval(visit.starts_at, visit.ends_at)
        assert not any(mine.overlaps(other) for other in taken.get(master.id, []))
        taken.setdefault(master.id, []).append(mine)


# --- Idempotence and existing clients -----------------------------------------------------


async def test_a_second_run_adds_nothing(core: Core, clock: Clock) -> None:
    await run(core, clock)
    before = await snapshot(core)
    clock.advance(hours=2)
    report = await run(core, clock)
    assert (report.clients_added, report.clients_updated, report.clients_unchanged) == (0, 0, 29)
    assert (report.visits_added, report.visits_skipped_existing) == (0, 100)
    assert report.rejected == EXPECTED_REJECTED
    assert "Visits: 0 added, 100 already present." in report.summary()
    assert await counts(core) == (29, 100)
    assert await snapshot(core) == before  # not even consent or opt-in times moved


async def test_clients_from_the_bot_are_updated_without_losing_what_they_chose(
    core: Core, clock: Clock
) -> None:
    earlier = clock.now - timedelta(days=30)
    # Registered in the bot, opted in, later opted out; the file says "да".
    await add_client(
        core,
        name="Дима",
        phone=phone(1),
        telegram_id=777,
        source="telegram",
        consent_at=earlier,
        marketing_opt_in_at=earlier,
        marketing_opt_out_at=earlier + timedelta(days=1),
        staff_notes="Пьёт чай",
        created_at=earlier,
    )
    # Opted in in the bot; the file says "нет".
    await add_client(
        core, name="Тимур", phone=phone(13), consent_at=earlier, marketing_opt_in_at=earlier
    )
    report = await run(core, clock)
    assert (report.clients_added, report.clients_updated, report.clients_unchanged) == (27, 2, 0)
    people = await by_phone(core)
    dima = people[phone(1)]
    assert dima.name == "Дмитрий Орлов"
    assert await chat_id(core, dima.id) == "777"  # the id the person linked in the bot stays
    assert dima.source == "telegram"
    assert dima.consent_at == earlier
    assert dima.marketing_opt_in_at == earlier
    assert not dima.marketing_allowed  # the opt-out stands
    assert dima.staff_notes == "Пьёт чай\nЛюбит короткие виски"
    assert dima.created_at == msk(2026, 4, 14, 12, 0)
    assert dima.completed_visits == 8
    timur = people[phone(13)]
    assert timur.marketing_opt_in_at == earlier  # a "нет" does not withdraw it
    assert timur.name == "Тимур Гусев"

    again = await run(core, clock)
    assert (again.clients_updated, again.clients_unchanged) == (0, 29)
    assert (await by_phone(core))[phone(1)].staff_notes == "Пьёт чай\nЛюбит короткие виски"


async def test_visits_may_refer_to_clients_already_in_the_database(
    core: Core, clock: Clock
) -> None:
    await add_client(core, name="Дмитрий", phone=phone(1), consent_at=clock.now)
    report = await run(core, clock, clients=None)
    assert report.clients_added == 0
    assert report.visits_added == 8  # only client 01 is known
    unknown = [r for r in report.rejected if r.reason.startswith("unknown client")]
    # The other clients' rows that are otherwise fine (without a clients file, client 30
    # is unknown too) and +7 916 999-99-99.
    assert len(unknown) == 101 - 8
    people = await by_phone(core)
    assert people[phone(1)].completed_visits == 8
    assert people[phone(1)].next_visit_due == date(2026, 11, 24)


# --- XLSX ---------------------------------------------------------------------------------


def _read_csv(path: Path, delimiter: str) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def _as_workbook(rows: list[list[str]], path: Path, cells: Any) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(rows[0])
    for row in rows[1:]:
        sheet.append([cells(i, value) for i, value in enumerate(row)])
    book.save(path)
    return path


def _cell_start(value: str) -> Any:
    for fmt in ("%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    return value  # "31.09.2026 18:00" stays text, as Excel would keep it


async def _fresh_core(tmp_path: Path, config: BusinessConfig, name: str) -> Core:
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / name}"))
    async with database.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    return await build_core_on(db=database, config=config)


async def test_xlsx_with_real_date_cells_imports_the_same(
    core: Core, clock: Clock, config: BusinessConfig, tmp_path: Path
) -> None:
    def client_cell(column: int, value: str) -> Any:
        if column == 2 and value and value != "31.02.1990":  # birthday as a date cell
            return _cell_start(value + " 00:00") if "." in value else date.fromisoformat(value)
        if column == 3 and value:
            return int(value)  # telegram id as a number
        return value or None

    def visit_cell(column: int, value: str) -> Any:
        if column == 0 and value.startswith("+7") and value[1:].isdigit():
            return int(value[1:])  # 79163000101 as a number, as Excel keeps phones
        if column == 3:
            return _cell_start(value)
        if column == 4 and value.replace(" ", "").lstrip("-").isdigit():
            return int(value.replace(" ", ""))
        return value or None

    clients_xlsx = _as_workbook(_read_csv(CLIENTS, ";"), tmp_path / "clients.xlsx", client_cell)
    visits_xlsx = _as_workbook(_read_csv(VISITS, ","), tmp_path / "visits.xlsx", visit_cell)
    report = await run(core, clock, clients=clients_xlsx, visits=visits_xlsx)
    assert (report.clients_added, report.visits_added) == (29, 100)
    assert [(r.file, r.line) for r in report.warnings] == [("clients.xlsx", 22)]
    assert [(r.line, r.reason) for r in report.rejected] == [
        (8, "invalid phone '12345'"),
        (14, "unknown master 'Олег'"),
        (28, "unknown service 'Маникюр'"),
        (44, "unreadable date '31.09.2026 18:00' (no such day or time)"),
        (60, "unknown client +79169999999: not in the clients file or the database"),
        (92, "negative price '-500'"),
        (107, "booked visit in the past (20.11.2026 10:00)"),
    ]
    assert {r.file for r in report.rejected} == {"clients.xlsx", "visits.xlsx"}

    from_csv = await _fresh_core(tmp_path, config, "csv.db")
    try:
        await run(from_csv, clock)
        assert await snapshot(core) == await snapshot(from_csv)
    finally:
        await from_csv.close()

    again = await run(core, clock, clients=clients_xlsx, visits=visits_xlsx)
    assert (again.clients_added, again.visits_added, again.visits_skipped_existing) == (0, 0, 100)


async def test_xlsx_with_separate_date_and_time_columns(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Телефон", "Имя"])
    sheet.append([79163000101, "Дмитрий Орлов"])
    book.save(tmp_path / "c.xlsx")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Телефон", "Сотрудник", "Услуга", "Дата", "Время", "Стоимость", "Статус"])
    sheet.append(
        [79163000101, "Илья", "Фейд", date(2026, 11, 10), time(13, 30), 2000.5, "Завершён"]
    )
    book.save(tmp_path / "v.xlsx")
    report = await run(core, clock, clients=tmp_path / "c.xlsx", visits=tmp_path / "v.xlsx")
    assert report.rejected == []
    [visit] = await visits(core)
    assert visit.starts_at == msk(2026, 11, 10, 13, 30)
    assert visit.price == Decimal("2000.50")
    assert visit.status == VisitStatus.completed


# --- Files the importer cannot use --------------------------------------------------------


async def test_a_missing_phone_column_is_a_file_error(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "clients.csv"
    path.write_text("Имя;Дата рождения\nИван;01.02.1990\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as error:
        await run(core, clock, clients=path, visits=None)
    message = str(error.value)
    assert message.startswith("clients.csv: missing column 'phone' (or 'телефон'")
    assert "found columns: 'Имя', 'Дата рождения'" in message
    assert await counts(core) == (0, 0)


async def test_a_file_error_in_the_visits_file_writes_nothing(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "visits.csv"
    path.write_text("phone,service,start\n+79163000101,haircut,2026-11-10 12:00\n")
    with pytest.raises(ImportFileError, match=r"visits.csv: missing column 'master'"):
        await run(core, clock, visits=path)
    assert await counts(core) == (0, 0)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", "old Excel format (.xls): save it as .xlsx or CSV"),
        ("broken.xlsx", b"PK\x03\x04 not really", "not a readable Excel workbook"),
        ("empty.csv", b"", "no header row on line 1"),
        ("twice.csv", "phone,Телефон\n1,2\n".encode(), "columns 'phone' and 'Телефон' both"),
    ],
)
async def test_unusable_files(
    core: Core, clock: Clock, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as error:
        await run(core, clock, clients=path, visits=None)
    assert str(error.value).startswith(f"{name}: {reason}")


async def test_a_missing_file_is_a_file_error(core: Core, clock: Clock, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"^no-such.csv: cannot read the file"):
        await run(core, clock, clients=tmp_path / "no-such.csv", visits=None)


# --- Row checks ---------------------------------------------------------------------------


async def test_row_errors_name_the_problem(core: Core, clock: Clock, tmp_path: Path) -> None:
    await add_client(core, name="Из бота", phone="+79160000001", telegram_id=42)
    clients_csv = tmp_path / "c.csv"
    clients_csv.write_text(
        "phone,name,telegram_id,marketing_opt_in\n"
        "+79160000002,,,\n"  # 2: new client without a name
        "+79160000003,Аркадий,42,\n"  # 3: someone else's telegram id
        "+79160000004,Борис,@boris,\n"  # 4: imported without the chat
        "+79160000005,Вадим,,может быть\n"  # 5: imported, not opted in
        "+79160000006,Гоша,,\n"  # 6: fine
        "8 916 000-00-06,Гоша снова,,\n"  # 7: the same phone again
        "+79160000007,Дима,555,да\n"  # 8: fine
        "+79160000008,Егор,555,\n"  # 9: the same telegram id
        ",Без телефона,,\n",  # 10
        encoding="utf-8",
    )
    visits_csv = tmp_path / "v.csv"
    visits_csv.write_text(
        "phone;master;service;start;price;status\n"
        "+79160000006;artem;haircut;2026-11-30 12:00;;completed\n"  # 2: in the future
        "+79160000006;artem;haircut;2026-11-10 12:00;;maybe\n"  # 3
        "+79160000006;artem;haircut;2026-11-10 12:00;abc;\n"  # 4
        "+79160000006;artem;haircut;2026-11-10;;\n"  # 5: no time
        "+79160000006;artem;haircut;2026-11-10 25:00;;\n"  # 6
        "+79160000006;artem;haircut;2026-11-26 12:00;;booked\n"  # 7: fine
        "+79160000007;artem;fade;2026-11-26 12:30;;booked\n"  # 8: overlaps line 7
        "+79160000006;artem;haircut;2026-11-26 12:00;;booked\n"  # 9: line 7 again
        "+79160000002;artem;haircut;2026-11-10 12:00;;\n"  # 10: its client was rejected
        "+79160000001;ilya;haircut;2026-11-11 13:00;1 500,5 ₽;\n"  # 11: fine, bot client
        ";;;;;\n"  # 12: blank, skipped
        "+79160000006;Олег;Маникюр;вчера;-1;\n"  # 13: everything at once
        "+79160000006;marina;fade;2026-11-27 12:00;;booked\n"  # 14: not her service
        "+79160000006;marina;kids;2026-10-27 12:00;1e9;\n"  # 15
        "+79160000006;marina;kids;2026-10-27 12:00;100000000;\n",  # 16
        encoding="utf-8",
    )
    report = await run(core, clock, clients=clients_csv, visits=visits_csv)
    assert [str(r) for r in report.rejected] == [
        "c.csv:2: missing name for a new client",
        "c.csv:3: telegram_id 42 belongs to another client (+79160000001)",
        "c.csv:7: phone +79160000006 is already on line 6",
        "c.csv:9: telegram_id 555 is already on line 8",
        "c.csv:10: missing phone",
        "v.csv:2: completed visit in the future (30.11.2026 12:00)",
        "v.csv:3: unknown status 'maybe' (use completed, cancelled, no_show or booked)",
        "v.csv:4: unreadable price 'abc'",
        "v.csv:5: no time of day in '2026-11-10' (use YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)",
        "v.csv:6: unreadable date '2026-11-10 25:00' (no such day or time)",
        "v.csv:8: Артём already has a visit at 26.11.2026 12:00",
        "v.csv:9: the same visit as line 7",
        "v.csv:10: client +79160000002 was rejected (c.csv:2)",
        "v.csv:13: unknown master 'Олег'; unknown service 'Маникюр'; unreadable date 'вчера'"
        " (use YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM); negative price '-1'",
        "v.csv:14: Марина does not do 'Фейд'",
        "v.csv:15: unreadable price '1e9'",
        "v.csv:16: price '100000000' is too large",
    ]
    assert [str(r) for r in report.warnings] == [
        "c.csv:4: telegram_id must be a number, got '@boris': imported without it",
        "c.csv:5: marketing_opt_in must be yes or no (1/0, да/нет), got 'может быть' (taken as"
        " no): imported without it",
    ]
    assert (report.clients_added, report.visits_added) == (4, 2)
    vadim = (await by_phone(core))["+79160000005"]
    assert vadim.marketing_opt_in_at is None
    [booked, bot_visit] = await visits(core)
    assert booked.status == VisitStatus.booked
    assert bot_visit.price == Decimal("1500.50")
    people = await by_phone(core)
    assert people["+79160000001"].completed_visits == 1
    assert await chat_id(core, people["+79160000001"].id) == "42"
    assert people["+79160000007"].marketing_opt_in_at == clock.now


async def test_a_booking_that_clashes_with_one_made_in_the_bot_is_rejected(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    client = await add_client(core, name="Из бота", phone="+79160000001")
    start = msk(2026, 11, 26, 12, 0)
    async with core.db.transaction() as session:
        session.add(
            Visit(
                client_id=client.id,  # type: ignore[arg-type]
                master_id=master_id(core, "artem"),
                service_id=service_id(core, "haircut"),
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                created_at=clock.now,
            )
        )
    path = tmp_path / "v.csv"
    path.write_text(
        "phone,master,service,start,status\n"
        "+79160000001,artem,beard,26.11.2026 12:45,booked\n"
        "+79160000001,artem,beard,26.11.2026 13:00,booked\n",
        encoding="utf-8",
    )
    report = await run(core, clock, clients=None, visits=path)
    assert [str(r) for r in report.rejected] == [
        "v.csv:2: Артём already has a visit at 26.11.2026 12:00"
    ]
    assert report.visits_added == 1


async def test_windows_1251_csv_from_a_russian_excel(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes("Телефон;Имя;Рассылка\r\n+7 916 000-00-01;Семён;Да\r\n".encode("cp1251"))
    report = await run(core, clock, clients=path, visits=None)
    assert (report.clients_added, report.rejected) == (1, [])
    [client] = await clients(core)
    assert (client.name, client.marketing_opt_in_at) == ("Семён", clock.now)


async def test_utf16_tab_separated_text_from_excel(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "clients.txt"
    path.write_bytes("Телефон\tИмя\r\n+7 916 000-00-01\tСемён\r\n".encode("utf-16"))
    report = await run(core, clock, clients=path, visits=None)
    assert (report.clients_added, report.rejected) == (1, [])


async def test_summary_without_rejections() -> None:
    report = ImportReport(clients_added=2, visits_added=5, visits_skipped_existing=1)
    assert report.summary() == (
        "Clients: 2 added, 0 updated, 0 unchanged.\n"
        "Visits: 5 added, 1 already present.\n"
        "Rejected rows: none."
    )


# --- Size ---------------------------------------------------------------------------------


async def test_thousands_of_rows_take_seconds(core: Core, clock: Clock, tmp_path: Path) -> None:
    n_clients, per_client = 1500, 4
    clients_csv = tmp_path / "clients.csv"
    visits_csv = tmp_path / "visits.csv"
    with clients_csv.open("w", encoding="utf-8") as c, visits_csv.open("w", encoding="utf-8") as v:
        c.write("phone;name;telegram_id;marketing_opt_in\n")
        v.write("phone,master,service,start\n")
        for i in range(n_clients):
            number = f"+7916{5000000 + i:07d}"
            c.write(f"{number};Клиент {i};{10_000_000 + i};{i % 2}\n")
            for k in range(per_client):
                day = date(2026, 3, 2) + timedelta(days=(i + 40 * k) % 250)
                master = ("artem", "ilya", "marina")[i % 3]
                v.write(
                    f"{number},{master},haircut,{day} {10 + i % 9:02d}:{(i // 9) % 4 * 15:02d}\n"
                )
    started = timer.perf_counter()
    report = await run(core, clock, clients=clients_csv, visits=visits_csv)
    first = timer.perf_counter() - started
    assert report.rejected == []
    assert (report.clients_added, report.visits_added) == (n_clients, n_clients * per_client)
    started = timer.perf_counter()
    again = await run(core, clock, clients=clients_csv, visits=visits_csv)
    second = timer.perf_counter() - started
    assert again.visits_skipped_existing == n_clients * per_client
    assert first < 30 and second < 30, (first, second)  # a few seconds on a laptop


# --- Spreadsheets as shops really keep them ------------------------------------------------


async def test_a_title_above_the_header_is_skipped(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    clients_csv = tmp_path / "c.csv"
    clients_csv.write_text(
        "Клиенты барбершопа на 23.11.2026\n\nТелефон;Имя\n+79160000002;Аркадий\n",
        encoding="utf-8",
    )
    report = await run(core, clock, clients=clients_csv, visits=None)
    assert (report.clients_added, report.rejected) == (1, [])
    assert (await by_phone(core))["+79160000002"].name == "Аркадий"


async def test_the_sheet_with_the_data_is_found_or_named(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Сводка"
    book.active.append(["Всего клиентов", 2])
    data = book.create_sheet("Клиенты")
    data.append(["Выгрузка из журнала"])
    data.append(["Телефон", "Имя"])
    data.append(["+79160000002", "Аркадий"])
    other = book.create_sheet("Старые")
    other.append(["Телефон", "Имя"])
    other.append(["+79160000003", "Борис"])
    path = tmp_path / "clients.xlsx"
    book.save(path)

    # Without --sheet: the first sheet that has the header.
    report = await run(core, clock, clients=path, visits=None)
    assert report.clients_added == 1
    assert set(await by_phone(core)) == {"+79160000002"}
    # --sheet picks another; a wrong name lists the sheets there are.
    report = await run(core, clock, clients=path, visits=None, sheet="Старые")
    assert report.clients_added == 1
    with pytest.raises(ImportFileError) as error:
        await run(core, clock, clients=path, visits=None, sheet="Март")
    assert str(error.value) == (
        "clients.xlsx: no sheet 'Март'; the sheets are 'Сводка', 'Клиенты', 'Старые'"
    )


async def test_a_visit_given_as_a_date_without_a_time_is_refused(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    await add_client(core, name="Из бота", phone="+79160000001")
    book = openpyxl.Workbook()
    book.active.append(["Телефон", "Сотрудник", "Услуга", "Дата", "Статус"])
    book.active.append(["+79160000001", "artem", "haircut", datetime(2026, 11, 10), "completed"])
    book.active.append(
        ["+79160000001", "artem", "haircut", datetime(2026, 11, 11, 12), "completed"]
    )
    path = tmp_path / "visits.xlsx"
    book.save(path)
    report = await run(core, clock, clients=None, visits=path)
    assert [str(r) for r in report.rejected] == [
        "visits.xlsx:2: no time of day in '10.11.2026' (use YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)"
    ]
    assert report.visits_added == 1
