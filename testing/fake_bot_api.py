"""A fake Telegram Bot API server on 127.0.0.1 for the sender: it records every
sendMessage and sendPhoto (chat, text or caption, keyboard, picture, arrival time) and answers like Telegram would — or, when
scripted, with a flood wait (429), a block (403) or a server error (5xx). A random mode
answers 429 to a share of the requests, for the benchmark.

    api = FakeBotAPI()
    async with serving(api) as url:
        bot = create_bot(TOKEN, api_url=url)
        api.script(too_many(7))             # the next sendMessage gets a 429
        api.script_chat(42, blocked())      # chat 42 always gets a 403
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

TOKEN = "123456:TEST"
BOT_USER: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Regulars",
    "username": "regulars_test_bot",
}
SENT_DATE = 1_795_413_600  # 2026-11-23 06:00 UTC: the date on every message the fake sends


@dataclass(frozen=True)
class Answer:
    """What the server says to one request: `body=None` answers with the sent message."""

    status: int = 200
    body: Any = None
    content_type: str = "application/json"

    @property
    def ok(self) -> bool:
        return self.status == 200


def ok() -> Answer:
    return Answer()


def too_many(retry_after: int) -> Answer:
    return Answer(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        },
    )


def blocked() -> Answer:
    return Answer(
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )


def server_error(status: int = 500) -> Answer:
    description = {500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Server Error")
    return Answer(status, {"ok": False, "error_code": status, "description": description})


def proxy_error(status: int = 502) -> Answer:
    """A 5xx page from a proxy in front of the Bot API: HTML, not JSON."""
    page = f"<html><body><h1>{status} Bad Gateway</h1></body></html>"
    return Answer(status, page, content_type="text/html")


@dataclass(frozen=True)
class Request:
    """One sendMessage the server received, and how it answered."""

    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    at: float  # the server's clock (time.monotonic unless given another)
    status: int
    photo: bytes | None = None  # sendPhoto: the picture; `text` is then its caption

    @property
    def delivered(self) -> bool:
        return self.status == 200

    @property
    def buttons(self) -> list[str]:
        keyboard = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button["text"] for row in keyboard for button in row]


class FakeBotAPI:
    """sendMessage and getMe at /bot{token}/…; anything else is 404, a wrong token 401.

    Answers, first match wins: a per-chat rule (`script_chat`), the next scripted answer
    (`script`, in order), a 429 with probability `p429` (seeded), else the message."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        clock: Callable[[], float] = time.monotonic,
        p429: float = 0.0,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.clock = clock
        self.p429 = p429
        self.retry_after = retry_after
        self.requests: list[Request] = []
        self.other_calls: list[str] = []
        self._random = random.Random(seed)
        self._next: list[Answer] = []
        self._chats: dict[int, tuple[Answer, int | None]] = {}
        self._message_ids = itertools.count(1000)
        self.app = web.Application()
        self.app.router.add_post("/bot{token}/{method}", self._handle)

    # --- scripting ---------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Answer the next sendMessage calls (whatever their chat) with these, in order."""
        self._next.extend(answers)

    def script_chat(self, chat_id: int, answer: Answer, *, times: int | None = None) -> None:
        """Answer sendMessage to `chat_id` with `answer`, `times` times (None: always)."""
        self._chats[chat_id] = (answer, times)

    def _answer_for(self, chat_id: int) -> Answer:
        if chat_id in self._chats:
            answer, times = self._chats[chat_id]
            if times is None or times > 0:
                if times is not None:
                    self._chats[chat_id] = (answer, times - 1)
                return answer
        if self._next:
            return self._next.pop(0)
        if self.p429 and self._random.random() < self.p429:
            return too_many(self.retry_after)
        return ok()

    # --- what was received -------------------------------------------------------------

    @property
    def delivered(self) -> list[Request]:
        """The messages Telegram would have shown (answered 200)."""
        return [r for r in self.requests if r.delivered]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [r.text for r in self.delivered if chat_id is None or r.chat_id == chat_id]

    def to_chat(self, chat_id: int) -> list[Request]:
        """Every request to `chat_id`, answered or refused."""
        return [r for r in self.requests if r.chat_id == chat_id]

    def duplicates(self) -> dict[tuple[int, str], int]:
        """(chat, text) delivered more than once, with how many times."""
        counts = Counter((r.chat_id, r.text) for r in self.delivered)
        return {key: n for key, n in counts.items() if n > 1}

    def refused(self, status: int) -> list[Request]:
        return [r for r in self.requests if r.status == status]

    # --- the HTTP side -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        if method == "getMe":
            self.other_calls.append(method)
            return web.json_response({"ok": True, "result": BOT_USER})
        if method not in ("sendMessage", "sendPhoto"):
            self.other_calls.append(method)
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
                status=404,
            )
        form = await request.post()
        photo = form.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):  # aiogram's upload
            photo = form.get(photo.removeprefix("attach://"))
        params = {key: _decoded(value) for key, value in form.items()}
        chat_id = int(params["chat_id"])
        text = str(params.get("text", params.get("caption", "")))
        markup = params.get("reply_markup")
        answer = self._answer_for(chat_id)
        self.requests.append(
            Request(
                chat_id=chat_id,
                text=text,
                reply_markup=markup if isinstance(markup, dict) else None,
                at=self.clock(),
                status=answer.status,
                photo=photo.file.read() if isinstance(photo, web.FileField) else None,
            )
        )
        if not answer.ok:
            if answer.content_type == "application/json":
                return web.json_response(answer.body, status=answer.status)
            return web.Response(
                text=str(answer.body), status=answer.status, content_type=answer.content_type
            )
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": SENT_DATE,
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
        }
        if method == "sendPhoto":
            message["photo"] = [_photo_size()]
            if text:
                message["caption"] = text
        else:
            message["text"] = text
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return web.json_response({"ok": True, "result": message})


def _photo_size() -> dict[str, Any]:
    return {"file_id": "photo-1", "file_unique_id": "p1", "width": 800, "height": 450}


def _decoded(value: Any) -> Any:
    # aiogram sends objects (reply_markup) as JSON strings in form fields.
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


class Served(Protocol):
    app: web.Application


@asynccontextmanager
async def serving(api: Served) -> AsyncIterator[str]:
    """Serve `api` (this fake, or testing.telegram_fakes's) on 127.0.0.1 at a free port;
    yields its base URL for `create_bot`."""
    runner = web.AppRunner(api.app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
