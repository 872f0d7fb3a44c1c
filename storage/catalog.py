"""The shop's services and masters with their hours, synced from business.toml and kept
in memory: they change only when the configuration does (at start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig, localised
from domain.slots import WorkingHours
from storage.tables import Service, Staff, StaffService, WorkingHoursRow


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    id: int
    key: str
    name: str
    name_en: str
    duration: timedelta
    price: Decimal
    return_interval_days: int
    care_tip: str
    care_tip_en: str
    pairs_with: tuple[int, ...] = ()  # services offered with this one at booking

    def title(self, locale: str) -> str:
        return localised(locale, self.name, self.name_en)

    def tip(self, locale: str) -> str:
        return localised(locale, self.care_tip, self.care_tip_en)

    @property
    def minutes(self) -> int:
        return int(self.duration.total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class MasterInfo:
    id: int
    key: str
    name: str
    name_en: str
    role: str
    telegram_id: int | None
    hours: tuple[WorkingHours, ...]
    service_ids: frozenset[int]

    def title(self, locale: str) -> str:
        """The name a client reading `locale` can read: staff texts keep `name`."""
        return localised(locale, self.name, self.name_en)


@dataclass(frozen=True, slots=True)
class Catalog:
    services: dict[int, ServiceInfo]  # in the order of business.toml
    masters: dict[int, MasterInfo]

    def masters_for(self, service_id: int) -> list[MasterInfo]:
        return [m for m in self.masters.values() if service_id in m.service_ids]

    def visit_title(self, service_id: int, addon_id: int | None, locale: str) -> str:
        """'Men's haircut + Beard trim': a visit's service, and the one added at booking."""
        titles = [
            service.title(locale)
            for service in (self.services.get(service_id), self.services.get(addon_id or 0))
            if service is not None
        ]
        return " + ".join(titles) or "—"

    def masters_for_all(self, service_ids: list[int]) -> list[MasterInfo]:
        """The masters who do every one of these services (a visit with an add-on)."""
        return [m for m in self.masters.values() if set(service_ids) <= m.service_ids]

    def same_again(
        self, service_id: int, master_id: int, addon_id: int | None
    ) -> tuple[ServiceInfo, MasterInfo, ServiceInfo | None] | None:
        """A visit's service with its master again, and its add-on when the master still
        does it and it still goes with the service; None when the service or the master is
        no longer offered."""
        service = self.services.get(service_id)
        master = self.masters.get(master_id)
        if service is None or master is None or service.id not in master.service_ids:
            return None
        addon = self.services.get(addon_id or 0)
        if (
            addon is None
            or addon.id not in service.pairs_with
            or addon.id not in master.service_ids
        ):
            addon = None
        return service, master, addon

    def service_by_key(self, key: str) -> ServiceInfo | None:
        return next((s for s in self.services.values() if s.key == key), None)

    def master_by_key(self, key: str) -> MasterInfo | None:
        return next((m for m in self.masters.values() if m.key == key), None)


async def sync_catalog(session: AsyncSession, config: BusinessConfig) -> None:
    """Write services, masters, their services and hours from the configuration.

    Rows are matched by key; what the configuration no longer lists is deactivated, never
    deleted, so past visits keep their service and master.
    """
    services = {s.key: s for s in (await session.exec(select(Service))).all()}
    for item in config.services:
        row = services.get(item.key) or Service(key=item.key, name=item.name, duration_minutes=1)
        row.name, row.name_en = item.name, item.name_en
        row.duration_minutes, row.price = item.duration, item.price
        row.return_interval_days = item.return_interval_days
        row.care_tip, row.care_tip_en, row.active = item.care_tip, item.care_tip_en, True
        session.add(row)
        services[item.key] = row
    for key, row in services.items():
        if config.service(key) is None:
            row.active = False
            session.add(row)

    staff = {s.key: s for s in (await session.exec(select(Staff))).all()}
    # Chats move between keys (a master re-keyed, two ids swapped): free them all first so
    # the unique telegram_id never sees two rows with one id mid-sync.
    bound = {key: person.telegram_id for key, person in staff.items()}
    for person in staff.values():
        person.telegram_id = None
        session.add(person)
    await session.flush()
    named = {m.telegram_id for m in config.masters if m.telegram_id is not None}
    for master in config.masters:
        person = staff.get(master.key) or Staff(key=master.key, name=master.name)
        person.name, person.role, person.active = master.name, master.role, True
        person.source = "config"
        # business.toml names the chat, or else the one an /invite link bound is kept.
        kept = bound.get(master.key)
        person.telegram_id = master.telegram_id or (kept if kept not in named else None)
        session.add(person)
        staff[master.key] = person
    for key, person in staff.items():
        if config.master(key) is not None:
            continue
        if person.source == "invite":  # joined through /invite: not in business.toml
            kept = bound.get(key)
            person.telegram_id = kept if kept not in named else None
        else:
            person.active = False
        session.add(person)
    await session.flush()

    await session.exec(delete(StaffService))
    await session.exec(delete(WorkingHoursRow))
    for master in config.masters:
        staff_id = staff[master.key].id
        assert staff_id is not None
        keys = master.services or [s.key for s in config.services]
        for key in keys:
            service_id = services[key].id
            assert service_id is not None
            session.add(StaffService(staff_id=staff_id, service_id=service_id))
        for hours in config.hours_of(master):
            session.add(
                WorkingHoursRow(
                    staff_id=staff_id, weekday=hours.weekday, opens=hours.opens, closes=hours.closes
                )
            )
    await session.flush()


async def load_catalog(session: AsyncSession, config: BusinessConfig) -> Catalog:
    """Read the active services and masters, ordered as in the configuration."""
    order = {s.key: i for i, s in enumerate(config.services)}
    rows = (await session.exec(select(Service).where(col(Service.active)))).all()
    ids = {row.key: row.id for row in rows if row.id is not None}
    services = {
        row.id: ServiceInfo(
            id=row.id,
            key=row.key,
            name=row.name,
            name_en=row.name_en,
            duration=timedelta(minutes=row.duration_minutes),
            price=row.price,
            return_interval_days=row.return_interval_days,
            care_tip=row.care_tip,
            care_tip_en=row.care_tip_en,
            pairs_with=_pairs(config, row.key, ids),
        )
        for row in sorted(rows, key=lambda r: order.get(r.key, len(order)))
        if row.id is not None
    }
    links: dict[int, set[int]] = {}
    for link in (await session.exec(select(StaffService))).all():
        links.setdefault(link.staff_id, set()).add(link.service_id)
    hours: dict[int, list[WorkingHours]] = {}
    for h in (await session.exec(select(WorkingHoursRow).order_by(col(WorkingHoursRow.id)))).all():
        hours.setdefault(h.staff_id, []).append(WorkingHours(h.weekday, h.opens, h.closes))
    master_order = {m.key: i for i, m in enumerate(config.masters)}
    staff = (
        await session.exec(select(Staff).where(col(Staff.active), Staff.source == "config"))
    ).all()
    masters = {
        row.id: MasterInfo(
            id=row.id,
            key=row.key,
            name=row.name,
            # Read from the configuration, not the table: only clients' texts need it.
            name_en=_master_name_en(config, row.key),
            role=row.role,
            telegram_id=row.telegram_id,
            hours=tuple(hours.get(row.id, ())),
            service_ids=frozenset(links.get(row.id, set()) & services.keys()),
        )
        for row in sorted(staff, key=lambda r: master_order.get(r.key, len(master_order)))
        if row.id is not None
    }
    return Catalog(services=services, masters=masters)


def _master_name_en(config: BusinessConfig, key: str) -> str:
    master = config.master(key)
    return master.name_en if master else ""


def _pairs(config: BusinessConfig, key: str, ids: dict[str, int]) -> tuple[int, ...]:
    """The ids of the active services `pairs_with` names (the configuration's order)."""
    service = config.service(key)
    return tuple(ids[k] for k in (service.pairs_with if service else []) if k in ids)
