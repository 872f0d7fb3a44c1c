"""WhatsApp Cloud API through pywa (async). Webhooks in → channel-neutral events →
`Conversations` → replies out as Graph API calls. What to say is decided in `handlers/`;
this module only translates, and knows WhatsApp's limits: 4096 characters of text, 1024 in
the body of an interactive message, three reply buttons of 20 characters, lists of ten rows
of 24.

The webhook is ours (aiohttp, next to Telegram's): pywa is used as the Graph API client and
for its error types, not as a server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web
from pywa_async import WhatsApp
from pywa_async.errors import RateLimitHit, TooManyMessages, WhatsAppError
from pywa_async.types import Button as ReplyButton
from pywa_async.types import Section, SectionList, SectionRow
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.adapters import common
from bot.adapters.common import ChatLocks
from bot.clock import Clock, utc_now
from domain.payloads import BadPayload, unpack
from domain.replies import Button, Reply
from domain.text import Translator
from handlers.events import Choice, Command, Event, Inbound, Text
from storage.identities import whatsapp_stopped_marketing, whatsapp_unreachable
from storage.tables import ProcessedMessage

if TYPE_CHECKING:
    from bot.composition import Core
    from storage.db import Database

log = logging.getLogger(__name__)

Translators = Callable[[str | None], Translator]

CHANNEL = "whatsapp"
WEBHOOK_PATH = "/webhook/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"

TEXT_LIMIT = 4096  # a text message
BODY_LIMIT = 1024  # the body of an interactive message
MAX_REPLY_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
MAX_ROWS = 10  # rows of a list message, all sections together
PAGE_ROWS = MAX_ROWS - 1  # a page of a longer list: nine choices and "More…"
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BUTTON_LIMIT = 20
MORE = "~more:"  # the id of a list's "More…" row; never a payload (those start with "1:")
PAGES_KEPT = 10_000  # long lists whose next pages are remembered (in memory)

HTTP_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
REPLY_RETRY_SECONDS = 3.0  # a throttled reply inside a conversation waits this once
DRAIN_SECONDS = 10.0  # how long shutdown waits for messages being handled
PROCESSED_KEPT = timedelta(days=7)  # WhatsApp retries a webhook for up to 7 days
FORGET_EVERY = timedelta(hours=1)

# Failed-delivery codes that mean "do not write to this person on WhatsApp": not a
# WhatsApp user (131026); 131050: opted out of the business's marketing (reminders still go).
UNREACHABLE_CODES = frozenset({131026})
MARKETING_STOPPED = 131050

# Messages a person sends that the bot cannot read: the conversation re-shows its step
# with a hint ("Please choose one of the buttons below."). Reactions and system notices
# are not addressed to the bot and get no answer.
UNREADABLE = frozenset(
    {
        "audio",
        "contacts",
        "document",
        "image",
        "location",
        "order",
        "sticker",
        "unknown",
        "unsupported",
        "video",
        "voice",
    }
)
IGNORED = frozenset({"reaction", "system"})


# --- the client --------------------------------------------------------------------------


def create_whatsapp(
    *,
    phone_id: str,
    token: str,
    api_url: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> WhatsApp:
    """pywa's async client for sending only (webhooks are served by `add_whatsapp_webhook`),
    through another Graph API base when `api_url` is given (a proxy, a fake in tests).

    pywa points the httpx client it is given at graph.facebook.com/v<version>; the client is
    ours, so its base URL is then moved to `api_url`, keeping pywa's API version unless the
    URL names one. Pass `http` to own its life (close it on shutdown); one made here has
    timeouts suited to the Graph API and lives as long as the process."""
    session = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    client = WhatsApp(
        phone_id=phone_id,
        token=token,
        session=session,
        validate_updates=False,  # we check X-Hub-Signature-256 ourselves
    )
    if api_url:
        session.base_url = graph_base(api_url, session.base_url.path)
    log.info("WhatsApp client for phone id %s, Graph API at %s", phone_id, session.base_url)
    return client


def graph_base(api_url: str, version_path: str) -> str:
    """`api_url` with pywa's "/v26.0" added, unless it already ends in a version."""
    base = api_url.rstrip("/")
    last = base.rsplit("/", 1)[-1]
    if last.startswith("v") and last[1:].replace(".", "", 1).isdigit():
        return base
    return base + "/" + version_path.strip("/")


