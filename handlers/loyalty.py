""" "My bonus" (the client's status and the stamp card or points, with what lapses when) and
"Invite a friend" (the client's personal link). Shown when business.toml has [loyalty];
the rules are in domain/loyalty.py, the ledger in storage/loyalty.py, the story in
docs/loyalty.md."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

from domain import vocabulary as press
from domain.business import Loyalty
from domain.loyalty import (
    REGULAR_FROM,
    RETURNING_FROM,
    Ledger,
    Status,
    amount_text,
    status_of,
)
from domain.replies import Button, Reply, rows
from domain.vocabulary import Act, Step
from handlers import menu
from handlers.common import menu_button
from handlers.flows import Flow
from handlers.turn import Turn
from storage.loyalty import balance, referral_code_of, vip_client_ids

REFERRAL_PREFIX = "r_"  # /start r_<code>: the deep link of a personal invitation


def _status_lines(turn: Turn, status: Status | None, visits: int) -> list[str]:
    if status is None:
        return [turn._("No visits yet: your status starts with your first visit.")]
    names = {
        Status.new: turn._("new client"),
        Status.returning: turn._("returning client"),
        Status.regular: turn._("regular client"),
        Status.vip: turn._("VIP, one of our best clients"),
    }
    lines = [
        turn._("Your status: {status}.").format(status=names[status]),
        turn.tr.n_("{n} visit with us so far.", "{n} visits with us so far.", visits).format(
            n=visits
        ),
    ]
    if status is Status.new:
        more = RETURNING_FROM - visits
        lines.append(
            turn.tr.n_(
                "{n} more visit and you are a returning client.",
                "{n} more visits and you are a returning client.",
                more,
            ).format(n=more)
        )
    elif status is Status.returning:
        more = REGULAR_FROM - visits
        lines.append(
            turn.tr.n_(
                "{n} more visit and you are a regular client.",
                "{n} more visits and you are a regular client.",
                more,
            ).format(n=more)
        )
    return lines


def _stamp_lines(turn: Turn, programme: Loyalty, ledger: Ledger) -> list[str]:
    every, have = programme.stamps_per_reward, ledger.balance
    reward = programme.reward_title(turn.locale)
    on_card = have % every if have >= 0 else 0
    to_go = every - on_card if have >= 0 else every - have
    lines = [
        turn.tr.n_(
            "Stamp card: {have} of {n} stamp.", "Stamp card: {have} of {n} stamps.", every
        ).format(have=on_card, n=every),
        turn.tr.n_("{n} visit to {reward}.", "{n} visits to {reward}.", to_go).format(
            n=to_go, reward=reward
        ),
    ]
    ready = max(0, have) // every
    if ready:
        lines.append(
            turn.tr.n_(
                "You have {n} reward ready: {reward}.",
                "You have {n} rewards ready: {reward}.",
                ready,
            ).format(n=ready, reward=reward)
        )
        services = [
            service.title(turn.locale)
            for service in turn.catalog.services.values()
            if service.key in programme.reward_services
        ]
        if services:
            lines.append(
                turn._("It comes off your next booking of: {services}.").format(
                    services=", ".join(services)
                )
            )
        else:
            lines.append(turn._("It comes off your next booking."))
    if lapse := ledger.next_lapse:
        moment, amount = lapse
        lines.append(
            turn.tr.n_("{n} stamp lapses on {date}.", "{n} stamps lapse on {date}.", amount).format(
                n=amount, date=turn.tr.day_with_year(turn.tr.local(moment).date())
            )
        )
    lines.append(
        turn.tr.n_(
            "Every visit adds a stamp; stamps are kept for {n} day.",
            "Every visit adds a stamp; stamps are kept for {n} days.",
            programme.valid_days,
        ).format(n=programme.valid_days)
    )
    return lines


def _points_lines(turn: Turn, programme: Loyalty, ledger: Ledger) -> list[str]:
    have = max(0, ledger.balance)
    lines = [
        turn.tr.n_("You have {n} bonus point.", "You have {n} bonus points.", have).format(n=have),
        turn._(
            "1 point = {one}; points pay up to {share} of a visit and come off your next booking."
        ).format(one=turn.tr.money(Decimal(1)), share=f"{programme.points_max_percent}%"),
    ]
    if lapse := ledger.next_lapse:
        moment, amount = lapse
        lines.append(
            turn.tr.n_("{n} point lapses on {date}.", "{n} points lapse on {date}.", amount).format(
                n=amount, date=turn.tr.day_with_year(turn.tr.local(moment).date())
            )
        )
    lines.append(
        turn.tr.n_(
            "Every visit adds {share} of its price in points; points are kept for {n} day.",
            "Every visit adds {share} of its price in points; points are kept for {n} days.",
            programme.valid_days,
        ).format(share=f"{turn.tr.number(programme.points_percent)}%", n=programme.valid_days)
    )
    return lines


async def view_bonus(turn: Turn) -> Reply:
    client, programme = turn.client, turn.config.loyalty
    if programme is None or client is None or client.id is None:
        return await menu.view_menu(turn)
    vip = client.id in await vip_client_ids(session=turn.session, now=turn.now)
    lines = _status_lines(
        turn, status_of(client.completed_visits, vip=vip), client.completed_visits
    )
    ledger = await balance(session=turn.session, client_id=client.id, now=turn.now)
    lines.append("")
    if programme.kind == "stamps":
        lines += _stamp_lines(turn, programme, ledger)
    else:
        lines += _points_lines(turn, programme, ledger)
    buttons = [
        Button(turn._("Book a visit"), press.tap(Act.START_BOOKING)),
        Button(turn._("Invite a friend"), press.tap(Act.INVITE_FRIEND)),
        menu_button(turn),
    ]
    return Reply("\n".join(lines), buttons=rows(buttons), edit=True)


async def press_bonus(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.config.loyalty is None:
        return await menu.stale(turn)
    turn.goto(Step.BONUS)
    return [await view_bonus(turn)]


def whatsapp_link(number: str, text: str) -> str:
    """wa.me/<number> with the message typed in for the person."""
    return f"https://wa.me/{number}?text={quote(text, safe='')}"


async def view_invite(turn: Turn) -> Reply:
    client, programme = turn.client, turn.config.loyalty
    if programme is None or client is None:
        return await menu.view_menu(turn)
    code = await referral_code_of(session=turn.session, client=client)
    payload = REFERRAL_PREFIX + code
    start = f"/start {payload}"
    business = turn.config.business.name
    if programme.referral_reward:
        reward = amount_text(turn.tr, programme.kind, programme.referral_reward)
        lines = [
            turn._(
                "Invite a friend to {business}: when they come for their first visit, you both "
                "get {reward}."
            ).format(business=business, reward=reward)
        ]
    else:
        lines = [turn._("Invite a friend to {business}.").format(business=business)]
    telegram = turn.deps.links.telegram_start(payload)
    number = turn.config.whatsapp.number
    if telegram:
        lines += ["", turn._("Send them this link to the bot in Telegram:"), telegram]
    if number:
        lines += ["", turn._("Or this one for WhatsApp:"), whatsapp_link(number, start)]
    if not telegram and not number:
        lines += ["", turn._("Your friend writes this to the bot: {start}").format(start=start)]
    lines += ["", turn._("Your friend registers through it, and we will know you sent them.")]
    buttons = [Button(turn._("« My bonus"), press.tap(Act.MY_BONUS)), menu_button(turn)]
    return Reply("\n".join(lines), buttons=rows(buttons), edit=True)


async def press_invite(turn: Turn, args: list[str]) -> list[Reply]:
    if turn.config.loyalty is None:
        return await menu.stale(turn)
    turn.goto(Step.INVITE)
    return [await view_invite(turn)]


FLOW = Flow(
    "loyalty",
    views={Step.BONUS: view_bonus, Step.INVITE: view_invite},
    actions={Act.MY_BONUS: press_bonus, Act.INVITE_FRIEND: press_invite},
)
