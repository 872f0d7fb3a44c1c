"""`regulars digest` and `regulars payroll`: the owner's figures in the terminal."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path

from bot.clock import utc_now
from bot.composition import Core
from domain.payroll import MasterPay, month_period, payroll
from domain.slots import local_to_utc
from domain.text import Translator
from scheduler.digest import digest_text, owner_digest, pay_rules
from scheduler.digest_chart import weekly_chart
from storage.digest import paid_visits

EXIT_CONFIG = 2


@dataclass(frozen=True, slots=True)
class DigestRequest:
    as_of: date | None
    json: bool
    chart: Path | None


def owner_translator(core: Core) -> Translator:
    return core.deps.translators[core.config.business.default_locale]


def local_today(core: Core) -> date:
    return utc_now().astimezone(core.config.tz).date()


async def print_digest(core: Core, request: DigestRequest) -> int:
    as_of = request.as_of or local_today(core)
    tr = owner_translator(core)
    async with core.db.reading() as session:
        report = await owner_digest(
            session=session, config=core.config, catalog=core.deps.catalog, as_of=as_of
        )
    if request.json:
        print(json.dumps(report.digest.as_json(), ensure_ascii=False, indent=2))
    else:
        print(digest_text(report, tr))
    if request.chart is not None:
        request.chart.write_bytes(weekly_chart(report.weeks, tr))
    return 0


async def print_payroll(core: Core, *, month: str, as_json: bool) -> int:
    rules = pay_rules(core.config)
    if rules is None:
        print("regulars payroll: add a [payroll] section to business.toml", file=sys.stderr)
        return EXIT_CONFIG
    tz = core.config.tz
    period = month_period(month)
    today = local_today(core)
    async with core.db.reading() as session:
        visits = await paid_visits(
            session=session,
            start=local_to_utc(period.start, time(), tz),
            end=local_to_utc(period.end, time(), tz),
            # A return counts once it happened: visits up to the end of today.
            until=local_to_utc(today + timedelta(days=1), time(), tz),
        )
    masters = {m.id: m.name for m in core.deps.catalog.masters.values()}
    pay = payroll(visits, masters=masters, rules=rules, today=today, tz=tz)
    if as_json:
        document = {"month": month, "as_of": today.isoformat(), "staff": [p.as_json() for p in pay]}
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        tr = owner_translator(core)
        print(tr._("Payroll for {month}, as of {today}").format(month=month, today=tr.day(today)))
        for master in pay:
            print(_pay_text(master, tr))
    return 0


def _pay_text(pay: MasterPay, tr: Translator) -> str:
    return tr._(
        "{name}: visits {visits}, revenue {revenue}, bonus {bonus}\n"
        "   paid now {paid_now}; deferred: released {released}, pending {pending}, "
        "forfeited {forfeited}\n"
        "   win-back bonuses {winback_bonuses} for {winbacks} clients brought back\n"
        "   total {total}"
    ).format(
        name=pay.name,
        visits=pay.visits,
        revenue=tr.money(pay.revenue),
        bonus=tr.money(pay.bonus),
        paid_now=tr.money(pay.paid_now),
        released=tr.money(pay.released),
        pending=tr.money(pay.pending),
        forfeited=tr.money(pay.forfeited),
        winbacks=pay.winbacks,
        winback_bonuses=tr.money(pay.winback_bonuses),
        total=tr.money(pay.total),
    )
