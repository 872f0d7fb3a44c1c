"""The loyalty ledger in the database: reading a client's balance (and recording what has
lapsed), keeping the ledger in step with a visit's status, the discounts a booking may
get, VIP clients, and referral codes. The rules are in domain/loyalty.py; the story in
docs/loyalty.md.

Whoever changes a visit's status calls `settle_visit` in the same transaction: the
ledger then holds exactly what that status means (an earning for a completed visit and
none otherwise, a spend for a booked visit paid with a reward or points, the referral
reward on a friend's first completed visit). Calling it twice changes nothing.
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import bindparam
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig, Loyalty
from domain.loyalty import (
    Discount,
    Entry,
    Ledger,
    birthday_gift_covers,
    earned_by_visit,
    percent_off,
    points_discount,
    replay,
    vip_ids,
)
from storage.entities import LOYALTY_ENTRY, OUTBOX
from storage.outbox import enqueue, winback_percent
from storage.prepared import Prepared, any_of, items, one_of
from storage.tables import (
    ACTIVE_VISIT,
    ChurnReason,
    Client,
    LedgerKind,
    LoyaltyEntry,
    Outbox,
    OutboxStatus,
    Visit,
    VisitStatus,
)

# Why an entry was written (LoyaltyEntry.reason).
VISIT = "visit"  # earned by a completed visit
REFERRAL = "referral"  # a friend's first completed visit, for the friend and the referrer
REWARD = "reward"  # stamps spent on the stamp card's reward
POINTS = "points"  # points spent as a discount
EXPIRY = "expiry"
PAID_FROM_LEDGER = (REWARD, POINTS)
# A visit that holds its discount: the offer is used, the reward or the points spent.
HOLDS_DISCOUNT = (*ACTIVE_VISIT, VisitStatus.completed)

CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
CODE_LENGTH = 8
_CODE = re.compile(r"^[a-z0-9]{4,16}$")
YEAR = timedelta(days=365)


def _entry(row: LoyaltyEntry) -> Entry:
    return Entry(
        id=row.id or 0,
        kind=row.kind,
        delta=row.delta,
        created_at=row.created_at,
        expires_at=row.expires_at,
        visit_id=row.visit_id,
    )


ENTRIES_OF = Prepared(
    lambda: (
        select(*LOYALTY_ENTRY.columns)
        .where(col(LoyaltyEntry.client_id) == bindparam("client_id"))
        .order_by(col(LoyaltyEntry.id))
    )
)


async def entries_of(*, session: AsyncSession, client_id: int) -> list[LoyaltyEntry]:
    return await ENTRIES_OF.load_all(session, LOYALTY_ENTRY, client_id=client_id)


async def balance(*, session: AsyncSession, client_id: int, now: datetime) -> Ledger:
    """The client's ledger as of `now`. What has lapsed since the last look is written as
    an `expire` entry dated `now`, so the sum of the entries is the balance again."""
    rows = await entries_of(session=session, client_id=client_id)
    ledger = replay((_entry(row) for row in rows), now)
    if ledger.pending_expiry:
        session.add(
            LoyaltyEntry(
                client_id=client_id,
                kind=LedgerKind.expire,
                delta=-ledger.pending_expiry,
                reason=EXPIRY,
                created_at=now,
            )
        )
        await session.flush()
    return ledger


def _write(
    session: AsyncSession,
    *,
    client_id: int,
    visit_id: int | None,
    kind: LedgerKind,
    delta: int,
    reason: str,
    now: datetime,
    programme: Loyalty | None = None,
) -> None:
    expires_at = now + timedelta(days=programme.valid_days) if programme else None
    session.add(
        LoyaltyEntry(
            client_id=client_id,
            visit_id=visit_id,
            kind=kind,
            delta=delta,
            reason=reason,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def settle_visits(
    *, session: AsyncSession, config: BusinessConfig, visit_ids: Iterable[int], now: datetime
) -> None:
    """`settle_visit` for visits changed in bulk (the 23:00 completion)."""
    ids = sorted(set(visit_ids))
    if config.loyalty is None or not ids:
        return
    for start in range(0, len(ids), 500):
        query = (
            select(Visit)
            .where(col(Visit.id).in_(ids[start : start + 500]))
            .execution_options(populate_existing=True)
        )
        for visit in (await session.exec(query)).all():
            await settle_visit(session=session, config=config, visit=visit, now=now)


async def settle_visit(
    *, session: AsyncSession, config: BusinessConfig, visit: Visit, now: datetime
) -> None:
    """Bring the ledger in line with the visit's status (see the module's docstring)."""
    programme = config.loyalty
    if programme is None or visit.id is None:
        return
    await session.flush()
    rows = (await session.exec(select(LoyaltyEntry).where(LoyaltyEntry.visit_id == visit.id))).all()
    net: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        net[(row.client_id, row.reason)] += row.delta
    done = visit.status == VisitStatus.completed
    await _settle_earning(session, programme, visit, net[(visit.client_id, VISIT)], done, now)
    await _settle_spend(session, programme, visit, net, now)
    if done:
        if programme.referral_reward and not net[(visit.client_id, REFERRAL)]:
            await _referral_reward(session, programme, visit, now)
    else:
        for (client_id, reason), amount in net.items():
            if reason == REFERRAL and amount > 0:  # the friend's first visit did not happen
                _write(
                    session,
                    client_id=client_id,
                    visit_id=visit.id,
                    kind=LedgerKind.reverse,
                    delta=-amount,
                    reason=REFERRAL,
                    now=now,
                )
    await session.flush()


async def _settle_earning(
    session: AsyncSession, programme: Loyalty, visit: Visit, earned: int, done: bool, now: datetime
) -> None:
    if done and earned <= 0:
        paid = visit.paid_amount if visit.paid_amount is not None else visit.price
        amount = earned_by_visit(
            kind=programme.kind, paid=paid, points_percent=programme.points_percent
        )
        if amount > 0:
            _write(
                session,
                client_id=visit.client_id,
                visit_id=visit.id,
                kind=LedgerKind.earn,
                delta=amount,
                reason=VISIT,
                now=now,
                programme=programme,
            )
    elif not done and earned:  # a completed visit turned out a no-show
        _write(
            session,
            client_id=visit.client_id,
            visit_id=visit.id,
            kind=LedgerKind.reverse,
            delta=-earned,
            reason=VISIT,
            now=now,
        )


async def _settle_spend(
    session: AsyncSession,
    programme: Loyalty,
    visit: Visit,
    net: dict[tuple[int, str], int],
    now: datetime,
) -> None:
    holds = visit.status in HOLDS_DISCOUNT and visit.discount_source in PAID_FROM_LEDGER
    for reason in PAID_FROM_LEDGER:
        spent = -net[(visit.client_id, reason)]
        if holds and reason == visit.discount_source and spent <= 0:
            await balance(session=session, client_id=visit.client_id, now=now)
            amount = programme.stamps_per_reward if reason == REWARD else int(visit.discount or 0)
            if amount > 0:
                _write(
                    session,
                    client_id=visit.client_id,
                    visit_id=visit.id,
                    kind=LedgerKind.spend,
                    delta=-amount,
                    reason=reason,
                    now=now,
                )
        elif spent > 0 and not (holds and reason == visit.discount_source):
            _write(  # cancelled or a no-show: the reward or the points come back
                session,
                client_id=visit.client_id,
                visit_id=visit.id,
                kind=LedgerKind.reverse,
                delta=spent,
                reason=reason,
                now=now,
            )


async def _referral_reward(
    session: AsyncSession, programme: Loyalty, visit: Visit, now: datetime
) -> None:
    """Both get the reward on the friend's first completed visit, once per friend; the
    referrer is told (`referral_reward`)."""
    friend = await session.get(Client, visit.client_id)
    if friend is None or friend.id is None or friend.referred_by_id is None:
        return
    referrer = await session.get(Client, friend.referred_by_id)
    if referrer is None or referrer.id is None or referrer.deleted_at is not None:
        return
    if referrer.id == friend.id:
        return
    earlier = await session.exec(
        select(func.count()).where(
            Visit.client_id == friend.id,
            Visit.status == VisitStatus.completed,
            Visit.id != visit.id,
        )
    )
    if int(earlier.one()):
        return  # not the first visit
    rewarded = await session.exec(
        select(func.coalesce(func.sum(LoyaltyEntry.delta), 0)).where(
            LoyaltyEntry.client_id == friend.id, LoyaltyEntry.reason == REFERRAL
        )
    )
    if int(rewarded.one()) > 0:
        return
    for client_id in (friend.id, referrer.id):
        _write(
            session,
            client_id=client_id,
            visit_id=visit.id,
            kind=LedgerKind.earn,
            delta=programme.referral_reward,
            reason=REFERRAL,
            now=now,
            programme=programme,
        )
    await session.flush()
    await enqueue(
        session=session,
        rows=[
            {
                "kind": "referral_reward",
                "client_id": referrer.id,
                "due_at": now,
                "dedupe_key": f"referral_reward:friend:{friend.id}",
                "payload": {
                    "friend_id": friend.id,
                    "visit_id": visit.id,
                    "amount": programme.referral_reward,
                },
            }
        ],
        now=now,
    )


# --- discounts at booking --------------------------------------------------------------


async def discounts_for(
    *,
    session: AsyncSession,
    config: BusinessConfig,
    client: Client,
    service_key: str,
    price: Decimal,
    start: datetime,
    now: datetime,
) -> list[Discount]:
    """Every discount a visit of `service_key` at `start` may have, offers first (see
    `domain.loyalty.best_discount`): the birthday gift and the win-back discount while
    they are valid and unused, and the stamp card's reward or the points."""
    assert client.id is not None
    offers: list[Discount] = []
    day = start.astimezone(config.tz).date()
    kinds = ["winback"] if not client.holdout else []  # the holdout is the control group
    if config.offers.birthday_discount_percent and client.birthday is not None:
        kinds.append("birthday")
    for row in await _sent(session, client.id, kinds):
        if row.kind == "birthday" and client.birthday is not None:
            percent = config.offers.birthday_discount_percent
            greeted = (row.sent_at or row.due_at).astimezone(config.tz).date()
            if birthday_gift_covers(
                born=client.birthday,
                greeted_on=greeted,
                visit_day=day,
                valid_days=config.offers.birthday_valid_days,
            ):
                offers.append(Discount(f"birthday:{row.id}", percent_off(price, percent), percent))
        elif row.kind == "winback":
            promised = await _winback_promised(session, row, config)
            if day <= promised + timedelta(days=config.offers.offer_valid_days):
                percent = winback_percent(row, config)
                offers.append(Discount(f"winback:{row.id}", percent_off(price, percent), percent))
    if offers:
        used = await _used_sources(session, client.id)
        offers = [offer for offer in offers if offer.source not in used]
    found = sorted(offers, key=lambda offer: offer.reason != "birthday")
    programme = config.loyalty
    if programme is not None:
        ledger = await balance(session=session, client_id=client.id, now=now)
        if programme.kind == "stamps":
            fits = not programme.reward_services or service_key in programme.reward_services
            if fits and ledger.balance >= programme.stamps_per_reward:
                amount = percent_off(price, programme.reward_percent)
                found.append(
                    Discount(REWARD, amount, programme.reward_percent, programme.stamps_per_reward)
                )
        else:
            points = points_discount(
                balance=ledger.balance, price=price, max_percent=programme.points_max_percent
            )
            if points:
                found.append(Discount(POINTS, Decimal(points), None, points))
    return found


