"""`regulars import`: clients and their visit history from CSV or XLSX (see
docs/architecture.md, "Product tools").

A shop moving to the bot brings its client base and history from a spreadsheet or another
booking system. Each row is checked on its own: a bad row is reported with its file, line
and reason and the rest is imported. A file the importer cannot use at all (unreadable, no
`phone` column…) raises :class:`ImportFileError` before anything is written.

Running the same files again changes nothing: clients are matched by phone (E.164), visits
by (client, master, start). Everything is written in one transaction, so a database error
leaves the database as it was.

Files: CSV in UTF-8 (with or without a BOM; Windows-1251 is accepted too, as Russian Excel
saves it), `,`, `;` or tab as delimiter (taken from the header line), or XLSX (the first
sheet that has the header, or the one named with --sheet; date cells may hold real dates).
The header is the first of the first rows that names every required column (a title above
it is skipped); header names are case-insensitive and Russian aliases are accepted (see
`CLIENT_COLUMNS`, `VISIT_COLUMNS`). A bad optional cell (birthday, telegram_id, opt-in)
costs only that value: the client is imported without it and the report warns.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from domain.people import YEAR_UNKNOWN, parse_birthday
from domain.retention import in_holdout
from domain.slots import local_to_utc
from handlers.registration import normalise_phone
from storage.catalog import Catalog, MasterInfo, ServiceInfo
from storage.stats import refresh_client_stats
from storage.tables import ACTIVE_VISIT, Channel, Client, ClientIdentity, Visit, VisitStatus

if TYPE_CHECKING:
    from bot.composition import Core

__all__ = [
    "CLIENT_COLUMNS",
    "VISIT_COLUMNS",
    "ImportFileError",
    "ImportReport",
    "Rejected",
    "import_files",
]

# Column name -> the header names accepted for it (compared after `_norm`).
CLIENT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "phone": ("phone", "телефон", "номер телефона", "мобильный телефон"),
    "name": ("name", "имя", "фио", "клиент"),
    "birthday": ("birthday", "дата рождения", "день рождения"),
    "telegram_id": ("telegram_id", "telegram", "телеграм"),
    "marketing_opt_in": ("marketing_opt_in", "согласие на рассылку", "рассылка"),
    "notes": ("notes", "комментарий", "заметки", "примечание"),
}
VISIT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "phone": ("phone", "телефон", "номер телефона"),
    "master": ("master", "сотрудник", "мастер"),
    "service": ("service", "услуга"),
    "start": ("start", "дата", "начало", "дата и время"),
    # Optional: when the start column holds only dates, the time of day comes from here.
    "time": ("time", "время"),
    "price": ("price", "стоимость", "цена", "сумма"),
    "status": ("status", "статус"),
}
_REQUIRED_CLIENT = ("phone",)
_REQUIRED_VISIT = ("phone", "master", "service", "start")

_CHUNK = 500  # ids per IN (...) query: well below every backend's parameter limit
_CENT = Decimal("0.01")
_MAX_PRICE = Decimal(10_000_000)  # far above any visit; keeps a typo from reaching the DB

_STATUSES: Mapping[str, VisitStatus] = {
    **dict.fromkeys(
        ("completed", "complete", "done", "завершен", "завершена", "завершено", "выполнен",
         "выполнена", "выполнено", "пришел", "пришла"),
        VisitStatus.completed,
    ),
    **dict.fromkeys(
        ("cancelled", "canceled", "отменен", "отменена", "отменено", "отмена"),
        VisitStatus.cancelled,
    ),
    **dict.fromkeys(
        ("no show", "noshow", "не пришел", "не пришла", "неявка"), VisitStatus.no_show
    ),
    **dict.fromkeys(
        ("booked", "запись", "записан", "записана", "ожидается"), VisitStatus.booked
    ),
    **dict.fromkeys(("confirmed", "подтвержден", "подтверждена"), VisitStatus.confirmed),
}  # fmt: skip
_YES = frozenset({"1", "yes", "y", "true", "да", "д", "+"})
_NO = frozenset({"0", "no", "n", "false", "нет", "н", "-"})

_ISO_START = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_RU_START = re.compile(
    r"^(\d{1,2})[./](\d{1,2})[./](\d{4}|\d{2}),?(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_AMOUNT = re.compile(r"^-?\d+(?:\.\d{1,2})?$")
_CURRENCY = re.compile(r"(?:₽|руб\.?|р\.?|rub)$", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")

Cell = Any  # str | int | float | datetime | date | time | bool | None


class ImportFileError(Exception):
    """A file the importer cannot use at all; nothing has been written."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that was not imported: file name, 1-based line (the header is line 1), why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    clients_added: int = 0
    clients_updated: int = 0
    clients_unchanged: int = 0  # matched by phone, nothing new in the file
    visits_added: int = 0
    visits_skipped_existing: int = 0  # already in the database (an earlier import)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[Rejected] = field(default_factory=list)  # imported, without a bad value

    def summary(self) -> str:
        lines = [
            f"Clients: {self.clients_added} added, {self.clients_updated} updated, "
            f"{self.clients_unchanged} unchanged.",
            f"Visits: {self.visits_added} added, {self.visits_skipped_existing} already present.",
        ]
        if self.rejected:
            lines.append(f"Rejected rows: {len(self.rejected)}")
            lines += [f"  {item}" for item in self.rejected]
        else:
            lines.append("Rejected rows: none.")
        if self.warnings:
            lines.append(f"Imported with a value left out: {len(self.warnings)}")
            lines += [f"  {item}" for item in self.warnings]
        return "\n".join(lines)


