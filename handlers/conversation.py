"""The entry point of every conversation: one inbound event in, replies out.

Each turn runs in one database transaction: the state, the client and any booking are
saved together or not at all, so an error never leaves a half-done step behind. The path
of an update from webhook to reply: docs/architecture.md.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.payloads import BadPayload, unpack
from domain.replies import Reply
from domain.vocabulary import Step, registering
from handlers import booking, followups, menu, preferences, registration, staff, visits
from handlers.common import with_hint
from handlers.events import Choice, Command, Contact, Event, Inbound, Text
from handlers.flows import Flows
from handlers.turn import Deps, Turn
from storage.db import Database
from storage.identities import record_inbound
from storage.processed import forget_handled, record_handled
from storage.queries import Chat, client_for, first_message_chat, read_chat, save_conversation
from storage.tables import Conversation

log = logging.getLogger(__name__)

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
        staff.FLOW,
    ]
)
CLIENT_FLOWS = (menu.FLOW, booking.FLOW, visits.FLOW, preferences.FLOW, followups.FLOW)
# A registered client may still press a registration button of an old message.
REGISTERED = (*CLIENT_FLOWS, registration.FLOW)
REGISTERING = (registration.FLOW,)
STAFF = (staff.FLOW,)


class AlreadyHandled(Exception):
    """The message id was recorded by an earlier turn: a retry or a replay."""


class Conversations:
    def __init__(self, *, db: Database, deps: Deps) -> None:
        self.db = db
        self.deps = deps
        self._forgot_at: dict[str, datetime] = {}

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The replies to one inbound event; none for a message id handled before."""
        try:
            async with self.db.transaction(inline=True) as session:
                turn, chat = await self._load(session, inbound)
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
                # The client is in the session: the commit saves what the turn changed.
                await session.run_sync(save_conversation, turn.conversation, chat.saved)
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

    async def _load(self, session: AsyncSession, inbound: Inbound) -> tuple[Turn, Chat]:
        """The turn, and the chat's rows as read."""
        found = await session.run_sync(self._open, inbound)
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
        turn = Turn(
            session=session,
            inbound=inbound,
            deps=self.deps,
            conversation=conversation,
            client=client,
            tr=self.deps.translator(locale),
            # The member of staff writing, with the role as the database has it now.
            staff=chat.staff,
        )
        return turn, chat


async def _route(turn: Turn) -> list[Reply]:
    """Who answers an event, in this order (the one place it is decided):

    1. staff: a member of staff's visit-check buttons and typed amounts (`STAFF`);
       anything else a master sends falls through to the client path below;
    2. registration gate: an expired half-registration starts over, and a client without
       a phone number gives one before anything but /stop and /help;
    3. commands (/start, /menu, /book, /stop, /help), for everyone;
    4. registration gate again: an unknown person is registered before any button works;
    5. buttons: the action named by the payload, among the flows open to the sender
       (`REGISTERING` before registration, `REGISTERED` after);
    6. text: the current step's text handler, or the step shown again with a hint.
    """
    event = turn.inbound.event
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
    return not (isinstance(event, Command) and event.name in ("stop", "help"))


async def _phone_again(turn: Turn, event: Event) -> list[Reply]:
    phone = turn.inbound.phone  # WhatsApp proves the sender's number: no need to ask
    if phone is not None:
        return await registration.on_phone(turn, Contact(phone))
    if turn.step == Step.REG_PHONE and isinstance(event, Text | Contact):
        return await registration.on_phone(turn, event)
    return await registration.ask_phone_again(turn)


async def _staff(turn: Turn, event: Event) -> list[Reply] | None:
    """Staff buttons and the staff's typed answers; None when the event is not for staff."""
    if isinstance(event, Choice):
        try:
            name, args = unpack(event.payload)
        except BadPayload:
            return None
        action = FLOWS.action(name, among=STAFF)
        return await action(turn, args) if action else None
    step = FLOWS.text_step(turn.step, among=STAFF)
    if isinstance(event, Text | Contact) and step is not None:
        return await step(turn, event)
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
