"""The owner's digest as a person reads it: the figures of domain/digest.py for a local
date, the text that leads with what needs action, and the chart. Used by the `digest`
message and by `regulars digest`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from domain.digest import (
    Digest,
    DigestWindows,
    MasterFigures,
    WeekPoint,
    digest_of,
    masters_with_fewer_returns,
)
from domain.payroll import PayRules, WeeklyReturnPay, weekly_return_pay
from domain.replies import Image, Reply
from domain.text import Translator
from scheduler.digest_chart import weekly_chart
from storage.catalog import Catalog
from storage.digest import DueClient, digest_facts, due_without_booking

SHOWN = 5  # names listed under an action line; the rest is a count


@dataclass(frozen=True, slots=True)
class OwnerDigest:
    digest: Digest
    weeks: list[WeekPoint]
    fewer_returns: list[tuple[MasterFigures, MasterFigures]]
    due_count: int
    due: list[DueClient]
    pay: list[WeeklyReturnPay] | None  # None without [payroll]
    masters: Mapping[int, str]


def pay_rules(config: BusinessConfig) -> PayRules | None:
    payroll = config.payroll
    if payroll is None:
        return None
    return PayRules(
        bonus_percent=payroll.bonus_percent,
        return_share=payroll.return_share,
        return_within_days=payroll.return_within_days,
        winback_bonus=payroll.winback_bonus,
        sleeping_after_days=config.retention.sleeping_after_days,
    )


async def owner_digest(
    *, session: AsyncSession, config: BusinessConfig, catalog: Catalog, as_of: date
) -> OwnerDigest:
    """Everything the owner sees for the week before `as_of` (a local date)."""
    tz = config.tz
    windows = DigestWindows.of(as_of, tz, sleeping_after_days=config.retention.sleeping_after_days)
    facts = await digest_facts(session=session, windows=windows)
    masters = {master.id: master.name for master in catalog.masters.values()}
    digest = digest_of(facts, as_of=as_of, tz=tz, masters=masters)
    # Who is due in the coming seven days counts from the real state: the bookings now.
    due_count, due = await due_without_booking(
        session=session, first=as_of, last=as_of + timedelta(days=6), limit=SHOWN
    )
    rules = pay_rules(config)
    pay = None
    if rules is not None:
        pay = weekly_return_pay(
            facts.visits, period=digest.period, masters=masters, rules=rules, tz=tz
        )
    return OwnerDigest(
        digest=digest,
        weeks=list(facts.weeks),
        fewer_returns=masters_with_fewer_returns(facts.visits, as_of, tz, masters),
        due_count=due_count,
        due=due,
        pay=pay,
        masters=masters,
    )


def digest_text(report: OwnerDigest, tr: Translator) -> str:
    """The digest in the owner's language: what needs action first, then the figures."""
    d = report.digest
    lines = [
        tr._("Week {start} – {end}").format(
            start=tr.day(d.period.start), end=tr.day(d.period.last)
        ),
        "",
    ]
    lines += _actions(report, tr) or [tr._("Nothing needs your attention this week.")]
    lines += ["", *_figures(d, tr), "", tr._("Masters:")]
    lines += [_master_line(master, tr) for master in d.staff]
    if report.pay is not None:
        lines += ["", tr._("Return bonus this week:")]
        lines += [_pay_line(report.masters[p.master_id], p, tr) for p in report.pay]
    return "\n".join(lines)


def _actions(report: OwnerDigest, tr: Translator) -> list[str]:
    lines = []
    complaints = report.digest.open_complaints
    if complaints:
        lines.append(
            "❗ "
            + tr.n_("{n} open complaint:", "{n} open complaints:", len(complaints)).format(
                n=len(complaints)
            )
        )
        for item in complaints[:SHOWN]:
            comment = f" “{item.comment}”" if item.comment else ""
            lines.append(f"   {item.client_name}, {'★' * item.rating}{comment}")
    if report.due_count:
        lines.append(
            "📅 "
            + tr.n_(
                "{n} client is due this week with nothing booked:",
                "{n} clients are due this week with nothing booked:",
                report.due_count,
            ).format(n=report.due_count)
        )
        lines += [f"   {c.name}, {tr.day(c.due)}" for c in report.due]
        if report.due_count > len(report.due):
            rest = report.due_count - len(report.due)
            lines.append("   " + tr.n_("and {n} more", "and {n} more", rest).format(n=rest))
    for now, before in report.fewer_returns:
        lines.append(
            "📉 "
            + tr._("{master}: returns fell to {now} from {before} the week before").format(
                master=now.name, now=now.returns, before=before.returns
            )
        )
    return lines


def _figures(d: Digest, tr: Translator) -> list[str]:
    segments = d.as_json()["segments"]
    winback = d.winback
    return [
        tr._("Visits: {n}, revenue {revenue}, average check {check}").format(
            n=d.visits_completed, revenue=tr.money(d.revenue), check=tr.money(d.average_check)
        ),
        tr._("New clients: {n}; visits by returning clients: {share}").format(
            n=d.new_clients, share=tr.percent(d.returning_share)
        ),
        tr._("No-shows: {n} ({rate}); cancellations: {cancelled}").format(
            n=d.no_shows, rate=tr.percent(d.no_show_rate), cancelled=d.cancellations
        ),
        tr._("Ratings: {n}, average {average}, {low} of them 3 or lower").format(
            n=d.ratings, average=tr.number(d.rating_average), low=d.low_ratings
        ),
        tr._("Clients: {hot} hot, {warm} warm, {sleeping} sleeping, {prospects} prospects").format(
            **segments
        ),
        tr._("Came a second time within 60 days: {rate}").format(
            rate=tr.percent(d.second_visit_rate)
        ),
        tr._(
            "Win-back: {offered} offered, {returned} came back; "
            "{held} held out, {held_returned} came back; effect {uplift}"
        ).format(
            offered=winback.offered,
            returned=winback.offered_returned,
            held=winback.held_out,
            held_returned=winback.held_out_returned,
            uplift=tr.percent(winback.uplift),
        ),
        tr._("The top fifth of clients by revenue bring {share} of the year's revenue").format(
            share=tr.percent(d.pareto_top20_share)
        ),
    ]


def _master_line(master: MasterFigures, tr: Translator) -> str:
    return tr._(
        "{name}: visits {visits}, revenue {revenue}, rating {rating}, returns {returns}"
    ).format(
        name=master.name,
        visits=master.visits,
        revenue=tr.money(master.revenue),
        rating=tr.number(master.rating_average),
        returns=master.returns,
    )


def _pay_line(name: str, pay: WeeklyReturnPay, tr: Translator) -> str:
    return tr._(
        "{name}: {released} released by returns ({returns}), {bonus} for win-backs ({winbacks})"
    ).format(
        name=name,
        released=tr.money(pay.released),
        returns=pay.returns_released,
        bonus=tr.money(pay.winback_bonuses),
        winbacks=pay.winbacks,
    )


async def digest_reply(
    *,
    session: AsyncSession,
    config: BusinessConfig,
    catalog: Catalog,
    tr: Translator,
    as_of: date,
) -> Reply:
    """The `digest` message: the text with the chart as a picture."""
    report = await owner_digest(session=session, config=config, catalog=catalog, as_of=as_of)
    chart = Image(weekly_chart(report.weeks, tr), f"digest-{as_of.isoformat()}.png")
    return Reply(digest_text(report, tr), kind="digest", image=chart)