# --- Reading files ------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Header and name comparison: case, ё/е, `_`/`-`/spaces and surrounding blanks ignored."""
    text = text.replace("\ufeff", "").lower().replace("ё", "е").replace("_", " ")
    return " ".join(text.replace("-", " ").split())


@dataclass
class _Table:
    file: str
    columns: dict[str, int]  # column name -> index in a row
    rows: list[tuple[int, list[Cell]]]  # (line, cells), blank rows left out

    def get(self, cells: list[Cell], column: str) -> Cell:
        index = self.columns.get(column)
        if index is None or index >= len(cells):
            return None
        value = cells[index]
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


HEADER_WITHIN = 10  # a title or notes above the header row are skipped, this many rows at most


def _read_table(
    path: Path,
    spec: Mapping[str, tuple[str, ...]],
    required: Sequence[str],
    sheet: str | None = None,
) -> _Table:
    """The file's rows under its header row: the first of its first rows that names every
    required column (a title above it is skipped). In a workbook, the named sheet, or the
    first sheet that has such a header."""
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImportFileError(name, f"cannot read the file ({error.strerror or error})") from None
    if path.suffix.lower() == ".xls":
        raise ImportFileError(name, "old Excel format (.xls): save it as .xlsx or CSV")
    if data.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm"):
        sheets = _xlsx_sheets(name, data, sheet)
    else:
        sheets = [("", _csv_records(name, data))]
    problems: list[ImportFileError] = []
    for _, records in sheets:
        try:
            return _table(name, records, spec, required)
        except ImportFileError as error:
            problems.append(error)
    if len(sheets) > 1:
        listed = ", ".join(repr(title) for title, _ in sheets)
        raise ImportFileError(
            name, f"{problems[0].reason} (no sheet has it: {listed}; choose one with --sheet)"
        )
    raise problems[0]


def _columns(name: str, header: list[Cell], aliases: Mapping[str, str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    titles: dict[str, str] = {}
    for index, cell in enumerate(header):
        title = "" if cell is None else str(cell).strip()
        column = aliases.get(_norm(title))
        if column is None:
            continue  # columns the importer does not use are ignored
        if column in columns:
            raise ImportFileError(
                name, f"columns {titles[column]!r} and {title!r} both mean {column!r}"
            )
        columns[column], titles[column] = index, title
    return columns


def _table(
    name: str,
    records: list[tuple[int, list[Cell]]],
    spec: Mapping[str, tuple[str, ...]],
    required: Sequence[str],
) -> _Table:
    filled = [
        (index, cells) for index, (_, cells) in enumerate(records) if any(map(_present, cells))
    ]
    if not filled:
        raise ImportFileError(name, "no header row on line 1 (the file is empty)")
    aliases = {_norm(alias): column for column, names in spec.items() for alias in names}
    for index, cells in filled[:HEADER_WITHIN]:
        columns = _columns(name, cells, aliases)
        if all(column in columns for column in required):
            rows = [(line, row) for line, row in records[index + 1 :] if any(map(_present, row))]
            return _Table(file=name, columns=columns, rows=rows)
    header = filled[0][1]
    columns = _columns(name, header, aliases)
    missing = [column for column in required if column not in columns]
    found = ", ".join(repr(str(c).strip()) for c in header if _present(c)) or "none"
    wanted = "; ".join(f"{c!r} (or {', '.join(map(repr, spec[c][1:]))})" for c in missing)
    raise ImportFileError(name, f"missing column {wanted}; found columns: {found}")


def _present(cell: Cell) -> bool:
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def _csv_records(name: str, data: bytes) -> list[tuple[int, list[Cell]]]:
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")  # Excel's "Unicode text" (tab-separated)
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1251")  # "CSV" saved by a Russian Excel
        except UnicodeDecodeError:
            raise ImportFileError(name, "not a UTF-8 text file (save it as CSV UTF-8)") from None
    # The header line has the most delimiters among the first lines (a title may be above).
    first_lines = text.split("\n", HEADER_WITHIN)[:HEADER_WITHIN]
    delimiter = max((";", ",", "\t"), key=lambda d: max(line.count(d) for line in first_lines))
    if not any(delimiter in line for line in first_lines):
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[Cell]]] = []
    last_line = 0
    try:
        for cells in reader:
            records.append((last_line + 1, list(cells)))  # the line the record starts on
            last_line = reader.line_num
    except csv.Error as error:
        raise ImportFileError(name, f"line {reader.line_num}: {error}") from None
    return records


