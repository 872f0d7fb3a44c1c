"""The entry point of every conversation: one inbound event in, replies out.

Each turn runs in one database transaction: the state, the client and any booking are
saved together or not at all, so an error never leaves a half-done step behind. The path
of an update from webhook to reply: docs/architecture.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.payloads import BadPayload, unpack
from domain.replies import Reply
from domain.vocabulary import Step, registering
from handlers import (
    booking,
    complaints,
    followups,
    loyalty,
    menu,
    personal,
    preferences,
    registration,
    staff,
    staff_booking,
    staff_broadcast,
    staff_clients,
    staff_day,
    staff_menu,
    staff_off,
    staff_walkin,
    visits,
)
from handlers.common import with_hint
from handlers.events import Choice, Command, Contact, Event, Inbound, Text
from handlers.flows import Flows
from handlers.turn import Deps, Turn
from storage.db import Database, at_commit
from storage.identities import record_inbound
from storage.prepared import run_sync
from storage.processed import forget_handled, record_handled
from storage.queries import (
    Chat,
    client_for,
    delete_conversation,
    first_message_chat,
    read_chat,
    save_conversation,
)
from storage.staff import staff_by_key
from storage.tables import Conversation, Staff

log = logging.getLogger(__name__)

CONSOLE_STAFF = "staff:"  # the terminal's chat of `regulars chat --as <master key>`
HANDLED_KEPT = timedelta(days=7)  # WhatsApp retries a webhook for up to 7 days
FORGET_EVERY = timedelta(hours=1)

# Every flow, registered once: a step or action claimed twice stops the bot at start-up.
FLOWS = Flows(
    [
        registration.FLOW,
        menu.FLOW,
        booking.FLOW,
        visits.FLOW,
        preferences.FLOW,
        followups.FLOW,
        personal.FLOW,
        loyalty.FLOW,
        staff.FLOW,
        staff_day.FLOW,
        staff_booking.FLOW,
        staff_walkin.FLOW,
        staff_off.FLOW,
        staff_clients.FLOW,
        staff_broadcast.FLOW,
        complaints.FLOW,
        staff_menu.FLOW,
    ]
)
CLIENT_FLOWS = (
    menu.FLOW,
    booking.FLOW,
    visits.FLOW,
    preferences.FLOW,
    followups.FLOW,
    personal.FLOW,
    loyalty.FLOW,
)
# A registered client may still press a registration button of an old message.
REGISTERED = (*CLIENT_FLOWS, registration.FLOW)
REGISTERING = (registration.FLOW,)
# In the order of the staff menu's buttons.
STAFF = (
    staff.FLOW,
    staff_day.FLOW,
    staff_clients.FLOW,
    staff_booking.FLOW,
    staff_walkin.FLOW,
    staff_off.FLOW,
    staff_broadcast.FLOW,
    complaints.FLOW,
    staff_menu.FLOW,
)


class AlreadyHandled(Exception):
    """The message id was recorded by an earlier turn: a retry or a replay."""


class Conversations:
    def __init__(
        self, *, db: Database, deps: Deps, observe: Callable[[str, float], None] | None = None
    ) -> None:
        self.db = db
        self.deps = deps
        self._forgot_at: dict[str, datetime] = {}
        self.observe = observe  # (channel, seconds) of each turn: GET /metrics

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The replies to one inbound event; none for a message id handled before."""
        started = time.perf_counter()
        try:
            return await self._handle(inbound)
        finally:
            if self.observe is not None:
                self.observe(inbound.channel, time.perf_counter() - started)

    async def _handle(self, inbound: Inbound) -> list[Reply]:
        try:
            async with self.db.transaction(inline=True) as session:
                turn = await self._load(session, inbound)
                chat = turn.read
                assert chat is not None
                replies = await _route(turn)
                turn.conversation.updated_at = inbound.received_at
                if turn.client is not None:
                    await record_inbound(
                        session=session,
                        client=turn.client,
                        channel=inbound.channel,
                        external_id=inbound.external_id,
                        now=inbound.received_at,
                        identity=chat.identity,
                    )
                conversation = turn.conversation
                if turn.forget_chat:  # /forget: nothing of this chat stays
                    at_commit(session, lambda sync: delete_conversation(sync, conversation))
                else:
                    # The client is in the session: the commit saves what the turn changed.
                    at_commit(
                        session, lambda sync: save_conversation(sync, conversation, chat.saved)
                    )
            # Adapters word their own bits ("More…") in the reader's language.
            return [replace(reply, locale=reply.locale or turn.locale) for reply in replies]
        except AlreadyHandled:
            log.info(
                "%s message %s came again; already handled", inbound.channel, inbound.message_id
            )
            return []
        except SQLAlchemyError:
            log.exception("database error in a %s conversation", inbound.channel)
            tr = self.deps.translator((inbound.language or "")[:2].lower() or None)
            return [
                Reply(
                    tr._("Sorry, something went wrong on our side. Please try again in a minute.")
                )
            ]

    def _open(self, session: Session, inbound: Inbound) -> Chat | None:
        """A turn's first statements, together: record the message id in the turn's own
        transaction (AlreadyHandled when it was before, so a turn that fails records
        nothing and the channel's retry is answered), then read the chat's rows."""
        if inbound.message_id is not None and not record_handled(
            session,
            channel=inbound.channel,
            message_id=inbound.message_id,
            now=inbound.received_at,
        ):
            raise AlreadyHandled
        return read_chat(session, channel=inbound.channel, external_id=inbound.external_id)

    async def _forget_old(self, session: AsyncSession, channel: str, now: datetime) -> None:
        last = self._forgot_at.get(channel)
        if last is None or now - last >= FORGET_EVERY:
            self._forgot_at[channel] = now
            await forget_handled(session, channel=channel, before=now - HANDLED_KEPT)

    async def _staff(self, session: AsyncSession, inbound: Inbound, chat: Chat) -> Staff | None:
        """The member of staff writing, with the role as the database has it now: a
        Telegram chat bound to staff (read with the chat), or the terminal of
        `regulars chat --as <key>`."""
        if inbound.channel == "console" and inbound.external_id.startswith(CONSOLE_STAFF):
            return await staff_by_key(
                session=session, key=inbound.external_id.removeprefix(CONSOLE_STAFF)
            )
        return chat.staff

    async def _load(self, session: AsyncSession, inbound: Inbound) -> Turn:
        """The turn of `inbound`, in the caller's transaction, with the chat's rows as read
        (`save_conversation` compares them)."""
        found = await run_sync(session, self._open, inbound)
        if inbound.message_id is not None:
            await self._forget_old(session, inbound.channel, inbound.received_at)
        chat = found or await first_message_chat(
            session=session, channel=inbound.channel, external_id=inbound.external_id
        )
        conversation = chat.conversation
        if conversation is None:
            conversation = Conversation(
                channel=inbound.channel,
                external_id=inbound.external_id,
                updated_at=inbound.received_at,
            )
        client = await client_for(
            session=session,
            chat=chat,
            channel=inbound.channel,
            external_id=inbound.external_id,
            now=inbound.received_at,
        )
        if client is not None and conversation.client_id != client.id:
            conversation.client_id = client.id
        if client is None and conversation.client_id is not None:  # the client was deleted
            conversation.client_id = None
            conversation.step, conversation.data = Step.START, {}
        locale = client.locale if client else conversation.data.get("locale")
        return Turn(
            session=session,
            inbound=inbound,
            deps=self.deps,
            conversation=conversation,
            client=client,
            tr=self.deps.translator(locale),
            staff=await self._staff(session, inbound, chat),
            read=chat,
        )


