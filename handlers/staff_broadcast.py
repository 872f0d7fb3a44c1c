"""/broadcast (owner, admin): pick a group of clients, write the text, see the preview —
the message as clients read it and how many will really get it — and confirm. The messages
go through the outbox as kind `broadcast`, at the pace, in the hours and under the caps of
every offer; the sender is told when the last one is settled, and `/broadcast status`
shows how far each has got.

The preview and the confirmation sort the group out with the same function
(storage/broadcasts.py `sort_out`), so what the preview counts is what is queued."""

from __future__ import annotations

import secrets
from decimal import Decimal

from domain import vocabulary as press
from domain.broadcast import (
    GROUP_NAMES,
    TEXT_MAX,
    Audience,
    LeftOut,
    broadcast_reply,
    outcome_text,
)
from domain.loyalty import BROADCAST_GROUPS, Group
from domain.replies import Button, Reply, rows
from domain.retention import MessageClass, send_window_start
from domain.text import N_
from domain.vocabulary import Act, Step, decode_group
from handlers.common import too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow, StaffCommand
from handlers.staff_clients import GROUP_LABELS, group_meaning, groups_today
from handlers.staff_menu import MANAGERS, refuse
from handlers.staff_menu import staff_menu_button as menu_button
from handlers.turn import Turn
from storage.broadcasts import progress, queue_broadcast, recent_broadcasts, sort_out

LEFT_OUT = {
    LeftOut.no_offers: N_("{n} did not agree to offers or turned them off"),
    LeftOut.unreachable: N_("{n} the bot cannot reach (no chat with it, blocked it, no consent)"),
    LeftOut.whatsapp_window: N_(
        "{n} write only on WhatsApp and not in the last 24 hours: WhatsApp allows no free "
        "text to them"
    ),
    LeftOut.birthday: N_("{n} have a birthday within a week: their greeting goes first"),
    LeftOut.capped: N_("{n} had an offer lately (at most {week} in 7 days and {month} in 30)"),
}
STATUS_WORDS = ("status", "статус")


async def command_broadcast(turn: Turn, args: str) -> list[Reply]:
    """/broadcast: a new one; /broadcast status: the ones sent."""
    if args.strip().lower() in STATUS_WORDS:
        return await _show_broadcasts(turn)
    turn.goto(Step.STAFF_BROADCAST)
    return [await view_groups(turn)]


async def view_groups(turn: Turn) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    text = turn._(
        "Whom should the message go to? Only clients who agreed to offers get it; the "
        "preview tells how many, before anything is sent."
    )
    buttons = [
        Button(turn._(GROUP_LABELS[Group(key)]), press.broadcast_to(key))
        for key in BROADCAST_GROUPS
    ]
    layout = [*rows(buttons, per_row=2)]
    if await recent_broadcasts(session=turn.session, limit=1):
        layout.append((Button(turn._("Broadcasts sent"), press.tap(Act.BROADCAST_STATUS)),))
    layout.append((menu_button(turn),))
    return Reply(text, buttons=tuple(layout))


async def on_group_text(turn: Turn, event: Text | Contact) -> list[Reply]:
    hint = turn._("Please choose the group with the buttons below.")
    return [with_hint(hint, await view_groups(turn))]


