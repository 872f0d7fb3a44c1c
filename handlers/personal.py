"""The client's rights over their data: /mydata shows everything kept about them (a
readable message and a JSON file), /forget erases it after a confirmation, and the
"Unsubscribe" button under every offer stops offers."""

from __future__ import annotations

import json
from datetime import datetime

from domain import vocabulary as press
from domain.agenda import STATUS_NAMES
from domain.replies import Button, Document, Reply, rows
from domain.text import one_line
from domain.vocabulary import Act, Step
from handlers.common import menu_button
from handlers.flows import Flow
from handlers.menu import stop_marketing
from handlers.turn import Turn
from storage.personal import erase_client, personal_data

SHOWN_VISITS = 10


async def command_mydata(turn: Turn) -> list[Reply]:
    client = turn.client
    assert client is not None and client.id is not None
    data = await personal_data(session=turn.session, client_id=client.id)
    tr, kept = turn.tr, data["client"]
    yes, no = turn._("yes"), turn._("no")

    def moment(value: str | None) -> str:
        return tr.when(_parse(value)) if value else no

    lines = [
        turn._("What we keep about you:"),
        turn._("Name: {name}").format(name=one_line(client.name)),
        turn._("Phone: {phone}").format(phone=client.phone or "—"),
        turn._("Birthday: {day}").format(day=tr.day(client.birthday) if client.birthday else "—"),
        turn._("Language: {code}").format(code=client.locale),
        turn._("Consent to data processing: {when}").format(when=moment(kept["consent_at"])),
        turn._("Offers: {answer}").format(answer=yes if client.marketing_allowed else no),
        turn._("Chats: {chats}").format(
            chats=", ".join(chat["channel"] for chat in data["chats"]) or "—"
        ),
    ]
    if client.preference_note:
        lines.append(turn._("Your note: {text}").format(text=one_line(client.preference_note)))
    if client.staff_notes:
        lines.append(turn._("Staff notes: {text}").format(text=one_line(client.staff_notes)))
    visits = data["visits"]
    lines.append(tr.n_("{n} visit:", "{n} visits:", len(visits)).format(n=len(visits)))
    for visit in visits[-SHOWN_VISITS:]:
        service = turn.catalog.services.get(visit["service_id"])
        title = service.title(turn.locale) if service else "—"
        status = turn._(STATUS_NAMES.get(visit["status"], visit["status"]))
        lines.append(f"  {tr.when(_parse(visit['starts_at']))} — {title} ({status})")
    if data["ratings"]:
        stars = ", ".join(str(r["rating"]) for r in data["ratings"])
        lines.append(turn._("Ratings: {stars}").format(stars=stars))
    lines.append(
        tr.n_(
            "{n} message sent to you is on record.",
            "{n} messages sent to you are on record.",
            len(data["messages"]),
        ).format(n=len(data["messages"]))
    )
    lines.append(turn._("The full record is in the file below. /forget erases it."))
    body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    return [
        Reply(
            "\n".join(lines),
            buttons=rows([menu_button(turn)]),
            document=Document(body, filename="my-data.json"),
        )
    ]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def command_forget(turn: Turn) -> list[Reply]:
    text = turn._(
        "This erases your name, phone, birthday, notes, comments and the chats linked to "
        "you; visits stay only as anonymous figures. Booked visits stay booked, but we will "
        "not be able to remind you. Erase your data?"
    )
    buttons = [
        Button(turn._("Yes, erase my data"), press.tap(Act.FORGET_ME)),
        menu_button(turn),
    ]
    return [Reply(text, buttons=rows(buttons))]


async def press_forget(turn: Turn, args: list[str]) -> list[Reply]:
    client = turn.client
    if client is None:
        return [Reply(turn._("There is nothing stored about this chat."))]
    # This chat goes too: unlinked now, deleted when the turn is saved.
    turn.conversation.client_id = None
    turn.goto(Step.START)
    turn.forget_chat = True
    await turn.session.flush()
    await erase_client(session=turn.session, client=client, now=turn.now, by="the client")
    turn.client = None
    text = turn._(
        "Done: your data is erased. If you write to us again, we will start from scratch."
    )
    return [Reply(text)]


async def press_unsubscribe(turn: Turn, args: list[str]) -> list[Reply]:
    return await stop_marketing(turn)


FLOW = Flow(
    "personal data",
    actions={Act.FORGET_ME: press_forget, Act.UNSUBSCRIBE: press_unsubscribe},
)