async def _used_sources(session: AsyncSession, client_id: int) -> set[str]:
    """The offers already taken by a visit that holds them (a cancelled one gives back)."""
    rows = await USED_SOURCES.fetch(session, client_id=client_id)
    return {source for (source,) in rows if source}


USED_SOURCES = Prepared(
    lambda: select(col(Visit.discount_source)).where(
        col(Visit.client_id) == bindparam("client_id"),
        col(Visit.discount_source).is_not(None),
        one_of(col(Visit.status), HOLDS_DISCOUNT),
    )
)


async def _sent(session: AsyncSession, client_id: int, kinds: list[str]) -> list[Outbox]:
    """The client's messages of these kinds that were sent (not held out, not skipped)."""
    if not kinds:
        return []
    return await _sent_query(len(kinds)).load_all(
        session, OUTBOX, client_id=client_id, **items("kind", kinds)
    )


@lru_cache(maxsize=8)
def _sent_query(kinds: int) -> Prepared:
    return Prepared(
        lambda: (
            select(*OUTBOX.columns)
            .where(
                col(Outbox.client_id) == bindparam("client_id"),
                any_of(col(Outbox.kind), "kind", kinds),
                col(Outbox.status) == OutboxStatus.sent,
            )
            .order_by(col(Outbox.id))
        )
    )