def _xlsx_sheets(
    name: str, data: bytes, only: str | None
) -> list[tuple[str, list[tuple[int, list[Cell]]]]]:
    """(title, records) of each sheet, or of the one named `only`."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it drops: nothing the import uses.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        raise ImportFileError(name, f"not a readable Excel workbook ({error})") from None
    try:
        if not book.worksheets:
            raise ImportFileError(name, "the workbook has no sheets")
        sheets = book.worksheets
        if only is not None:
            sheets = [s for s in book.worksheets if s.title == only]
            if not sheets:
                titles = ", ".join(repr(s.title) for s in book.worksheets)
                raise ImportFileError(name, f"no sheet {only!r}; the sheets are {titles}")
        return [
            (
                sheet.title,
                [
                    (line, list(values))
                    for line, values in enumerate(sheet.iter_rows(values_only=True), start=1)
                ],
            )
            for sheet in sheets
        ]
    finally:
        book.close()


def _text(cell: Cell) -> str:
    """A cell as text: whole numbers without `.0` (XLSX stores 79161234567 as a number)."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


# --- Values -------------------------------------------------------------------------------


def _yes_no(cell: Cell) -> bool | None:
    """True / False, or None when the value is not a yes or a no."""
    if isinstance(cell, bool):
        return cell
    value = _norm(_text(cell))
    if value in _YES:
        return True
    if value in _NO:
        return False
    return None


def _birthday(cell: Cell, today: date) -> date | None:
    if isinstance(cell, datetime):
        cell = cell.date()
    if isinstance(cell, date):
        return cell if cell <= today and today.year - cell.year <= 120 else None
    return parse_birthday(_text(cell), today=today)


def _telegram_id(cell: Cell) -> int | None:
    if isinstance(cell, bool):
        return None
    if isinstance(cell, float):
        return int(cell) if cell.is_integer() and cell > 0 else None
    text = _text(cell)
    return int(text) if text.isdigit() and int(text) > 0 else None


def _amount(cell: Cell) -> Decimal | None:
    """'1500', '1 500', '1500,50', '1 500.50 ₽', 1500.5 → Decimal; None when unreadable.

    A comma is the decimal separator (Russian), except one followed by exactly three digits
    ('1,500'), which groups thousands; with both a comma and a dot the later one is decimal.
    """
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int | float | Decimal):
        try:
            value = Decimal(str(cell))
        except InvalidOperation:
            return None
        return value.quantize(_CENT, ROUND_HALF_UP) if value.is_finite() else None
    text = _CURRENCY.sub("", _SPACES.sub("", _text(cell)))
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif text.count(",") == 1:
        whole, fraction = text.split(",")
        text = whole + fraction if len(fraction) == 3 else f"{whole}.{fraction}"
    elif text.count(",") > 1:
        text = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text) else "x"
    if not _AMOUNT.match(text):
        return None
    return Decimal(text).quantize(_CENT)


def _wall_time(cell: Cell) -> time | None:
    if isinstance(cell, datetime):
        return cell.time()
    if isinstance(cell, time):
        return cell
    match = _TIME.match(_text(cell))
    if not match:
        return None
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return time(hour, minute, second)
    except ValueError:
        return None


