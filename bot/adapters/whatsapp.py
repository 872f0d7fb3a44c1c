"""The WhatsApp channel: webhooks in (read by bot/adapters/whatsapp_inbound.py), a
conversation turn per message, one chat at a time and each message at most once, replies
out (bot/adapters/whatsapp_outbound.py), and delivery failures recorded in storage/. What
to say is decided in `handlers/`.

The webhook is ours (aiohttp, on the shared server of bot/web.py): pywa is used as the
Graph API client and for its error types, not as a server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web
from pywa_async import WhatsApp
from pywa_async.errors import WhatsAppError

from bot.adapters.common import ChatLocks
from bot.adapters.whatsapp_inbound import Failure, Incoming, is_fresh, read_update
from bot.adapters.whatsapp_outbound import (
    MARKETING_STOPPED,
    UNREACHABLE_CODES,
    Outgoing,
    Translators,
)
from bot.clock import Clock, utc_now
from domain.replies import Reply
from handlers.events import Event, Inbound, Text
from storage.identities import whatsapp_stopped_marketing, whatsapp_unreachable
from storage.processed import mark_handled

if TYPE_CHECKING:
    from bot.composition import Core
    from storage.db import Database

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
WEBHOOK_PATH = "/webhook/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
DRAIN_SECONDS = 10.0  # how long shutdown waits for messages being handled


# --- the channel -------------------------------------------------------------------------


class WhatsAppChannel:
    """Runs conversation turns for WhatsApp chats and sends their replies.

    The webhook is answered at once; messages are handled in the background, one chat's
    one at a time and in the order they came, each at most once (its id is kept in the
    database, so WhatsApp's retries and other replicas see it)."""

    def __init__(self, *, core: Core, client: WhatsApp, clock: Clock = utc_now) -> None:
        self.conversations = core.conversations
        self.db: Database = core.db
        self.translator: Translators = core.deps.translator
        self.phone_id = str(client.phone_id) if client.phone_id else None
        self.outgoing = Outgoing(client, core.deps.translator, retry_throttled=True)
        self.clock = clock
        self._chats: ChatLocks[str] = ChatLocks()
        self._busy: set[asyncio.Task[None]] = set()
        self.closing = False  # set at shutdown: new webhooks are refused, to be retried

    def accept(self, payload: Any) -> None:
        """Start handling a webhook body; returns before any of it is handled."""
        update = read_update(payload, self.phone_id)
        now = self.clock()
        for message in update.messages:
            if not is_fresh(message.sent_at, now):
                log.info(
                    "WhatsApp message %s is dated %s: not answered", message.id, message.sent_at
                )
                continue
            self._start(self._handle(message))
        if update.failures:
            self._start(self._note_failures(update.failures))

    async def drain(self) -> None:
        """Wait (a while) for the messages being handled."""
        busy = self._busy - {asyncio.current_task()}
        if busy:
            await asyncio.wait(busy, timeout=DRAIN_SECONDS)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._busy.add(task)
        task.add_done_callback(self._busy.discard)

    async def _handle(self, message: Incoming) -> None:
        async with self._chats.one_at_a_time(message.wa_id):
            try:
                await self._turn(message)
            except (WhatsAppError, httpx.HTTPError) as error:
                log.warning("could not answer a WhatsApp message: %s", _describe(error))
            except Exception:
                log.exception("WhatsApp message %s failed", message.id)
                await self._apologise(message.wa_id)

    async def _turn(self, message: Incoming) -> None:
        event: Event = message.event
        message_id: str | None = message.id
        if message.more is not None:
            if not await self._more_first_time(message):
                return
            if await self.outgoing.send_more(message.wa_id, message.more):
                return
            # The pages are gone: the conversation shows its step again.
            event, message_id = Text(""), None
        inbound = Inbound(
            channel=CHANNEL,
            external_id=message.wa_id,
            event=event,
            received_at=self.clock(),
            display_name=message.name,
            phone=message.phone,
            message_id=message_id,  # recorded in the turn's transaction
        )
        for reply in await self.conversations.handle(inbound):
            await self.outgoing.send(message.wa_id, reply)

    async def _more_first_time(self, message: Incoming) -> bool:
        """A "More…" press has no turn to share a transaction with: recorded on its own."""
        async with self.db.transaction() as session:
            first = await mark_handled(
                session, channel=CHANNEL, message_id=message.id, now=self.clock()
            )
        if not first:
            log.info("WhatsApp message %s came again; already handled", message.id)
        return first

    async def _apologise(self, wa_id: str) -> None:
        tr = self.translator(None)
        text = tr._("Sorry, something went wrong on our side. Please try again in a minute.")
        try:
            await self.outgoing.send(wa_id, Reply(text))
        except Exception as error:  # the apology is best effort
            # The WhatsApp id is the person's phone number: it stays out of the log.
            log.warning("could not apologise on WhatsApp: %s", _describe(error))

    async def _note_failures(self, failures: list[Failure]) -> None:
        """Most undeliverable messages are reported here, after the send was accepted."""
        for failure in failures:
            try:
                if failure.code in UNREACHABLE_CODES:
                    await self._unreachable(failure.wa_id)
                elif failure.code == MARKETING_STOPPED:
                    await self._stopped_marketing(failure.wa_id)
                else:
                    log.info("a WhatsApp message failed: %s %s", failure.code, failure.title)
            except Exception:
                log.exception("could not record a failed WhatsApp message")

    async def _stopped_marketing(self, wa_id: str) -> None:
        async with self.db.transaction() as session:
            await whatsapp_stopped_marketing(session=session, wa_id=wa_id, now=self.clock())

    async def _unreachable(self, wa_id: str) -> None:
        async with self.db.transaction() as session:
            client_id = await whatsapp_unreachable(session=session, wa_id=wa_id, now=self.clock())
        if client_id is not None:
            log.info("client %s cannot be reached on WhatsApp", client_id)


def _describe(error: Exception) -> str:
    if isinstance(error, WhatsAppError):
        return f"error {error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


# --- serving -----------------------------------------------------------------------------


WHATSAPP_CHANNEL = web.AppKey("whatsapp_channel", WhatsAppChannel)


def add_whatsapp_webhook(
    app: web.Application,
    *,
    core: Core,
    client: WhatsApp,
    verify_token: str,
    app_secret: str,
    clock: Clock = utc_now,
) -> None:
    """Serve WhatsApp's webhook at /webhook/whatsapp on `app` (which Telegram's may share):
    GET answers Meta's handshake for the right verify token (403 otherwise); POST takes
    bodies signed with the app secret (401 unsigned, 403 wrongly signed), answers 200 at once
    and handles the messages in the background."""
    if not verify_token or not app_secret:
        raise ValueError("WhatsApp's verify token and app secret must not be empty")
    channel = WhatsAppChannel(core=core, client=client, clock=clock)
    app[WHATSAPP_CHANNEL] = channel
    key = app_secret.encode()
    expected_token = verify_token.encode()

    async def handshake(request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(token, expected_token):
            log.warning("a WhatsApp webhook handshake with a wrong verify token")
            return web.Response(status=403)
        return web.Response(text=query.get("hub.challenge", ""))

    async def receive(request: web.Request) -> web.Response:
        if channel.closing:  # shutting down: Meta delivers it again, to the next process
            return web.Response(status=503)
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return web.Response(status=401)
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            log.warning("a WhatsApp webhook with a wrong signature refused")
            return web.Response(status=403)
        try:
            payload = json.loads(body)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both
            log.warning("a signed WhatsApp webhook that is not JSON ignored")
            return web.Response(text="ok")
        channel.accept(payload)
        return web.Response(text="ok")

    async def finish_messages(_app: web.Application) -> None:
        channel.closing = True
        await channel.drain()

    app.on_shutdown.append(finish_messages)
    app.router.add_get(WEBHOOK_PATH, handshake)
    app.router.add_post(WEBHOOK_PATH, receive)


def whatsapp_channel(app: web.Application) -> WhatsAppChannel:
    return app[WHATSAPP_CHANNEL]