async def _route(turn: Turn) -> list[Reply]:
    """Who answers an event, in this order (the one place it is decided):

    0. an invitation link (/start staff_<code>), for anyone; a friend's link
       (/start r_<code>) from someone not yet a client or staff starts registration and
       keeps the code (anyone else gets the usual /start);
    1. staff: the staff commands, menu, buttons and typed answers (`STAFF`); a button
       or text that is no staff's falls through to the client path below (a master may
       book for themselves); a client typing a staff command gets the client menu;
    2. registration gate: an expired half-registration starts over, and a client without
       a phone number gives one before anything but /stop and /help;
    3. commands (/start, /menu, /book, /stop, /help, /mydata, /forget), for everyone;
    4. registration gate again: an unknown person is registered before any button works;
    5. buttons: the action named by the payload, among the flows open to the sender
       (`REGISTERING` before registration, `REGISTERED` after);
    6. text: the current step's text handler, or the step shown again with a hint.
    """
    event = turn.inbound.event
    if isinstance(event, Command) and event.name == "start":
        code = event.args.strip()
        if code.startswith(staff_menu.INVITE_PREFIX):
            return await staff_menu.start_with_invite(
                turn, code.removeprefix(staff_menu.INVITE_PREFIX)
            )
        if code.startswith(loyalty.REFERRAL_PREFIX) and turn.client is None and turn.staff is None:
            return await registration.start_with_referral(
                turn, code.removeprefix(loyalty.REFERRAL_PREFIX)
            )
    if turn.staff is not None and (answer := await _staff(turn, event)) is not None:
        return answer
    if turn.client is None and registering(turn.step) and registration.expired(turn):
        return await registration.start_over(turn)
    if turn.client is not None and turn.client.phone is None and _needs_phone(turn, event):
        return await _phone_again(turn, event)
    if isinstance(event, Command):
        return await _command(turn, event)
    if turn.client is None and not registering(turn.step):
        return await registration.begin(turn)
    if isinstance(event, Choice):
        return await _choice(turn, event)
    return await _text(turn, event)