def _start(cell: Cell, time_cell: Cell, has_time_column: bool, tz: ZoneInfo) -> datetime | str:
    """The visit's start as an aware UTC instant, or the reason it cannot be read.

    The start is a local wall time in the business time zone: '2026-11-24 13:00',
    '24.11.2026 13:00' (seconds optional) or an XLSX date-time cell; an ISO value with an
    offset is taken as it is. With a `time` column, the start column may hold just a date.
    """
    raw = _text(cell)
    day: date | None = None
    wall: time | None = None
    if isinstance(cell, datetime):
        if cell.tzinfo is not None:
            return cell.astimezone(UTC)
        # Excel keeps a date typed without a time as midnight: no visit starts then.
        day, wall = cell.date(), (cell.time() if cell.time() != time() else None)
    elif isinstance(cell, date):
        day = cell
    else:
        iso = _ISO_START.match(raw)
        ru = None if iso else _RU_START.match(raw)
        if iso:
            year, month, dd = (int(g) for g in iso.groups()[:3])
            clock = iso.groups()[3:]
        elif ru:
            dd, month, year = (int(g) for g in ru.groups()[:3])
            year += 2000 if year < 100 else 0
            clock = ru.groups()[3:]
        else:
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                return f"unreadable date {raw!r} (use YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)"
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
            year, month, dd = parsed.year, parsed.month, parsed.day
            clock = (str(parsed.hour), str(parsed.minute), str(parsed.second))
        try:
            day = date(year, month, dd)
            if clock[0] is not None:
                wall = time(int(clock[0]), int(clock[1]), int(clock[2] or 0))
        except ValueError:
            return f"unreadable date {raw!r} (no such day or time)"
    if has_time_column and _present(time_cell):
        wall = _wall_time(time_cell)
        if wall is None:
            return f"unreadable time {_text(time_cell)!r} (use HH:MM)"
    if wall is None:
        shown = cell.strftime("%d.%m.%Y") if isinstance(cell, date) else raw
        return f"no time of day in {shown!r} (use YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)"
    return local_to_utc(day, wall, tz)


