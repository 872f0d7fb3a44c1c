"""The main menu, help, /stop and the answer to a button that no longer means anything."""

from __future__ import annotations

from domain import vocabulary as press
from domain.people import first_name
from domain.replies import Button, Reply, rows
from domain.vocabulary import Act, Step
from handlers.common import menu_button
from handlers.flows import Flow
from handlers.turn import Turn
from storage.guards import opt_out_of_marketing
from storage.queries import last_visit


async def view_menu(turn: Turn) -> Reply:
    assert turn.client is not None
    buttons = [Button(turn._("Book a visit"), press.tap(Act.START_BOOKING))]
    if turn.client.last_visit_at is not None or await last_visit(
        session=turn.session, client_id=_id(turn), now=turn.now
    ):
        buttons.append(Button(turn._("Repeat last visit"), press.tap(Act.REPEAT_LAST_VISIT)))
    buttons.append(Button(turn._("My visits"), press.tap(Act.MY_VISITS)))
    if turn.config.loyalty is not None:
        buttons += [
            Button(turn._("My bonus"), press.tap(Act.MY_BONUS)),
            Button(turn._("Invite a friend"), press.tap(Act.INVITE_FRIEND)),
        ]
    buttons += [
        Button(turn._("Preferences"), press.tap(Act.PREFERENCES)),
        Button(turn._("Help"), press.tap(Act.HELP)),
    ]
    text = turn._("{name}, what would you like to do?").format(name=first_name(turn.client.name))
    return Reply(text, buttons=rows(buttons), edit=True)


async def show_menu(turn: Turn) -> list[Reply]:
    turn.goto(Step.MENU)
    return [await view_menu(turn)]


async def press_menu(turn: Turn, args: list[str]) -> list[Reply]:
    return await show_menu(turn)


async def view_help(turn: Turn) -> Reply:
    business = turn.config.business
    lines = [
        turn._("{business} booking bot.").format(business=business.name),
        turn._("Book, reschedule or cancel a visit with the buttons; we remind you before it."),
        "",
        turn._("/start — main menu"),
        turn._("/stop — no more offers (reminders about your visits still come)"),
        turn._("/help — this help"),
        turn._("/mydata — everything we keep about you"),
        turn._("/forget — erase your data"),
    ]
    if address := business.where(turn.locale):
        lines += ["", turn._("Address: {address}").format(address=address)]
    if business.phone:
        lines.append(turn._("Phone: {phone}").format(phone=business.phone))
    return Reply("\n".join(lines), buttons=rows([menu_button(turn)]), edit=True)


async def show_help(turn: Turn) -> list[Reply]:
    if turn.client is not None:
        turn.goto(Step.HELP)
    return [await view_help(turn)]


async def press_help(turn: Turn, args: list[str]) -> list[Reply]:
    return await show_help(turn)


async def stop_marketing(turn: Turn) -> list[Reply]:
    client = turn.client
    if client is not None:
        opt_out_of_marketing(client, turn.now)
    text = turn._(
        "Done: no more offers from us. Reminders about your visits will still come. "
        "You can turn offers back on in Preferences."
    )
    return [Reply(text, buttons=rows([menu_button(turn)]) if client else ())]


async def stale(turn: Turn) -> list[Reply]:
    """An unknown or outdated button: say so, and show the menu."""
    text = turn._("That button is out of date. Here is the menu.")
    if turn.client is None:
        return [Reply(text)]
    turn.goto(Step.MENU)
    view = await view_menu(turn)
    return [Reply(f"{text}\n\n{view.text}", buttons=view.buttons)]


def _id(turn: Turn) -> int:
    assert turn.client is not None and turn.client.id is not None
    return turn.client.id


FLOW = Flow(
    "menu",
    views={Step.MENU: view_menu, Step.HELP: view_help},
    actions={Act.MAIN_MENU: press_menu, Act.HELP: press_help},
)
