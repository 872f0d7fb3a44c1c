"""The sender: claims due outbox rows, composes them, delivers them at the messengers' pace
and records what happened. A crash between claim and send leaves the row `sending`; it is
put back and tried once more, so nothing is lost and at most that one message repeats.

Per message it costs one read transaction (composing) and one write (recording the
outcome, the row's own, so a crash repeats at most one message). What concerns the batch
is done for the batch: one claim, one renewal of the claims when they grow old, and one
give-back of the rows it did not get to (a flood wait, a stop, quiet hours, a chat that
must wait a second)."""

from __future__ import annotations

import asyncio
import logging
import time as clock_time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlmodel import col

from domain.business import BusinessConfig
from domain.retention import KIND_CLASS, MessageClass, send_window_start
from scheduler.delivery import (
    Delivery,
    OptedOut,
    Recipient,
    Refused,
    RetryAfter,
    Transient,
    Unreachable,
)
from scheduler.messages import Messages, Skip
from scheduler.planner import quiet_hours
from storage.db import Database
from storage.guards import opt_out_of_marketing
from storage.identities import mark_unreachable
from storage.outbox import (
    Claim,
    claim_due,
    give_back,
    renew_claims,
    requeue_stale,
    still_claimed,
)
from storage.pace import book_slots, pause_sending
from storage.tables import Client, Outbox, OutboxStatus

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)  # a row `sending` this long belongs to a dead sender
# A claim this old is renewed, for the whole batch at once, before the next delivery: a
# claim younger than this cannot have been taken back as stale (STALE_AFTER is far off).
RENEW_AFTER = timedelta(seconds=15)
RECOVER_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Pace:
    """A messenger's limits for messages the bot starts. Telegram allows about 30 a second
    per bot and one a second per chat; WhatsApp about 80 a second per number (less on low
    tiers) and one every 6 seconds to the same person. We keep below."""

    per_second: float = 25.0
    per_chat_seconds: float = 1.0


TELEGRAM_PACE = Pace(per_second=25.0, per_chat_seconds=1.0)
WHATSAPP_PACE = Pace(per_second=20.0, per_chat_seconds=6.0)


