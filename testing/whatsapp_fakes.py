"""WhatsApp without the network: a fake Graph API behind `httpx.MockTransport` that records
every message the bot sends and answers like the Cloud API (or with its error JSON when
scripted), webhook bodies built from the recorded payloads in testing/data, signed
with the app secret, and a person who types and taps through the aiohttp webhook.

    api = FakeGraphAPI()
    client = create_whatsapp(phone_id=PHONE_ID, token=TOKEN, api_url=API_URL, http=api.http())
    api.script(pair_rate_limit())         # the next message gets error 131056
    api.script_to("79161234567", undeliverable(), times=None)   # this person: always 131026
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.adapters.whatsapp import SIGNATURE_HEADER, WEBHOOK_PATH, WhatsAppChannel

PHONE_ID = "106540352242922"  # as in the recorded payloads
TOKEN = "EAAJB-test-token"
APP_SECRET = "41678a4f0b5e6c7d8e9f00112233aabb"
VERIFY_TOKEN = "britva-webhook"
API_URL = "https://graph.example.test"
DATA = Path(__file__).resolve().parent / "data"  # recorded WhatsApp Cloud API payloads
RECORDED_SENDER = "16505551234"  # the person in the recorded payloads

_MESSAGES_PATH = re.compile(r"^/v\d+\.\d+/(?P<phone_id>\d+)/messages$")
_wamids = itertools.count(1)


# --- the Graph API -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the fake says to one request: `body=None` answers with the sent message."""

    status: int = 200
    body: Any = None


def ok() -> Answer:
    return Answer()


def cloud_error(code: int, message: str, *, details: str = "", status: int = 400) -> Answer:
    """The Cloud API's error JSON (developers.facebook.com: Cloud API error codes)."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AazZbSzwF3qyyXGGtDfQBZ1",
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Answer(status, {"error": error})


def pair_rate_limit() -> Answer:
    return cloud_error(
        131056,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        details="Message failed to send because there were too many messages sent from this "
        "phone number to the same phone number in a short period of time.",
    )


def throughput_limit() -> Answer:
    return cloud_error(
        130429, "(#130429) Rate limit hit", details="Cloud API message throughput reached."
    )


def undeliverable() -> Answer:
    return cloud_error(131026, "(#131026) Message undeliverable", details="Message Undeliverable.")


@dataclass(frozen=True)
class Row:
    """A reply button or a list row as the person sees it."""

    title: str
    id: str
    description: str | None = None
    kind: str = "button"  # button / row


@dataclass(frozen=True)
class Sent:
    """One POST /{version}/{phone_id}/messages the fake received, and its answer."""

    url: str
    to: str
    body: dict[str, Any]
    status: int

    @property
    def delivered(self) -> bool:
        return self.status == 200

    @property
    def kind(self) -> str:
        """text, button (reply buttons), list or template."""
        if self.body["type"] == "interactive":
            return str(self.body["interactive"]["type"])
        return str(self.body["type"])

    @property
    def text(self) -> str:
        if self.body["type"] == "text":
            return str(self.body["text"]["body"])
        if self.body["type"] == "interactive":
            return str(self.body["interactive"].get("body", {}).get("text", ""))
        return ""

    @property
    def rows(self) -> list[Row]:
        if self.body["type"] != "interactive":
            return []
        action = self.body["interactive"]["action"]
        if self.kind == "button":
            return [Row(b["reply"]["title"], b["reply"]["id"]) for b in action["buttons"]]
        return [
            Row(row["title"], row["id"], row.get("description"), kind="row")
            for section in action["sections"]
            for row in section["rows"]
        ]

    @property
    def titles(self) -> list[str]:
        return [row.title for row in self.rows]

    @property
    def list_button(self) -> str:
        return str(self.body["interactive"]["action"]["button"])

    @property
    def template(self) -> dict[str, Any]:
        return dict(self.body["template"])

    @property
    def template_values(self) -> list[str]:
        return [
            parameter["text"]
            for component in self.template.get("components", [])
            if component["type"] == "body"
            for parameter in component["parameters"]
        ]


class FakeGraphAPI:
    """The messages endpoint of the Cloud API for one phone number; anything else is 404,
    a wrong token 401. Answers, first match wins: a per-person rule (`script_to`), the next
    scripted answer (`script`, in order), else the sent message's id."""

    def __init__(self, phone_id: str = PHONE_ID, token: str = TOKEN) -> None:
        self.phone_id = phone_id
        self.token = token
        self.requests: list[Sent] = []
        self.other_calls: list[str] = []
        self._next: list[Answer] = []
        self._people: dict[str, tuple[Answer, int | None]] = {}

    def http(self) -> httpx.AsyncClient:
        """An httpx client whose every request lands here."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def script(self, *answers: Answer) -> None:
        self._next.extend(answers)

    def script_to(self, wa_id: str, answer: Answer, *, times: int | None = 1) -> None:
        self._people[wa_id] = (answer, times)

    @property
    def delivered(self) -> list[Sent]:
        return [sent for sent in self.requests if sent.delivered]

    def to(self, wa_id: str) -> list[Sent]:
        return [sent for sent in self.delivered if sent.to == wa_id]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(cloud_error(190, "Invalid OAuth access token.", status=401))
        match = _MESSAGES_PATH.match(request.url.path)
        if request.method != "POST" or match is None or match["phone_id"] != self.phone_id:
            self.other_calls.append(f"{request.method} {request.url.path}")
            return _error(cloud_error(100, "Unsupported request", status=404))
        body = json.loads(request.content)
        to = str(body.get("to"))
        answer = self._answer_for(to)
        self.requests.append(Sent(str(request.url), to, body, answer.status))
        if answer.status != 200:
            return _error(answer)
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.fake{next(_wamids):08d}"}],
            },
        )

    def _answer_for(self, to: str) -> Answer:
        if to in self._people:
            answer, times = self._people[to]
            if times is None or times > 0:
                if times is not None:
                    self._people[to] = (answer, times - 1)
                return answer
        if self._next:
            return self._next.pop(0)
        return ok()


def _error(answer: Answer) -> httpx.Response:
    return httpx.Response(answer.status, json=answer.body)


# --- webhooks ------------------------------------------------------------------------------


def recorded(name: str) -> dict[str, Any]:
    """A recorded webhook body from testing/data."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(payload: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {SIGNATURE_HEADER: sign(body), "Content-Type": "application/json"}