# --- webhooks → events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message a person sent, as much as the conversation needs of it."""

    id: str  # wamid…, the dedupe key
    wa_id: str  # whom to answer; the conversation's external id
    event: Event
    name: str | None = None  # the profile name WhatsApp shows
    phone: str | None = None  # the sender's number, which WhatsApp vouches for
    more: str | None = None  # a "More…" row of a long list was pressed


@dataclass(frozen=True, slots=True)
class Failure:
    """A message of ours WhatsApp could not deliver (a `failed` status)."""

    wa_id: str
    code: int
    title: str


@dataclass(slots=True)
class Update:
    messages: list[Incoming] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def read_update(payload: Any, phone_id: str | None) -> Update:
    """The messages and delivery failures of one webhook body. Anything of another shape
    is skipped: the body was signed by Meta, so it is a newer format, not an attack."""
    update = Update()
    for value in _values(payload):
        metadata = _dict(value.get("metadata"))
        if phone_id and metadata.get("phone_number_id") not in (None, phone_id):
            continue  # another number of the same app: not ours to answer
        names = _profile_names(value)
        for message in _dicts(value.get("messages")):
            incoming = _incoming(message, names)
            if incoming is not None:
                update.messages.append(incoming)
        for status in _dicts(value.get("statuses")):
            update.failures += _failures(status)
    return update


def _values(payload: Any) -> list[dict[str, Any]]:
    values = []
    for entry in _dicts(_dict(payload).get("entry")):
        for change in _dicts(entry.get("changes")):
            if change.get("field", "messages") == "messages":
                values.append(_dict(change.get("value")))
    return values


def _profile_names(value: dict[str, Any]) -> dict[str, str]:
    names = {}
    for contact in _dicts(value.get("contacts")):
        sender = contact.get("wa_id") or contact.get("user_id")
        name = _dict(contact.get("profile")).get("name")
        if isinstance(sender, str) and isinstance(name, str) and name.strip():
            names[sender] = name.strip()
    return names


def _incoming(message: dict[str, Any], names: Mapping[str, str]) -> Incoming | None:
    message_id = message.get("id")
    phone = message.get("from")
    # A person who hides their number behind a username is known by a business-scoped id.
    wa_id = phone or message.get("from_user_id")
    if not isinstance(message_id, str) or not isinstance(wa_id, str) or not wa_id:
        log.warning("a WhatsApp message without id or sender skipped: %s", message.get("type"))
        return None
    if message.get("group_id"):
        return None  # the bot serves clients one to one
    more = _more_of(message)
    event = Text("") if more else event_of(message)
    if event is None:
        return None
    return Incoming(
        id=message_id,
        wa_id=wa_id,
        event=event,
        name=names.get(wa_id),
        phone=phone if isinstance(phone, str) and phone.isdigit() else None,
        more=more,
    )


def event_of(message: dict[str, Any]) -> Event | None:
    """The conversation event a message means, or None for what needs no answer."""
    kind = message.get("type")
    if kind == "text":
        body = _dict(message.get("text")).get("body")
        text = body if isinstance(body, str) else ""
        return _command(text) if text.startswith("/") else Text(text)
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get(str(interactive.get("type"))))
        chosen = reply.get("id")
        return Choice(chosen) if isinstance(chosen, str) and chosen else Text("")
    if kind == "button":  # a quick-reply button of a template
        payload = _dict(message.get("button")).get("payload")
        # Without a payload set at sending, WhatsApp sends the button's text instead.
        return Choice(payload) if isinstance(payload, str) and _is_ours(payload) else Text("")
    if kind == "request_welcome":  # the person opened the chat for the first time
        return Command("start")
    if kind in IGNORED:
        return None
    if kind not in UNREADABLE:
        log.info("unknown WhatsApp message type %r: re-showing the step", kind)
    return Text("")


def _more_of(message: dict[str, Any]) -> str | None:
    if message.get("type") != "interactive":
        return None
    interactive = _dict(message.get("interactive"))
    chosen = _dict(interactive.get("list_reply")).get("id")
    return chosen if isinstance(chosen, str) and chosen.startswith(MORE) else None


def _command(text: str) -> Command:
    head, *rest = text[1:].split(maxsplit=1) or [""]
    return Command(head.lower(), rest[0].strip() if rest else "")


def _is_ours(payload: str) -> bool:
    try:
        unpack(payload)
    except BadPayload:
        return False
    return True