async def press_to(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return [refused]
    group = decode_group(args, 0, BROADCAST_GROUPS)
    turn.goto(Step.STAFF_BROADCAST_TEXT, g=group)
    return [await view_text(turn)]


def _group(turn: Turn) -> Group:
    return Group(turn.data["g"])


async def view_text(turn: Turn) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    group = _group(turn)
    text = turn._(
        "Write the message to {group} ({meaning}), up to {limit} characters. Before anything "
        "is sent you will see it as clients will, and how many will get it."
    ).format(
        group=turn._(GROUP_NAMES[group]),
        meaning=group_meaning(turn, group),
        limit=turn.tr.number(Decimal(TEXT_MAX)),
    )
    back = Button(turn._("« Another group"), press.staff_open("broadcast"))
    return Reply(text, buttons=rows([back, menu_button(turn)]))


async def on_text(turn: Turn, event: Text | Contact) -> list[Reply]:
    text = typed(event)
    if not text:
        return [with_hint(turn._("Please write the message."), await view_text(turn))]
    if problem := too_long(turn, text, TEXT_MAX):
        return [with_hint(problem, await view_text(turn))]
    turn.goto(Step.STAFF_BROADCAST_PREVIEW, g=_group(turn).value, text=text, d=secrets.token_hex(4))
    return [await view_preview(turn)]


async def _audience(turn: Turn, group: Group) -> Audience:
    """Who of the group would get a broadcast confirmed now, going at the first moment
    offers may go."""
    policy = turn.config.retention
    due = send_window_start(turn.now, MessageClass.marketing, turn.config.tz, policy.quiet_hours)
    groups = await groups_today(turn, vip=group is Group.vip)
    return await sort_out(
        session=turn.session,
        conditions=groups.conditions(group),
        due=due,
        tz=turn.config.tz,
        caps=policy.caps,
    )


async def view_preview(turn: Turn) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    group, text = _group(turn), str(turn.data["text"])
    audience = await _audience(turn, group)
    # What the confirmation is compared with (a new dict: the column sees the change).
    turn.conversation.data = {**turn.data, "n": len(audience.recipients)}
    shop = turn.deps.translator(turn.config.business.default_locale)
    message = broadcast_reply(shop, text)
    lines = [
        turn._("Clients will read:"),
        "———",
        message.text,
        *(f"[ {button.label} ]" for button in message.flat_buttons),
        "———",
        *_summary(turn, group, audience),
    ]
    buttons = []
    if audience.recipients:
        label = turn.tr.n_("Send to {n} client", "Send to {n} clients", len(audience.recipients))
        buttons.append(
            Button(label.format(n=len(audience.recipients)), press.broadcast_send(turn.data["d"]))
        )
    buttons.append(Button(turn._("Change the text"), press.tap(Act.BROADCAST_EDIT)))
    buttons.append(Button(turn._("« Another group"), press.staff_open("broadcast")))
    return Reply("\n".join(lines), buttons=(*rows(buttons), (menu_button(turn),)))


def _summary(turn: Turn, group: Group, audience: Audience) -> list[str]:
    policy = turn.config.retention
    lines = [
        turn._("{group} ({meaning}): {n}.").format(
            group=turn._(GROUP_LABELS[group]),
            meaning=group_meaning(turn, group),
            n=audience.group_size,
        ),
        turn._("It will go to {n} of them.").format(n=len(audience.recipients)),
    ]
    reasons = [
        turn._(LEFT_OUT[reason]).format(
            n=audience.left_out[reason],
            week=policy.marketing_per_7_days,
            month=policy.marketing_per_30_days,
        )
        for reason in LeftOut
        if audience.left_out[reason]
    ]
    if reasons:
        lines.append(turn._("Not to:") + "\n" + "\n".join(f"– {reason}" for reason in reasons))
    due = audience.due
    window = turn._("Offers go out only {start}–{end}.").format(
        start=policy.marketing_from.strftime("%H:%M"), end=policy.marketing_to.strftime("%H:%M")
    )
    if due is not None and due > turn.now:
        lines.append(window + " " + turn._("It will go {when}.").format(when=turn.tr.when(due)))
    else:
        lines.append(window + " " + turn._("It goes at once."))
    return lines


async def on_preview_text(turn: Turn, event: Text | Contact) -> list[Reply]:
    hint = turn._("Please send it, change the text or choose another group with the buttons below.")
    return [with_hint(hint, await view_preview(turn))]


async def press_edit(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return [refused]
    if turn.step not in (Step.STAFF_BROADCAST_PREVIEW, Step.STAFF_BROADCAST_TEXT):
        return [_out_of_date(turn)]
    turn.goto(Step.STAFF_BROADCAST_TEXT, g=_group(turn).value)
    return [await view_text(turn)]


def _out_of_date(turn: Turn) -> Reply:
    text = turn._("This preview is out of date: nothing was sent. /broadcast starts a new one.")
    return Reply(text, buttons=rows([menu_button(turn)]))


async def press_send(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return [refused]
    draft = args[0] if args else ""
    if turn.step != Step.STAFF_BROADCAST_PREVIEW or turn.data.get("d") != draft:
        return [_out_of_date(turn)]  # sent already, or an older preview: never twice
    assert turn.staff is not None and turn.staff.id is not None
    group, text, previewed = _group(turn), str(turn.data["text"]), turn.data.get("n")
    audience = await _audience(turn, group)
    if not audience.recipients:
        turn.goto(Step.STAFF_BROADCAST)
        nobody = turn._("Nobody in this group can get it now, so nothing was sent.")
        return [Reply(nobody), await view_groups(turn)]
    broadcast = await queue_broadcast(
        session=turn.session,
        staff_id=turn.staff.id,
        group=group.value,
        text=text,
        audience=audience,
        now=turn.now,
    )
    turn.goto(Step.STAFF_BROADCASTS)  # the draft is gone: its button cannot send it again
    n = len(audience.recipients)
    when = turn._("at once") if broadcast.due_at <= turn.now else turn.tr.when(broadcast.due_at)
    lines = [
        turn.tr.n_(
            "Queued for {n} client; it goes {when}.", "Queued for {n} clients; it goes {when}.", n
        ).format(n=n, when=when)
    ]
    if previewed is not None and previewed != n:
        lines.append(
            turn._("(The preview said {before}: the group changed meanwhile.)").format(
                before=previewed
            )
        )
    lines.append(
        turn._(
            "You will get a message when it is done; /broadcast status shows how far it has got."
        )
    )
    return [Reply("\n".join(lines), buttons=rows([menu_button(turn)]))]


# --- what was sent -------------------------------------------------------------------------


async def _show_broadcasts(turn: Turn) -> list[Reply]:
    turn.goto(Step.STAFF_BROADCASTS)
    return [await view_broadcasts(turn)]


async def press_status(turn: Turn, args: list[str]) -> list[Reply]:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return [refused]
    return await _show_broadcasts(turn)


async def view_broadcasts(turn: Turn) -> Reply:
    refused = refuse(turn, MANAGERS)
    if refused is not None:
        return refused
    sent = await recent_broadcasts(session=turn.session)
    if not sent:
        lines = [turn._("No broadcasts yet.")]
    else:
        lines = [turn._("The last broadcasts:")]
        for broadcast in sent:
            counts = await progress(session=turn.session, broadcast=broadcast)
            words = " ".join(broadcast.text.split())
            lines += [
                "",
                outcome_text(
                    turn.tr,
                    group=broadcast.audience,
                    created_at=broadcast.created_at,
                    counts=counts,
                ),
                "   " + (words if len(words) <= 80 else words[:79] + "…"),
            ]
    new = Button(turn._("New broadcast"), press.staff_open("broadcast"))
    return Reply("\n".join(lines), buttons=rows([new, menu_button(turn)]))


FLOW = Flow(
    "staff broadcast",
    views={
        Step.STAFF_BROADCAST: view_groups,
        Step.STAFF_BROADCAST_TEXT: view_text,
        Step.STAFF_BROADCAST_PREVIEW: view_preview,
        Step.STAFF_BROADCASTS: view_broadcasts,
    },
    text_steps={
        Step.STAFF_BROADCAST: on_group_text,
        Step.STAFF_BROADCAST_TEXT: on_text,
        Step.STAFF_BROADCAST_PREVIEW: on_preview_text,
    },
    actions={
        Act.BROADCAST_TO: press_to,
        Act.BROADCAST_SEND: press_send,
        Act.BROADCAST_EDIT: press_edit,
        Act.BROADCAST_STATUS: press_status,
    },
    commands={
        "broadcast": StaffCommand(command_broadcast, N_("Write to clients"), MANAGERS),
    },
)