_message_ids = itertools.count(1)


def from_person(
    name: str, wa_id: str, display_name: str, *, message_id: str | None = None
) -> dict[str, Any]:
    """The recorded payload `name`, as sent by someone else (new message id unless given)."""
    payload = copy.deepcopy(recorded(name))
    value = payload["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts", []):
        contact["wa_id"] = wa_id
        contact["profile"]["name"] = display_name
    for message in value.get("messages", []):
        message["from"] = wa_id
        message["id"] = message_id or f"wamid.test{next(_message_ids):010d}"
    for status in value.get("statuses", []):
        status["recipient_id"] = wa_id
    return payload


def stamp(payload: dict[str, Any], sent_at: datetime) -> None:
    """Date every message of the webhook body `sent_at`, as WhatsApp would."""
    for entry in payload.get("entry", []):
        for change in entry.get("changes", []):
            for message in change.get("value", {}).get("messages", []):
                message["timestamp"] = str(int(sent_at.timestamp()))


def message_of(payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


@dataclass
class WhatsAppPerson:
    """Someone writing to the bot on WhatsApp: types, taps what the bot last showed them
    (by the title they see, or the full label in a row's description), sends a photo."""

    http: TestClient[web.Request, web.Application]
    channel: WhatsAppChannel
    api: FakeGraphAPI
    wa_id: str = "79161234567"
    name: str = "Ivan"
    sent_ids: list[str] = field(default_factory=list)

    async def post(self, payload: dict[str, Any], *, dated: bool = True) -> list[Sent]:
        """Deliver the webhook, wait until it is handled; what the bot sent in answer. The
        recorded payloads are from 2025: `dated` stamps their messages with the bot's now."""
        if dated:
            stamp(payload, self.channel.clock())
        before = len(self.api.requests)
        body, headers = signed(payload)
        response = await self.http.post(WEBHOOK_PATH, data=body, headers=headers)
        assert response.status == 200, await response.text()
        await self.channel.drain()
        return [sent for sent in self.api.requests[before:] if sent.to == self.wa_id]

    def payload(self, name: str) -> dict[str, Any]:
        payload = from_person(name, self.wa_id, self.name)
        self.sent_ids.append(message_of(payload)["id"])
        return payload

    async def send(self, text: str) -> list[Sent]:
        payload = self.payload("text")
        message_of(payload)["text"]["body"] = text
        return await self.post(payload)

    async def send_recorded(self, name: str) -> list[Sent]:
        return await self.post(self.payload(name))

    async def tap(self, label: str) -> list[Sent]:
        row = self.find(label)
        if row.kind == "button":
            payload = self.payload("button_reply")
            message_of(payload)["interactive"]["button_reply"] = {"id": row.id, "title": row.title}
        else:
            payload = self.payload("list_reply")
            reply = {"id": row.id, "title": row.title}
            if row.description:
                reply["description"] = row.description
            message_of(payload)["interactive"]["list_reply"] = reply
        return await self.post(payload)

    def find(self, label: str) -> Row:
        shown = self.last_choices()
        for row in shown.rows:
            if label in (row.title, row.description):
                return row
        raise AssertionError(f"no {label!r} in {shown.titles}")

    def last_choices(self) -> Sent:
        """The last message with buttons or a list the bot sent this person."""
        for sent in reversed(self.api.to(self.wa_id)):
            if sent.rows:
                return sent
        raise AssertionError("the bot has shown no buttons")
