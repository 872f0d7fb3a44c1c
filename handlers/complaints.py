"""Complaints, for the owner and administrators: /complaints lists the open ones, and
Resolve (there, or on the alert) asks for a short note and closes the complaint with who
resolved it and when. The role is checked again on every press and every note."""

from __future__ import annotations

from domain import vocabulary as press
from domain.feedback import Complaint, complaint_lines
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.text import N_, one_line
from domain.vocabulary import Act, Step
from handlers.common import too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow, StaffCommand
from handlers.staff_day import master_name, service_title
from handlers.staff_menu import MANAGERS, refuse
from handlers.turn import Turn
from storage.feedback import complaint_of, open_complaints
from storage.tables import Feedback, FeedbackStatus, Staff

NOTE_MAX = 500
SHOWN = 10  # complaints on one screen of /complaints (the oldest first)


async def _complaint(turn: Turn, feedback: Feedback) -> Complaint | None:
    return await complaint_of(
        session=turn.session,
        feedback=feedback,
        service_title=lambda visit: service_title(turn, visit),
        master_name=lambda master_id: master_name(turn, master_id),
    )


async def _lines(turn: Turn, feedback: Feedback) -> list[str]:
    complaint = await _complaint(turn, feedback)
    return complaint_lines(turn.tr, complaint) if complaint else []


async def command_complaints(turn: Turn, args: str) -> list[Reply]:
    turn.goto(Step.STAFF_MENU)
    return [await _list(turn)]


async def _list(turn: Turn, *, edit: bool = False) -> Reply:
    shown, total = await open_complaints(session=turn.session, limit=SHOWN)
    menu = Button(turn._("Staff menu"), press.staff_open("menu"))
    if not shown:
        return Reply(turn._("No open complaints."), buttons=rows([menu]), edit=edit)
    lines = [turn.tr.n_("{n} open complaint:", "{n} open complaints:", total).format(n=total)]
    buttons = []
    for feedback in shown:
        complaint = await _complaint(turn, feedback)
        if complaint is not None:
            lines += ["", *complaint_lines(turn.tr, complaint), _given(turn, feedback)]
        day = turn.tr.short_day(turn.tr.local(feedback.created_at).date())
        name = one_line(complaint.client) if complaint else "—"
        label = turn._("Resolve: {name}, {day}").format(name=name, day=day)
        buttons.append(Button(label[:60], _resolve(feedback)))
    if total > len(shown):
        lines += [
            "",
            turn._("The oldest {n} are shown; resolve them to see the rest.").format(n=len(shown)),
        ]
    return Reply("\n".join(lines), buttons=(*rows(buttons, 2), (menu,)), edit=edit)


def _resolve(feedback: Feedback) -> str:
    return press.resolve_complaint(feedback.id)


def _given(turn: Turn, feedback: Feedback) -> str:
    return turn._("Given {when}.").format(when=turn.tr.when(feedback.created_at))


async def _open_complaint(turn: Turn, feedback_id: int) -> Feedback | Reply:
    """The complaint when the presser may resolve it now; else the polite answer."""
    if refused := refuse(turn, MANAGERS):
        return refused
    feedback = await turn.session.get(Feedback, feedback_id)
    if feedback is None or feedback.status == FeedbackStatus.ok:
        return Reply(turn._("This complaint does not exist any more."))
    if feedback.status == FeedbackStatus.resolved:
        return Reply(await _resolved_text(turn, feedback))
    return feedback


async def _resolved_text(turn: Turn, feedback: Feedback) -> str:
    who = await turn.session.get(Staff, feedback.resolved_by_id or 0)
    text = turn._("Already resolved by {name}, {when}: {note}").format(
        name=who.name if who else "—",
        when=turn.tr.when(feedback.resolved_at) if feedback.resolved_at else "—",
        note=one_line(feedback.resolution),
    )
    return text


async def press_resolve(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _open_complaint(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    turn.goto(Step.STAFF_RESOLVE, f=found.id)
    return [await view_resolve(turn)]


async def view_resolve(turn: Turn) -> Reply:
    found = await _open_complaint(turn, int(turn.data.get("f") or 0))
    if isinstance(found, Reply):
        return found
    ask = turn._(
        "How was it resolved? Write a short note for the record, e.g. "
        "“called, apologised, the next visit is free”."
    )
    back = Button(turn._("« Complaints"), press.staff_open("complaints"))
    lines = [*await _lines(turn, found), "", ask]
    return Reply("\n".join(lines), buttons=rows([back]))


async def on_note(turn: Turn, event: Text | Contact) -> list[Reply]:
    found = await _open_complaint(turn, int(turn.data.get("f") or 0))
    if isinstance(found, Reply):
        turn.goto(Step.STAFF_MENU)
        return [found]
    note = typed(event)
    if not note:
        return [with_hint(turn._("Please type the note."), await view_resolve(turn))]
    if refusal := too_long(turn, note, NOTE_MAX):
        return [with_hint(refusal, await view_resolve(turn))]
    assert turn.staff is not None
    found.status, found.resolution = FeedbackStatus.resolved, note
    found.resolved_at, found.resolved_by_id = turn.now, turn.staff.id
    turn.session.add(found)
    took = int((turn.now - found.created_at).total_seconds() // 60)
    text = turn._("Resolved, {took} after the rating. Note: {note}").format(
        took=turn.tr.minutes(max(took, 1)), note=one_line(note)
    )
    turn.goto(Step.STAFF_MENU)
    return [Reply(text), await _list(turn)]


FLOW = Flow(
    "complaints",
    views={Step.STAFF_RESOLVE: view_resolve},
    text_steps={Step.STAFF_RESOLVE: on_note},
    actions={Act.STAFF_RESOLVE: press_resolve},
    commands={
        "complaints": StaffCommand(command_complaints, N_("Open complaints"), MANAGERS),
    },
)