def _local(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%d.%m.%Y %H:%M")


# --- Rows ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _ClientRow:
    line: int
    phone: str
    name: str | None
    birthday: date | None
    telegram_id: int | None
    opt_in: bool | None
    notes: str | None


@dataclass(slots=True)
class _VisitRow:
    line: int
    phone: str
    master: MasterInfo
    service: ServiceInfo
    start: datetime
    price: Decimal
    status: VisitStatus

    @property
    def end(self) -> datetime:
        return self.start + self.service.duration


class _Rejections:
    def __init__(self) -> None:
        self.items: list[Rejected] = []
        self.warnings: list[Rejected] = []

    def add(self, file: str, line: int, reasons: str | Iterable[str]) -> None:
        text = reasons if isinstance(reasons, str) else "; ".join(reasons)
        self.items.append(Rejected(file, line, text))

    def warn(self, file: str, line: int, reasons: Iterable[str]) -> None:
        """The row was imported, without the values named."""
        self.warnings.append(Rejected(file, line, "; ".join(reasons) + ": imported without it"))


def _phone(cell: Cell, region: str) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, reason)."""
    raw = _text(cell)
    if not raw:
        return None, "missing phone"
    phone = _e164(raw, region)
    return (phone, None) if phone else (None, f"invalid phone {raw!r}")


@lru_cache(maxsize=8192)
def _e164(raw: str, region: str) -> str | None:
    return normalise_phone(raw, region)  # a visits file repeats each phone many times


def _parse_clients(
    table: _Table, *, region: str, today: date, rejections: _Rejections
) -> tuple[list[_ClientRow], dict[str, int]]:
    """The readable rows, and the phones of rejected rows (-> their line)."""
    rows: list[_ClientRow] = []
    rejected_phones: dict[str, int] = {}
    seen: dict[str, int] = {}
    for line, cells in table.rows:
        problems: list[str] = []
        phone, problem = _phone(table.get(cells, "phone"), region)
        if problem:
            problems.append(problem)
        name = table.get(cells, "name")
        name = " ".join(_text(name).split()) or None
        if name is not None and len(name) > 100:
            problems.append("name is longer than 100 characters")
        # A bad optional cell costs only that value: the client is imported without it.
        skipped: list[str] = []
        born = None
        raw = table.get(cells, "birthday")
        if raw is not None:
            born = _birthday(raw, today)
            if born is None:
                skipped.append(f"unreadable birthday {_text(raw)!r} (use DD.MM.YYYY or YYYY-MM-DD)")
        telegram_id = None
        raw = table.get(cells, "telegram_id")
        if raw is not None:
            telegram_id = _telegram_id(raw)
            if telegram_id is None:
                skipped.append(f"telegram_id must be a number, got {_text(raw)!r}")
        opt_in = None
        raw = table.get(cells, "marketing_opt_in")
        if raw is not None:
            opt_in = _yes_no(raw)
            if opt_in is None:
                skipped.append(
                    f"marketing_opt_in must be yes or no (1/0, да/нет), got {_text(raw)!r}"
                    " (taken as no)"
                )
        notes = table.get(cells, "notes")
        notes = _text(notes) or None
        if phone is not None and phone in seen:
            problems.append(f"phone {phone} is already on line {seen[phone]}")
        if problems:
            rejections.add(table.file, line, problems)
            if phone is not None and phone not in seen:
                rejected_phones.setdefault(phone, line)
            continue
        assert phone is not None
        if skipped:
            rejections.warn(table.file, line, skipped)
        seen[phone] = line
        rows.append(_ClientRow(line, phone, name, born, telegram_id, opt_in, notes))
    return rows, rejected_phones


def _lookup(catalog: Catalog) -> tuple[dict[str, MasterInfo], dict[str, ServiceInfo]]:
    """Masters and services by key or name (Russian or English), as `_norm` compares."""
    masters: dict[str, MasterInfo] = {}
    for master in catalog.masters.values():
        for label in (master.key, master.name):
            masters.setdefault(_norm(label), master)
    services: dict[str, ServiceInfo] = {}
    for service in catalog.services.values():
        for label in (service.key, service.name, service.name_en):
            if label:
                services.setdefault(_norm(label), service)
    return masters, services


def _parse_visits(
    table: _Table, *, catalog: Catalog, region: str, tz: ZoneInfo, now: datetime,
    rejections: _Rejections,
) -> list[_VisitRow]:  # fmt: skip
    masters, services = _lookup(catalog)
    has_time = "time" in table.columns
    rows: list[_VisitRow] = []
    for line, cells in table.rows:
        problems: list[str] = []
        phone, problem = _phone(table.get(cells, "phone"), region)
        if problem:
            problems.append(problem)
        raw = _text(table.get(cells, "master"))
        master = masters.get(_norm(raw))
        if master is None:
            problems.append(f"unknown master {raw!r}" if raw else "missing master")
        raw = _text(table.get(cells, "service"))
        service = services.get(_norm(raw))
        if service is None:
            problems.append(f"unknown service {raw!r}" if raw else "missing service")
        start: datetime | None = None
        raw_start = table.get(cells, "start")
        if raw_start is None:
            problems.append("missing start")
        else:
            parsed = _start(raw_start, table.get(cells, "time"), has_time, tz)
            if isinstance(parsed, str):
                problems.append(parsed)
            else:
                start = parsed
        raw_status = _text(table.get(cells, "status"))
        status = _STATUSES.get(_norm(raw_status)) if raw_status else VisitStatus.completed
        if status is None:
            problems.append(
                f"unknown status {raw_status!r} (use completed, cancelled, no_show or booked)"
            )
        price: Decimal | None = None
        raw_price = table.get(cells, "price")
        if raw_price is not None:
            price = _amount(raw_price)
            if price is None:
                problems.append(f"unreadable price {_text(raw_price)!r}")
            elif price < 0:
                problems.append(f"negative price {_text(raw_price)!r}")
            elif price >= _MAX_PRICE:
                problems.append(f"price {_text(raw_price)!r} is too large")
        if start is not None and status is not None:
            if status in ACTIVE_VISIT and start < now:
                problems.append(f"{status} visit in the past ({_local(start, tz)})")
            elif status in (VisitStatus.completed, VisitStatus.no_show) and start > now:
                problems.append(f"{status} visit in the future ({_local(start, tz)})")
        if (
            status in ACTIVE_VISIT
            and master is not None
            and service is not None
            and service.id not in master.service_ids
        ):
            # History is taken as it was; a booking still to come must be one the bot
            # itself could have made, or rescheduling it would offer nothing.
            problems.append(f"{master.name} does not do {service.name!r}")
        if problems:
            rejections.add(table.file, line, problems)
            continue
        assert phone and master and service and start and status
        rows.append(
            _VisitRow(
                line=line,
                phone=phone,
                master=master,
                service=service,
                start=start,
                price=service.price if price is None else price,
                status=status,
            )
        )
    return rows


# --- Writing ------------------------------------------------------------------------------


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def _clients_by_phone(session: AsyncSession, phones: Iterable[str]) -> dict[str, Client]:
    found: dict[str, Client] = {}
    for chunk in _chunks(sorted(set(phones))):
        for client in await session.exec(select(Client).where(col(Client.phone).in_(chunk))):
            if client.phone is not None:
                found[client.phone] = client
    return found


async def _telegram_chats(session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    """Telegram user id -> the id of the client whose chat it is."""
    found: dict[int, int] = {}
    for chunk in _chunks(sorted({str(i) for i in ids})):
        query = select(ClientIdentity.external_id, ClientIdentity.client_id).where(
            ClientIdentity.channel == Channel.telegram, col(ClientIdentity.external_id).in_(chunk)
        )
        for external_id, client_id in (await session.exec(query)).all():
            found[int(external_id)] = client_id
    return found


async def _with_telegram(session: AsyncSession, client_ids: Iterable[int]) -> set[int]:
    """Which of these clients have a Telegram chat already."""
    found: set[int] = set()
    for chunk in _chunks(sorted(set(client_ids))):
        query = select(ClientIdentity.client_id).where(
            ClientIdentity.channel == Channel.telegram, col(ClientIdentity.client_id).in_(chunk)
        )
        found.update((await session.exec(query)).all())
    return found


async def _existing_visits(
    session: AsyncSession, client_ids: Iterable[int]
) -> set[tuple[int, int, datetime]]:
    found: set[tuple[int, int, datetime]] = set()
    for chunk in _chunks(sorted(set(client_ids))):
        query = select(Visit.client_id, Visit.master_id, Visit.starts_at).where(
            col(Visit.client_id).in_(chunk)
        )
        found.update((await session.exec(query)).all())
    return found


async def _busy_from(
    session: AsyncSession, now: datetime
) -> dict[int, list[tuple[datetime, datetime]]]:
    """The masters' active visits that have not ended yet (what a new booking may clash with)."""
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    query = select(Visit.master_id, Visit.starts_at, Visit.ends_at).where(
        col(Visit.status).in_(ACTIVE_VISIT), col(Visit.ends_at) > now
    )
    for master_id, starts_at, ends_at in (await session.exec(query)).all():
        busy[master_id].append((starts_at, ends_at))
    return busy