def _failures(status: dict[str, Any]) -> list[Failure]:
    if status.get("status") != "failed":
        return []
    wa_id = status.get("recipient_id") or status.get("recipient_user_id")
    if not isinstance(wa_id, str):
        return []
    failures = []
    for error in _dicts(status.get("errors")):
        try:
            code = int(error.get("code", 0))
        except (TypeError, ValueError):
            continue
        failures.append(Failure(wa_id, code, str(error.get("title") or error.get("message"))))
    return failures


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# --- replies → Graph API -----------------------------------------------------------------


def fit(label: str, limit: int) -> str:
    """`label` in at most `limit` characters: whole, or cut after a word with "…". A cut
    inside a word happens only when the first words alone would say too little; a
    no-break space (money, "1 800 ₽") is never a place to cut."""
    if len(label) <= limit:
        return label
    head = label[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,.;:·-–—(") + "…"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    return common.split_text(text, limit)


def split_body(text: str) -> tuple[list[str], str]:
    """Text messages to send first, and the rest as the body of the interactive message
    (at most 1024 characters): the question at the end of a long text stays with its
    buttons."""
    if len(text) <= BODY_LIMIT:
        return [], text if text.strip() else "…"
    start = len(text) - BODY_LIMIT
    cut = text.find("\n", start - 1)
    if cut < 0 or not text[cut + 1 :].strip():
        cut = text.find(" ", start - 1)
    if cut < 0 or not text[cut + 1 :].strip():
        return split_text(text[:start]), text[start:]
    return split_text(text[:cut]), text[cut + 1 :]


def distinct(choices: Sequence[Button]) -> list[Button]:
    """The first button of each payload: WhatsApp refuses a message with two ids alike,
    and two buttons with one payload mean the same."""
    first: dict[str, Button] = {}
    for choice in choices:
        first.setdefault(choice.payload, choice)
    return list(first.values())


def fits_reply_buttons(choices: Sequence[Button]) -> bool:
    titles = [choice.label for choice in choices]
    return (
        len(titles) <= MAX_REPLY_BUTTONS
        and all(0 < len(title) <= BUTTON_TITLE_LIMIT for title in titles)
        and len(set(titles)) == len(titles)  # WhatsApp refuses two buttons alike
    )


def list_rows(choices: Sequence[Button]) -> list[SectionRow]:
    rows = []
    for choice in choices:
        title = fit(choice.label, ROW_TITLE_LIMIT)
        cut = title != choice.label
        description = fit(choice.label, ROW_DESCRIPTION_LIMIT) if cut else None
        rows.append(SectionRow(title=title, callback_data=choice.payload, description=description))
    return rows


@dataclass(frozen=True, slots=True)
class _LongList:
    body: str
    choices: tuple[Button, ...]
    locale: str


class Outgoing:
    """Replies as WhatsApp messages: plain text; up to three short choices as reply
    buttons; more as a list of ten rows, a "More…" row leading to the next page.

    The pages of long lists are remembered in memory, by chat and list: after a restart
    (or on another replica) a "More…" press finds nothing and the conversation shows its
    step again."""

    def __init__(
        self, client: WhatsApp, translator: Translators, *, retry_throttled: bool = False
    ) -> None:
        self.client = client
        self.translator = translator
        self.retry_throttled = retry_throttled
        self._lists: OrderedDict[tuple[str, str], _LongList] = OrderedDict()

    async def send(self, to: str, reply: Reply, *, locale: str | None = None) -> None:
        """Every message of `reply`, in order; `locale` words the list button and "More…"
        when the reply does not carry its own."""
        tr = self.translator(reply.locale or locale)
        choices = distinct(reply.flat_buttons)
        if not choices:
            for chunk in split_text(reply.text):
                await self._send(to, chunk)
            return
        head, body = split_body(reply.text)
        for chunk in head:
            await self._send(to, chunk)
        if fits_reply_buttons(choices):
            buttons = [ReplyButton(title=c.label, callback_data=c.payload) for c in choices]
            await self._send(to, body, buttons)
            return
        token = ""
        if len(choices) > MAX_ROWS:
            token = secrets.token_hex(4)
            self._remember(to, token, _LongList(body, tuple(choices), tr.locale))
        await self._send(to, body, self._page(choices, 0, token, tr))

    async def send_more(self, to: str, more: str) -> bool:
        """The next page of a long list, for its "More…" row; False when it is forgotten."""
        token, _, page = more.removeprefix(MORE).partition(":")
        long_list = self._lists.get((to, token))
        if long_list is None or not page.isdigit():
            return False
        if int(page) * PAGE_ROWS >= len(long_list.choices):
            return False
        self._lists.move_to_end((to, token))
        tr = self.translator(long_list.locale)
        page_list = self._page(long_list.choices, int(page), token, tr)
        await self._send(to, long_list.body, page_list)
        return True

    def _page(
        self, choices: Sequence[Button], page: int, token: str, tr: Translator
    ) -> SectionList:
        rest = choices[page * PAGE_ROWS :]
        rows = list_rows(rest if len(rest) <= MAX_ROWS else rest[:PAGE_ROWS])
        if len(rest) > MAX_ROWS:
            more = fit(tr._("More…"), ROW_TITLE_LIMIT)
            rows.append(SectionRow(title=more, callback_data=f"{MORE}{token}:{page + 1}"))
        choose = tr._("Choose")
        return SectionList(
            button_title=fit(choose, LIST_BUTTON_LIMIT),
            sections=[Section(title=fit(choose, ROW_TITLE_LIMIT), rows=rows)],
        )

    def _remember(self, to: str, token: str, long_list: _LongList) -> None:
        self._lists[(to, token)] = long_list
        while len(self._lists) > PAGES_KEPT:
            self._lists.popitem(last=False)

    async def _send(
        self, to: str, text: str, buttons: list[ReplyButton] | SectionList | None = None
    ) -> None:
        try:
            await self.client.send_message(to=to, text=text, buttons=buttons)
        except (RateLimitHit, TooManyMessages) as error:
            if not self.retry_throttled:
                raise
            log.warning("WhatsApp asks to slow down (%s); retrying once", error.code)
            await asyncio.sleep(REPLY_RETRY_SECONDS)
            await self.client.send_message(to=to, text=text, buttons=buttons)


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
        self._forgot_at: datetime | None = None

    def accept(self, payload: Any) -> None:
        """Start handling a webhook body; returns before any of it is handled."""
        update = read_update(payload, self.phone_id)
        for message in update.messages:
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
                if not await self._first_time(message):
                    log.info("WhatsApp message %s came again; already handled", message.id)
                    return
                await self._turn(message)
            except (WhatsAppError, httpx.HTTPError) as error:
                log.warning("could not answer a WhatsApp message: %s", _describe(error))
            except Exception:
                log.exception("WhatsApp message %s failed", message.id)
                await self._apologise(message.wa_id)

    async def _turn(self, message: Incoming) -> None:
        event = message.event
        if message.more is not None:
            if await self.outgoing.send_more(message.wa_id, message.more):
                return
            event = Text("")  # the pages are gone: the conversation shows its step again
        inbound = Inbound(
            channel=CHANNEL,
            external_id=message.wa_id,
            event=event,
            received_at=self.clock(),
            display_name=message.name,
            phone=message.phone,
        )
        for reply in await self.conversations.handle(inbound):
            await self.outgoing.send(message.wa_id, reply)

    async def _first_time(self, message: Incoming) -> bool:
        now = self.clock()
        seen = ProcessedMessage(channel=CHANNEL, message_id=_key(message.id), received_at=now)
        try:
            async with self.db.transaction() as session:
                session.add(seen)
        except IntegrityError:
            return False
        if self._forgot_at is None or now - self._forgot_at >= FORGET_EVERY:
            self._forgot_at = now
            async with self.db.transaction() as session:
                await session.exec(
                    delete(ProcessedMessage).where(
                        col(ProcessedMessage.channel) == CHANNEL,
                        col(ProcessedMessage.received_at) < now - PROCESSED_KEPT,
                    )
                )
        return True

    async def _apologise(self, wa_id: str) -> None:
        tr = self.translator(None)
        text = tr._("Sorry, something went wrong on our side. Please try again in a minute.")
        try:
            await self.outgoing.send(wa_id, Reply(text))
        except Exception as error:  # the apology is best effort
            log.warning("could not tell %s about the error: %s", wa_id, error)

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


def _key(message_id: str) -> str:
    # wamids are about 60 characters; the column holds 128.
    return message_id if len(message_id) <= 128 else hashlib.sha256(message_id.encode()).hexdigest()


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
        await channel.drain()

    app.on_shutdown.append(finish_messages)
    app.router.add_get(WEBHOOK_PATH, handshake)
    app.router.add_post(WEBHOOK_PATH, receive)


def whatsapp_channel(app: web.Application) -> WhatsAppChannel:
    return app[WHATSAPP_CHANNEL]