class Pacer:
    def __init__(
        self,
        pace: Pace,
        *,
        monotonic: Callable[[], float] = clock_time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pace = pace
        self.monotonic = monotonic
        self.sleep = sleep
        self._next_global = 0.0
        self._chat_ready: dict[str, float] = {}

    def chat_wait(self, address: str) -> float:
        """Seconds until this chat may get another message (0 when it may now)."""
        return max(0.0, self._chat_ready.get(address, 0.0) - self.monotonic())

    async def take(self, address: str) -> None:
        """Wait for a global slot, then book it and the chat's next one."""
        wait = self._next_global - self.monotonic()
        if wait > 0:
            await self.sleep(wait)
        now = self.monotonic()
        # Keep to the schedule when we are late by less than one interval (a sleep that
        # overshot, a busy machine): booking the next slot from "now" would add every delay
        # to every gap and lose messages each second. The next one then goes sooner, so a
        # second never holds more than one message above the pace.
        interval = 1.0 / self.pace.per_second
        slot = self._next_global if now - self._next_global < interval else now
        self._next_global = slot + interval
        self._book_chat(address, now)

    async def pause(self, seconds: float) -> None:
        """The messenger asked for a pause (the sender waits it out itself)."""

    def _book_chat(self, address: str, now: float) -> None:
        self._chat_ready[address] = now + self.pace.per_chat_seconds
        if len(self._chat_ready) > 10_000:  # forget chats that are long ready
            self._chat_ready = {a: t for a, t in self._chat_ready.items() if t > now}


BLOCK_SECONDS = 0.2  # a replica books this much sending time at once
MAX_WAIT = 1.0  # a slot further off than this: the batch goes back instead of waiting


class PaceWait(Exception):
    """The account's next sending slot is `seconds` away (another replica was asked to
    pause): the batch goes back to the outbox meanwhile."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class SharedPacer(Pacer):
    """A messenger account's pace kept by every replica on one database together: the
    global slots are booked in the database (storage/pace.py), a block of BLOCK_SECONDS at
    a time, so a replica asks the database once per five Telegram messages and two replicas
    together never go faster than one. A slot left unused for longer than one interval is
    dropped, not sent late into another replica's. A pause the messenger asks for holds
    every replica. The one-a-second-per-chat limit stays per process."""

    def __init__(
        self,
        pace: Pace,
        *,
        db: Database,
        channel: str,
        monotonic: Callable[[], float] = clock_time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(pace, monotonic=monotonic, sleep=sleep)
        self.db = db
        self.channel = channel
        self._slots: deque[float] = deque()

    async def take(self, address: str) -> None:
        """Wait for the next slot of the block booked, booking a block when none is left.
        A block further off than MAX_WAIT (another replica's pause) raises PaceWait: the
        sender gives its batch back rather than sit on it. When the database cannot book
        (locked, unreachable), this process paces alone for the moment."""
        interval = 1.0 / self.pace.per_second
        now = self.monotonic()
        while self._slots and now - self._slots[0] >= interval:
            self._slots.popleft()
        if not self._slots:
            count = max(1, round(self.pace.per_second * BLOCK_SECONDS))
            try:
                async with self.db.transaction() as session:
                    ahead = await book_slots(
                        session=session, channel=self.channel, span=count * interval
                    )
                    # Read at once, not after the commit: a slow commit would start the
                    # block late, into the next replica's.
                    start = self.monotonic() + ahead
            except Exception:
                log.warning("could not book %s sending slots; pacing alone", self.channel)
                await super().take(address)
                return
            self._slots.extend(start + n * interval for n in range(count))
        wait = self._slots[0] - self.monotonic()
        if wait > MAX_WAIT:
            raise PaceWait(wait)  # the block stays ours, for when the batch comes back
        self._slots.popleft()
        if wait > 0:
            await self.sleep(wait)
        self._book_chat(address, self.monotonic())

    async def pause(self, seconds: float) -> None:
        self._slots.clear()
        async with self.db.transaction() as session:
            await pause_sending(session=session, channel=self.channel, seconds=seconds)


class _FloodWait(Exception):
    """The messenger asked for a pause: the batch stops here."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


@dataclass
class SendStats:
    outcomes: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, status: str) -> int:
        return self.outcomes[status]


class Sender:
    def __init__(
        self,
        *,
        db: Database,
        config: BusinessConfig,
        messages: Messages,
        channels: Mapping[str, Delivery],
        pacers: Mapping[str, Pacer] | None = None,
        max_attempts: int = 5,
        batch: int = 200,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_sent: Callable[[Outbox, Recipient, datetime], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.messages = messages
        self.channels = channels
        self.pacers = dict(pacers or {})
        self.max_attempts = max_attempts
        self.batch = batch
        self.sleep = sleep
        self.on_sent = on_sent
        self.hours = quiet_hours(config)
        self._last_recovery: datetime | None = None
        self._stopping = False
        self._held: dict[int | None, Outbox] = {}  # claimed by this process, not yet settled
        # Held rows to give back at the end of the batch, and when they fall due.
        self._waiting: dict[int | None, datetime] = {}

    def stop(self) -> None:
        """Claim nothing more; the message being delivered finishes, the rest of the batch
        goes back to the outbox."""
        self._stopping = True

    async def release_held(self, now: datetime) -> int:
        """Put back rows this process claimed and did not settle (a tick cut short at
        shutdown): `pending` again at once (a held one when it falls due), the attempt not
        counted. Returns how many."""
        held = len(self._held)
        await self._give_back_unsettled(now)
        return held

    async def run_once(self, now: Callable[[], datetime]) -> SendStats:
        """Send what is due now; returns the outcomes."""
        stats = SendStats()
        if self._stopping:
            return stats
        moment = now()
        async with self.db.transaction() as session:
            if self._last_recovery is None or moment - self._last_recovery >= RECOVER_EVERY:
                await requeue_stale(
                    session=session, now=moment, after=STALE_AFTER, max_attempts=self.max_attempts
                )
                self._last_recovery = moment
            rows = await claim_due(session=session, now=moment, limit=self.batch)
        self._held.update((row.id, row) for row in rows)
        for row in rows:
            if self._stopping:  # the rest waits in the outbox, for the next process
                break
            try:
                outcome = await self._send_one(row, now())
            except _FloodWait as pause:
                stats.outcomes["paused"] += 1
                # This row and the rest of the batch go back before the pause, so nothing
                # sits claimed while we wait.
                await self._give_back_unsettled(now())
                await self.sleep(pause.seconds)
                return stats
            if row.id not in self._waiting:
                self._held.pop(row.id, None)
            stats.outcomes[outcome] += 1
        await self._give_back_unsettled(now())
        return stats

    async def _give_back_unsettled(self, now: datetime) -> None:
        """Every row still in our hands back to the outbox, in one transaction: a held one
        due when it may go, the others at `now`; one statement per due moment."""
        if not self._held:
            return
        due: dict[datetime, list[Claim]] = {}
        for row_id, row in self._held.items():
            due.setdefault(self._waiting.get(row_id, now), []).append(self._claim(row))
        async with self.db.transaction() as session:
            for at, claims in due.items():
                await give_back(session=session, claims=claims, due_at=at)
        self._held.clear()
        self._waiting.clear()

    @staticmethod
    def _claim(row: Outbox) -> Claim:
        assert row.id is not None and row.claimed_at is not None  # claimed by claim_due
        return (row.id, row.claimed_at)

    def _hold(self, row: Outbox, until: datetime) -> str:
        """Not now: the row goes back, due at `until`, with the rest of the batch."""
        self._waiting[row.id] = until
        return "held"

    async def _send_one(self, row: Outbox, now: datetime) -> str:
        message_class = KIND_CLASS.get(row.kind, MessageClass.transactional)
        if message_class is not MessageClass.staff:
            opens = send_window_start(now, message_class, self.config.tz, self.hours)
            if opens > now:
                return self._hold(row, opens)
        try:
            async with self.db.reading() as session:
                if not await still_claimed(session=session, claim=self._claim(row)):
                    log.warning("outbox row %s was settled or taken over meanwhile", row.id)
                    self._held.pop(row.id, None)
                    return "lost"
                composed = await self.messages.compose(session, row, now)
        except Skip as reason:
            await self._settle(row, OutboxStatus.skipped, error=str(reason))
            return OutboxStatus.skipped
        except Exception as error:  # one broken message must not take the batch down
            log.exception("composing outbox row %s failed", row.id)
            return await self._retry_later(row, now, f"{type(error).__name__}: {error}")
        recipient = composed.recipient
        channel = self.channels.get(recipient.channel)
        if channel is None:
            await self._settle(row, OutboxStatus.skipped, error=f"{recipient.channel} is off")
            return OutboxStatus.skipped
        if not await self._still_ours(row, now):
            return "lost"  # another sender took it back as stale; it sends it
        pacer = self.pacers.get(recipient.channel)
        if pacer is not None:
            wait = pacer.chat_wait(recipient.address)
            if wait > 0:
                return self._hold(row, now + timedelta(seconds=wait))
            try:
                await pacer.take(recipient.address)
            except PaceWait as pause:
                raise _FloodWait(pause.seconds) from None
        try:
            await channel.deliver(recipient, composed.reply)
        except RetryAfter as pause:
            log.warning("%s asks to pause for %s s", recipient.channel, pause.seconds)
            if pacer is not None:
                try:
                    await pacer.pause(pause.seconds)
                except Exception:  # this sender pauses anyway; the others may ask again
                    log.exception("could not share the pause with the other senders")
            raise _FloodWait(pause.seconds) from None
        except Refused as reason:
            await self._settle(
                row, OutboxStatus.skipped, error=str(reason)[:500], channel=recipient.channel
            )
            return OutboxStatus.skipped
        except OptedOut as reason:
            await self._opted_out(recipient, now)
            await self._settle(row, OutboxStatus.skipped, error=f"opted out: {reason}"[:500])
            return OutboxStatus.skipped
        except Unreachable as error:
            await self._unreachable(recipient, now)
            await self._settle(row, OutboxStatus.failed, error=f"unreachable: {error}"[:500])
            return OutboxStatus.failed
        except Transient as error:
            return await self._retry_later(row, now, str(error))
        except Exception as error:  # a bug in an adapter must not strand the batch
            log.exception("delivering outbox row %s failed", row.id)
            return await self._retry_later(row, now, f"{type(error).__name__}: {error}")
        await self._settle(row, OutboxStatus.sent, channel=recipient.channel, sent_at=now)
        if self.on_sent is not None:
            await self.on_sent(row, recipient, now)
        return OutboxStatus.sent

    async def _retry_later(self, row: Outbox, now: datetime, error: str) -> str:
        """Try again after a growing pause (5 s, 10 s, 20 s…), or give up at the limit."""
        if row.attempts >= self.max_attempts:
            await self._settle(row, OutboxStatus.failed, error=error[:500])
            return OutboxStatus.failed
        backoff = timedelta(seconds=min(3600, 5 * 2 ** (row.attempts - 1)))
        await self._release(row, due_at=now + backoff, error=error[:500])
        return "retry"

    def _held_by_us(self, row: Outbox) -> Any:
        """The row is still `sending` under our claim (not requeued by another sender)."""
        return and_(
            col(Outbox.id) == row.id,
            col(Outbox.status) == OutboxStatus.sending,
            col(Outbox.claimed_at) == row.claimed_at,
        )

    async def _still_ours(self, row: Outbox, now: datetime) -> bool:
        """Whether the claim still holds right before delivering (composing checked the
        row was ours). A claim younger than RENEW_AFTER does; an older one is renewed, with
        every claim of the batch, in one statement. False when another sender took the
        row back meanwhile."""
        if row.claimed_at is not None and now - row.claimed_at < RENEW_AFTER:
            return True
        claims = [self._claim(held) for held in self._held.values()]
        async with self.db.transaction() as session:
            renewed = await renew_claims(session=session, claims=claims, now=now)
        for row_id, held in list(self._held.items()):
            if row_id in renewed:
                held.claimed_at = now
            else:
                log.warning("outbox row %s was taken over by another sender", row_id)
                self._held.pop(row_id)
                self._waiting.pop(row_id, None)
        return row.id in renewed

    async def _settle(
        self, row: Outbox, status: str, *, error: str | None = None, **values: object
    ) -> None:
        values = {"last_error": error, **values}
        async with self.db.transaction() as session:
            await session.exec(
                update(Outbox).where(self._held_by_us(row)).values(status=status, **values)
            )

    async def _release(self, row: Outbox, *, due_at: datetime, error: str) -> None:
        """Back to `pending` after a failed attempt, to be tried again at `due_at`."""
        async with self.db.transaction() as session:
            await session.exec(
                update(Outbox)
                .where(self._held_by_us(row))
                .values(status=OutboxStatus.pending, due_at=due_at, last_error=error)
            )

    async def _opted_out(self, recipient: Recipient, now: datetime) -> None:
        if recipient.client_id is None:
            return
        async with self.db.transaction() as session:
            client = await session.get(Client, recipient.client_id)
            if client is not None and opt_out_of_marketing(client, now):
                session.add(client)

    async def _unreachable(self, recipient: Recipient, now: datetime) -> None:
        """Blocked on this messenger: no more messages there; none at all when it was
        the client's only one."""
        if recipient.client_id is None:
            return
        async with self.db.transaction() as session:
            await mark_unreachable(
                session=session,
                client_id=recipient.client_id,
                channel=recipient.channel,
                external_id=recipient.address,
                now=now,
            )