def _merge_notes(current: str, incoming: str) -> str:
    """The file's notes are added to what staff wrote in the bot, never replacing it."""
    if not current.strip():
        return incoming
    if incoming in current:
        return current
    return f"{current}\n{incoming}"


def _update(client: Client, row: _ClientRow, now: datetime) -> bool:
    """Bring what the file knows into an existing client; True when something changed."""
    before = (
        client.name, client.birthday, client.staff_notes, client.phone_verified,
        client.consent_at, client.marketing_opt_in_at,
    )  # fmt: skip
    if row.name:
        client.name = row.name
    if row.birthday is not None and not (
        row.birthday.year == YEAR_UNKNOWN
        and client.birthday is not None
        and (client.birthday.month, client.birthday.day) == (row.birthday.month, row.birthday.day)
    ):
        client.birthday = row.birthday  # a date without a year never replaces one with it
    if row.notes:
        client.staff_notes = _merge_notes(client.staff_notes, row.notes)
    client.phone_verified = True  # staff entered it
    if client.consent_at is None:
        client.consent_at = now
    if row.opt_in and client.marketing_opt_in_at is None and client.marketing_opt_out_at is None:
        client.marketing_opt_in_at = now  # a "no" never withdraws; an opt-out always stands
    after = (
        client.name, client.birthday, client.staff_notes, client.phone_verified,
        client.consent_at, client.marketing_opt_in_at,
    )  # fmt: skip
    return before != after


