"""`regulars export`: clients, visits, feedback and loyalty as CSV files in UTF-8 with a
byte-order mark (so Excel opens Cyrillic names right), and one XLSX workbook on request.
Times are local to the business, money has two decimals."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import Client, Feedback, LoyaltyEntry, Service, Staff, Visit

CLIENT_COLUMNS = (
    "id",
    "name",
    "phone",
    "locale",
    "birthday",
    "source",
    "created_at",
    "marketing_opt_in_at",
    "marketing_opt_out_at",
    "completed_visits",
    "last_visit_at",
    "next_visit_due",
    "staff_notes",
    "preference_note",
    "deleted_at",
)
VISIT_COLUMNS = (
    "id",
    "client_id",
    "phone",
    "master",
    "service",
    "addon",
    "start",
    "status",
    "price",
    "paid_amount",
    "discount",
    "discount_source",
    "source",
    "cancel_reason",
    "comment",
)
FEEDBACK_COLUMNS = (
    "visit_id",
    "client_id",
    "phone",
    "master",
    "rating",
    "comment",
    "status",
    "given_at",
    "resolved_at",
    "resolution",
)
LOYALTY_COLUMNS = (
    "id",
    "client_id",
    "phone",
    "kind",
    "delta",
    "reason",
    "visit_id",
    "created_at",
    "expires_at",
)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: Sequence[str]
    rows: list[list[Any]]


async def export_tables(session: AsyncSession, tz: ZoneInfo) -> list[Table]:
    return [
        await _clients(session, tz),
        await _visits(session, tz),
        await _feedback(session, tz),
        await _loyalty(session, tz),
    ]


def _cell(value: Any, tz: ZoneInfo) -> Any:
    """Local times without an offset: what the shop's clock showed."""
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None, microsecond=0)
    return value


async def _rows(session: AsyncSession, query: Any, tz: ZoneInfo) -> list[list[Any]]:
    result = await (await session.connection()).execute(query)
    return [[_cell(value, tz) for value in row] for row in result.all()]


async def _clients(session: AsyncSession, tz: ZoneInfo) -> Table:
    query = sa_select(*(getattr(Client, name) for name in CLIENT_COLUMNS)).order_by(col(Client.id))
    return Table("clients", CLIENT_COLUMNS, await _rows(session, query, tz))


async def _visits(session: AsyncSession, tz: ZoneInfo) -> Table:
    addon = aliased(Service)  # the service added to the visit's own (pairs_with), if any
    query = (
        sa_select(
            col(Visit.id),
            col(Visit.client_id),
            col(Client.phone),
            col(Staff.name),
            col(Service.name),
            col(addon.name),
            col(Visit.starts_at),
            col(Visit.status),
            col(Visit.price),
            col(Visit.paid_amount),
            col(Visit.discount),
            col(Visit.discount_source),
            col(Visit.source),
            col(Visit.cancel_reason),
            col(Visit.comment),
        )
        .join(Client, col(Client.id) == col(Visit.client_id))
        .join(Staff, col(Staff.id) == col(Visit.master_id))
        .join(Service, col(Service.id) == col(Visit.service_id))
        .outerjoin(addon, col(addon.id) == col(Visit.addon_service_id))
        .order_by(col(Visit.starts_at), col(Visit.id))
    )
    return Table("visits", VISIT_COLUMNS, await _rows(session, query, tz))


async def _feedback(session: AsyncSession, tz: ZoneInfo) -> Table:
    query = (
        sa_select(
            col(Feedback.visit_id),
            col(Visit.client_id),
            col(Client.phone),
            col(Staff.name),
            col(Feedback.rating),
            col(Feedback.comment),
            col(Feedback.status),
            col(Feedback.created_at),
            col(Feedback.resolved_at),
            col(Feedback.resolution),
        )
        .join(Visit, col(Visit.id) == col(Feedback.visit_id))
        .join(Client, col(Client.id) == col(Visit.client_id))
        .join(Staff, col(Staff.id) == col(Visit.master_id))
        .order_by(col(Feedback.created_at), col(Feedback.id))
    )
    return Table("feedback", FEEDBACK_COLUMNS, await _rows(session, query, tz))


async def _loyalty(session: AsyncSession, tz: ZoneInfo) -> Table:
    owner = aliased(Client)
    query = (
        sa_select(
            col(LoyaltyEntry.id),
            col(LoyaltyEntry.client_id),
            col(owner.phone),
            col(LoyaltyEntry.kind),
            col(LoyaltyEntry.delta),
            col(LoyaltyEntry.reason),
            col(LoyaltyEntry.visit_id),
            col(LoyaltyEntry.created_at),
            col(LoyaltyEntry.expires_at),
        )
        .join(owner, col(owner.id) == col(LoyaltyEntry.client_id))
        .order_by(col(LoyaltyEntry.id))
    )
    return Table("loyalty", LOYALTY_COLUMNS, await _rows(session, query, tz))


def write_csv(tables: Iterable[Table], out: Path) -> list[Path]:
    """One `<name>.csv` per table; utf-8-sig writes the BOM Excel looks for."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = out / f"{table.name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.columns)
            writer.writerows([_text(value) for value in row] for row in table.rows)
        written.append(path)
    return written


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return "" if value is None else value


def write_xlsx(tables: Iterable[Table], path: Path) -> Path:
    """One sheet per table, dates as real dates (Excel can sort and filter them)."""
    from openpyxl import Workbook  # only loaded when asked for

    book = Workbook(write_only=True)
    for table in tables:
        sheet = book.create_sheet(table.name)
        sheet.append(list(table.columns))
        for row in table.rows:
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
