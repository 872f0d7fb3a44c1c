"""Who is staff, and the staff's menu: roles, the command list of each role, and the
one-time invitation links of /invite.

The role is read from the database on every turn (`Turn.staff`); every staff command and
button checks it again here, so a forged payload from a client's chat, or from a master
reaching for the owner's tools, is refused."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

from domain import vocabulary as press
from domain.replies import Button, Reply, rows
from domain.text import N_, Translator
from domain.vocabulary import Act, Step
from handlers.flows import Flow, Flows, StaffCommand
from handlers.turn import Deps, Turn
from storage.db import Database
from storage.staff import accept_invite, create_invite, staff_with_chats
from storage.tables import Role, Staff

INVITE_PREFIX = "staff_"  # /start staff_<code>: the deep link of an invitation
INVITE_VALID = timedelta(hours=48)
MANAGERS = frozenset({Role.owner, Role.admin})
INVITABLE = {"master": Role.master, "admin": Role.admin}


def is_manager(staff: Staff | None) -> bool:
    return staff is not None and staff.role in MANAGERS


def refuse(turn: Turn, roles: frozenset[Role]) -> Reply | None:
    """None when the sender may do what needs one of `roles`; else the polite refusal."""
    if turn.staff is None:
        return Reply(turn._("This is for the staff of the shop."))
    if turn.staff.role in roles:
        return None
    return Reply(turn._("Only the owner or an administrator can do this."))


def staff_menu_button(turn: Turn) -> Button:
    return Button(turn._("Staff menu"), press.staff_open("menu"))


def registry() -> Flows:
    from handlers.conversation import FLOWS  # the one registry; imported late (a cycle)

    return FLOWS


def command_list(tr: Translator, role: str) -> tuple[tuple[str, str], ...]:
    """The chat's command list for `role`, in the reader's language."""
    return (
        ("start", tr._("The staff menu")),
        *((name, tr._(command.about)) for name, command in registry().commands_for(role)),
    )


async def staff_command_lists(
    db: Database, deps: Deps
) -> list[tuple[int, tuple[tuple[str, str], ...]]]:
    """Each staff Telegram chat with its role's command list (set when the bot starts)."""
    async with db.reading() as session:
        people = await staff_with_chats(session=session)
    tr = deps.translator(None)
    return [(person.telegram_id or 0, command_list(tr, person.role)) for person in people]


async def view_staff_menu(turn: Turn) -> Reply:
    staff = turn.staff
    if staff is None:  # the role was taken away since this step was shown
        return Reply(turn._("This is for the staff of the shop."))
    buttons = [
        Button(turn._(command.about), press.staff_open(name))
        for name, command in registry().commands_for(staff.role)
        if command.button
    ]
    lines = [turn._("{name}, the staff menu. Commands:").format(name=staff.name)]
    lines += [f"/{name} — {text}" for name, text in command_list(turn.tr, staff.role)[1:]]
    return Reply("\n".join(lines), buttons=rows(buttons, per_row=2))


async def show_staff_menu(turn: Turn) -> list[Reply]:
    turn.goto(Step.STAFF_MENU)
    view = await view_staff_menu(turn)
    if turn.staff is None:
        return [view]
    commands = command_list(turn.tr, turn.staff.role)
    return [Reply(view.text, buttons=view.buttons, commands=commands)]


async def stale(turn: Turn) -> list[Reply]:
    """A staff button that cannot be read (forged, garbled): say so, with the staff menu."""
    turn.goto(Step.STAFF_MENU)
    view = await view_staff_menu(turn)
    text = turn._("That button is out of date.")
    return [Reply(f"{text}\n\n{view.text}", buttons=view.buttons)]


async def press_open(turn: Turn, args: list[str]) -> list[Reply]:
    """A staff menu button: the command it names, with the same role check as typed."""
    command = registry().command(args[0] if args else "")
    if command is None:
        return await show_staff_menu(turn)
    refused = refuse(turn, command.roles)
    if refused is not None:
        return [refused]
    return await command.handler(turn, "")


async def run_command(turn: Turn, command: StaffCommand, args: str) -> list[Reply]:
    refused = refuse(turn, command.roles)
    if refused is not None:
        return [refused]
    return await command.handler(turn, args)


# --- invitations -------------------------------------------------------------------------


async def command_invite(turn: Turn, args: str) -> list[Reply]:
    """/invite master [key] or /invite admin: a one-time link, valid for 48 hours."""
    assert turn.staff is not None and turn.staff.id is not None
    words = args.lower().split()
    role = INVITABLE.get(words[0]) if words else None
    if role is None:
        return [Reply(_invite_usage(turn))]
    master_id = None
    if len(words) > 1:
        master = turn.catalog.master_by_key(words[1])
        if master is None or role != Role.master:
            return [Reply(_invite_usage(turn))]
        master_id = master.id
    code = secrets.token_urlsafe(12)
    await create_invite(
        session=turn.session,
        code=code,
        role=role,
        staff_id=master_id,
        created_by=turn.staff.id,
        now=turn.now,
        expires_at=turn.now + INVITE_VALID,
    )
    payload = INVITE_PREFIX + code
    link = turn.deps.links.telegram_start(payload)
    where = link or turn._("Send the bot: /start {payload}").format(payload=payload)
    title = turn._("a master") if role == Role.master else turn._("an administrator")
    text = turn._(
        "An invitation for {whom}. It works once, for 48 hours, and makes whoever opens it "
        "staff: send it only to that person.\n{link}"
    ).format(whom=title, link=where)
    return [Reply(text)]


def _invite_usage(turn: Turn) -> str:
    keys = ", ".join(m.key for m in turn.catalog.masters.values())
    return turn._(
        "Write /invite master or /invite admin. To link a master of business.toml to "
        "their Telegram, add their key: /invite master {example} (keys: {keys})."
    ).format(example=next(iter(keys.split(", ")), "ilya"), keys=keys)


async def start_with_invite(turn: Turn, code: str) -> list[Reply]:
    """/start staff_<code>: the person who opens a valid invitation becomes staff; an
    expired, used or unknown code changes nothing."""
    if turn.inbound.channel != "telegram" or not turn.inbound.external_id.isdigit():
        return [Reply(turn._("Staff invitations work in Telegram."))]
    if turn.staff is not None:
        text = turn._("You are already staff here.")
        return [Reply(text), *await show_staff_menu(turn)]
    joined = await accept_invite(
        session=turn.session,
        code=code,
        telegram_id=int(turn.inbound.external_id),
        name=(turn.inbound.display_name or "").strip()[:60] or turn._("Staff"),
        now=turn.now,
    )
    if joined is None:
        return [
            Reply(
                turn._("This invitation is expired, used or unknown. Ask the owner for a new one.")
            )
        ]
    turn.staff = joined
    master = turn.catalog.masters.get(joined.id or 0)
    if master is not None:  # the planner sends this master's visit checks and day plans here
        turn.catalog.masters[master.id] = replace(master, telegram_id=joined.telegram_id)
    welcome = Reply(turn._("Welcome to the team, {name}!").format(name=joined.name))
    return [welcome, *await show_staff_menu(turn)]


FLOW = Flow(
    "staff menu",
    views={Step.STAFF_MENU: view_staff_menu},
    actions={Act.STAFF_OPEN: press_open},
    commands={
        "invite": StaffCommand(
            command_invite, N_("Invite a master or an administrator"), MANAGERS, button=False
        ),
    },
)