async def _winback_promised(session: AsyncSession, row: Outbox, config: BusinessConfig) -> date:
    """The day a win-back's validity counts from: the day it was sent, or the day the
    client answered it (the answer repeats the offer)."""
    answered = await session.exec(
        select(ChurnReason.created_at).where(ChurnReason.outbox_id == row.id)
    )
    moments = [row.sent_at or row.due_at, *answered.all()]
    return max(moments).astimezone(config.tz).date()


# --- VIP ---------------------------------------------------------------------------------


async def vip_client_ids(*, session: AsyncSession, now: datetime) -> set[int]:
    """The VIP segment: the top 20 % of clients (not deleted) by what their completed
    visits of the 365 days before `now` brought (`domain.loyalty.vip_ids`). For the closed
    offers of /broadcast (segment "vip"), "My bonus" and the client card."""
    from storage.clients import spend_by_client  # the one query of what clients spent

    return vip_ids(await spend_by_client(session=session, since=now - YEAR, until=now))


# --- referrals ---------------------------------------------------------------------------


def read_code(text: str) -> str | None:
    """A referral code as typed or carried by a link, or None when it cannot be one."""
    code = text.strip().lower()
    return code if _CODE.match(code) else None


async def referral_code_of(*, session: AsyncSession, client: Client) -> str:
    """The client's personal code, made the first time it is asked for."""
    if client.referral_code:
        return client.referral_code
    code = ""
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if await client_by_code(session=session, code=code) is None:
            break
    client.referral_code = code
    session.add(client)
    await session.flush()
    return code


async def client_by_code(*, session: AsyncSession, code: str) -> Client | None:
    return (await session.exec(select(Client).where(Client.referral_code == code))).first()
