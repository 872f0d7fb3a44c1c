"""Replies → WhatsApp Cloud API calls through pywa (async), within WhatsApp's limits: 4096
characters of text, 1024 in the body of an interactive message, three reply buttons of 20
characters, lists of ten rows of 24 (longer lists page with "More…")."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from pywa_async import WhatsApp
from pywa_async.errors import RateLimitHit, TooManyMessages
from pywa_async.types import Button as ReplyButton
from pywa_async.types import Section, SectionList, SectionRow

from bot.adapters import common
from domain.replies import Button, Reply, links_as_text
from domain.text import Translator

log = logging.getLogger(__name__)

Translators = Callable[[str | None], Translator]

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
# Failed-delivery codes that mean "do not write to this person on WhatsApp": not a
# WhatsApp user (131026); 131050: opted out of the business's marketing (reminders still go).
UNREACHABLE_CODES = frozenset({131026})
MARKETING_STOPPED = 131050


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
        reply = links_as_text(reply)  # a link cannot sit beside reply buttons: it is text
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