def _needs_phone(turn: Turn, event: Event) -> bool:
    """A client without a number (it went to its proven owner) gives one before anything
    else; /stop and /help still work."""
    return not (isinstance(event, Command) and event.name in ("stop", "help", "mydata", "forget"))


async def _phone_again(turn: Turn, event: Event) -> list[Reply]:
    phone = turn.inbound.phone  # WhatsApp proves the sender's number: no need to ask
    if phone is not None:
        return await registration.on_phone(turn, Contact(phone))
    if turn.step == Step.REG_PHONE and isinstance(event, Text | Contact):
        return await registration.on_phone(turn, event)
    return await registration.ask_phone_again(turn)


async def _staff(turn: Turn, event: Event) -> list[Reply] | None:
    """Staff commands, buttons and typed answers; None when the event is not for staff."""
    if isinstance(event, Command):
        if event.name in ("start", "menu", "help"):
            return await staff_menu.show_staff_menu(turn)
        command = FLOWS.command(event.name)
        return await staff_menu.run_command(turn, command, event.args) if command else None
    if isinstance(event, Choice):
        try:
            name, args = unpack(event.payload)
        except BadPayload:
            return None
        action = FLOWS.action(name, among=STAFF)
        if action is None:
            return None
        try:
            return await action(turn, args)
        except BadPayload:  # a forged or garbled staff button: out of date, never an error
            log.info(
                "unreadable staff payload from %s: %r", turn.inbound.channel, event.payload[:64]
            )
            return await staff_menu.stale(turn)
    step = FLOWS.text_step(turn.step, among=STAFF)
    if isinstance(event, Text | Contact) and step is not None:
        return await step(turn, event)
    if turn.client is None and not registering(turn.step):
        # Staff who are not clients too: text outside a staff step gets the staff menu.
        hint = turn._("Please choose one of the buttons below, or a command.")
        return [with_hint(hint, await staff_menu.view_staff_menu(turn))]
    return None


async def _command(turn: Turn, command: Command) -> list[Reply]:
    if command.name == "stop":
        return await menu.stop_marketing(turn)
    if command.name == "help":
        return await menu.show_help(turn)
    if command.name in ("start", "menu"):
        if turn.client is None:
            if registering(turn.step) and turn.step != Step.REG_NAME:
                return [await _view(turn)]  # keep what was typed so far
            return await registration.begin(turn)
        return await menu.show_menu(turn)
    if command.name == "book" and turn.client is not None:
        return await booking.press_book(turn, [])
    if command.name in ("mydata", "forget"):
        if turn.client is None:  # a stranger: in their messenger's language
            tr = turn.deps.translator((turn.inbound.language or "")[:2].lower() or None)
            return [Reply(tr._("There is nothing stored about this chat."))]
        if command.name == "mydata":
            return await personal.command_mydata(turn)
        return await personal.command_forget(turn)
    if FLOWS.command(command.name) is not None:  # a staff command, from a client: no hint
        if turn.client is None:
            return await registration.begin(turn)
        return await menu.show_menu(turn)
    hint = turn._(
        "Sorry, I don't know that command. /start opens the menu and /help explains the rest."
    )
    return [with_hint(hint, await _view(turn))]


async def _choice(turn: Turn, choice: Choice) -> list[Reply]:
    try:
        action_name, args = unpack(choice.payload)
        action = FLOWS.action(action_name, among=REGISTERED if turn.client else REGISTERING)
        if action is None and turn.client is None:
            hint = turn._("Please finish registering first.")
            return [with_hint(hint, await _view(turn))]
        if action is None:
            return await menu.stale(turn)
        return await action(turn, args)
    except BadPayload:
        log.info("unreadable payload from %s: %r", turn.inbound.channel, choice.payload[:64])
        return await menu.stale(turn)


async def _text(turn: Turn, event: Text | Contact) -> list[Reply]:
    step = FLOWS.text_step(turn.step, among=REGISTERED)
    if step is not None:
        return await step(turn, event)
    hint = turn._("Please choose one of the buttons below.")
    return [with_hint(hint, await _view(turn))]


async def _view(turn: Turn) -> Reply:
    view = FLOWS.views.get(turn.step)
    if view is None or (turn.client is None and not registering(turn.step)):
        if turn.client is None:
            turn.goto(Step.REG_NAME, locale=turn.locale)
            return await registration.view_name(turn)
        turn.goto(Step.MENU)
        return await menu.view_menu(turn)
    try:
        return await view(turn)
    except (KeyError, ValueError, TypeError):  # state from an older version of the bot
        turn.goto(Step.MENU)
        return await menu.view_menu(turn)