async def import_files(
    *,
    core: Core,
    clients: Path | None,
    visits: Path | None,
    now: datetime,
    sheet: str | None = None,
) -> ImportReport:
    """Import a clients file and/or a visits file (docs/architecture.md); see the module doc.

    `now` (aware) is the import time: consent and opt-in times, and what counts as past
    (a booked visit must be in the future, a completed or no-show one in the past).
    Raises ImportFileError, before writing anything, for a file that cannot be used.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if clients is None and visits is None:
        raise ValueError("nothing to import: give a clients file, a visits file or both")
    now = now.astimezone(UTC)
    config, catalog = core.config, core.deps.catalog
    region = config.business.phone_region

    client_table = (
        _read_table(clients, CLIENT_COLUMNS, _REQUIRED_CLIENT, sheet) if clients else None
    )
    visit_table = _read_table(visits, VISIT_COLUMNS, _REQUIRED_VISIT, sheet) if visits else None
    rejections = _Rejections()
    client_rows: list[_ClientRow] = []
    rejected_phones: dict[str, int] = {}
    if client_table:
        today = now.astimezone(config.tz).date()
        client_rows, rejected_phones = _parse_clients(
            client_table, region=region, today=today, rejections=rejections
        )
    visit_rows: list[_VisitRow] = []
    if visit_table:
        visit_rows = _parse_visits(
            visit_table,
            catalog=catalog,
            region=region,
            tz=config.tz,
            now=now,
            rejections=rejections,
        )

    async with core.db.transaction() as session:
        run = _Run(
            session=session,
            config=config,
            now=now,
            rejections=rejections,
            clients_file=client_table.file if client_table else "",
            visits_file=visit_table.file if visit_table else "",
            rejected_phones=rejected_phones,
        )
        await run.load([r.phone for r in client_rows] + [v.phone for v in visit_rows])
        await run.write_clients(client_rows)
        await run.write_visits(visit_rows)
        # Everything is flushed: an empty identity map keeps the per-client UPDATEs of
        # refresh_client_stats from checking every loaded client (quadratic otherwise).
        session.expunge_all()
        await refresh_client_stats(
            session=session,
            tz=config.tz,
            return_days={s.id: s.return_interval_days for s in catalog.services.values()},
            client_ids=run.touched,
        )

    order = {run.clients_file: 0, run.visits_file: 1}
    run.report.rejected = sorted(rejections.items, key=lambda r: (order.get(r.file, 2), r.line))
    run.report.warnings = sorted(rejections.warnings, key=lambda r: (order.get(r.file, 2), r.line))
    return run.report


@dataclass
class _Run:
    """One import inside its transaction."""

    session: AsyncSession
    config: BusinessConfig
    now: datetime
    rejections: _Rejections
    clients_file: str
    visits_file: str
    rejected_phones: dict[str, int]  # phone -> line of its rejected client row
    report: ImportReport = field(default_factory=ImportReport)
    existing: dict[str, Client] = field(default_factory=dict)  # in the database, by phone
    known: dict[str, Client] = field(default_factory=dict)  # visits may refer to these
    touched: set[int] = field(default_factory=set)  # client ids whose figures to refresh

    async def load(self, phones: Iterable[str]) -> None:
        self.existing = await _clients_by_phone(self.session, phones)
        # A number typed in the bot is only a claim: the file's history never joins it.
        self.known = {
            p: c for p, c in self.existing.items() if c.deleted_at is None and c.phone_verified
        }

    def _reject_client(self, row: _ClientRow, reason: str) -> None:
        self.rejections.add(self.clients_file, row.line, reason)
        self.rejected_phones.setdefault(row.phone, row.line)

    async def write_clients(self, rows: Sequence[_ClientRow]) -> None:
        telegram = [r.telegram_id for r in rows if r.telegram_id is not None]
        owners = await _telegram_chats(self.session, telegram)
        with_chat = await _with_telegram(self.session, [c.id for c in self.known.values() if c.id])
        telegram_lines: dict[int, int] = {}
        accepted: list[tuple[Client, int | None]] = []
        for row in rows:
            client = self.existing.get(row.phone)
            if client is not None and client.deleted_at is not None:
                self._reject_client(row, f"client {row.phone} was deleted; not restored")
                continue
            unproven = client is not None and not client.phone_verified
            if (client is None or unproven) and not row.name:
                self._reject_client(row, "missing name for a new client")
                continue
            if client is not None and unproven:
                await self._take_number(client)
                client = None
            tid = row.telegram_id
            if client is not None and client.id in with_chat:
                tid = None  # the chat the person linked in the bot stays
            if tid is not None:
                refusal = await self._telegram_refusal(tid, client, owners, telegram_lines)
                if refusal:
                    self._reject_client(row, refusal)
                    continue
                telegram_lines[tid] = row.line
            if client is None:
                client = self._new_client(row)
                self.report.clients_added += 1
            elif _update(client, row, self.now) or (tid is not None and tid not in owners):
                self.report.clients_updated += 1
            else:
                self.report.clients_unchanged += 1
            self.known[row.phone] = client
            accepted.append((client, tid))
        self.session.add_all([client for client, _ in accepted])
        await self.session.flush()
        for client, tid in accepted:
            if tid is not None and tid not in owners:
                self._add_telegram_chat(client, tid)
        await self.session.flush()
        self.touched.update(c.id for c, _ in accepted if c.id is not None)

    async def _take_number(self, holder: Client) -> None:
        """The shop's list proves the number: whoever typed it in the bot gives it up (and
        is asked for their own next time they write)."""
        holder.phone, holder.phone_verified = None, False
        self.session.add(holder)
        await self.session.flush()

    async def _telegram_refusal(
        self, tid: int, client: Client | None, owners: dict[int, int], lines: dict[int, int]
    ) -> str | None:
        if tid in lines:
            return f"telegram_id {tid} is already on line {lines[tid]}"
        owner = owners.get(tid)
        if owner is not None and (client is None or owner != client.id):
            holder = await self.session.get(Client, owner)
            return f"telegram_id {tid} belongs to another client ({holder and holder.phone})"
        return None

    def _add_telegram_chat(self, client: Client, telegram_id: int) -> None:
        """Staff's word for the chat; it is verified when the person writes from it."""
        assert client.id is not None
        chat = ClientIdentity(
            client_id=client.id,
            channel=Channel.telegram,
            external_id=str(telegram_id),
            verified=False,
            created_at=self.now,
        )
        self.session.add(chat)
        client.preferred_channel = client.preferred_channel or Channel.telegram
        self.session.add(client)

    def _new_client(self, row: _ClientRow) -> Client:
        assert row.name is not None
        return Client(
            name=row.name,
            phone=row.phone,
            phone_verified=True,  # staff entered it
            locale=self.config.business.default_locale,
            birthday=row.birthday,
            source="import",
            staff_notes=row.notes or "",
            consent_at=self.now,  # the business collected them (docs/architecture.md)
            marketing_opt_in_at=self.now if row.opt_in else None,
            holdout=in_holdout(row.phone, self.config.retention.holdout_share),
            created_at=self.now,
        )

    def _unknown_client(self, phone: str) -> str:
        if phone in self.rejected_phones:
            return (
                f"client {phone} was rejected ({self.clients_file}:{self.rejected_phones[phone]})"
            )
        if phone in self.existing and self.existing[phone].deleted_at is None:
            return f"client {phone} did not confirm this number in the bot; list them in clients"
        if phone in self.existing:
            return f"client {phone} was deleted"
        return f"unknown client {phone}: not in the clients file or the database"

    async def write_visits(self, rows: Sequence[_VisitRow]) -> None:
        present = await _existing_visits(
            self.session, [c.id for c in self.existing.values() if c.id is not None]
        )
        busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        if any(v.status in ACTIVE_VISIT for v in rows):
            busy = await _busy_from(self.session, self.now)
        tz, file = self.config.tz, self.visits_file
        lines: dict[tuple[str, int, datetime], int] = {}
        values: list[dict[str, Any]] = []
        first_visit: dict[int, datetime] = {}
        for visit in rows:
            client = self.known.get(visit.phone)
            if client is None or client.id is None:
                self.rejections.add(file, visit.line, self._unknown_client(visit.phone))
                continue
            key = (visit.phone, visit.master.id, visit.start)
            if key in lines:
                self.rejections.add(file, visit.line, f"the same visit as line {lines[key]}")
                continue
            lines[key] = visit.line
            self.touched.add(client.id)
            if (client.id, visit.master.id, visit.start) in present:
                self.report.visits_skipped_existing += 1
                continue
            if visit.status in ACTIVE_VISIT:
                taken = busy[visit.master.id]
                clash = next((s for s, e in taken if s < visit.end and e > visit.start), None)
                if clash is not None:
                    reason = f"{visit.master.name} already has a visit at {_local(clash, tz)}"
                    self.rejections.add(file, visit.line, reason)
                    continue
                taken.append((visit.start, visit.end))
            values.append(_visit_values(client.id, visit, self.now))
            if visit.start < first_visit.get(client.id, visit.start + timedelta(seconds=1)):
                first_visit[client.id] = visit.start

        for client in self.known.values():
            first = first_visit.get(client.id) if client.id is not None else None
            if first is not None and first < client.created_at:
                client.created_at = first  # a client since their first visit
                self.session.add(client)
        await self.session.flush()
        for chunk in _chunks(values):
            await self.session.exec(insert(Visit), params=list(chunk))
        self.report.visits_added = len(values)


def _visit_values(client_id: int, visit: _VisitRow, now: datetime) -> dict[str, Any]:
    completed = visit.status == VisitStatus.completed
    return {
        "client_id": client_id,
        "master_id": visit.master.id,
        "service_id": visit.service.id,
        "starts_at": visit.start,
        "ends_at": visit.end,
        "status": str(visit.status),
        "price": visit.price,
        "paid_amount": visit.price if completed else None,
        "discount": None,
        "source": "import",
        # Booked before it began (history) or now (a future booking from the old system).
        "created_at": min(visit.start, now),
        "confirmed_at": None,
        "cancelled_at": min(visit.start, now) if visit.status == VisitStatus.cancelled else None,
        "cancel_reason": None,
        "completed_at": visit.end if completed else None,
        "comment": "",
    }
