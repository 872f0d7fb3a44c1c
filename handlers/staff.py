"""The master's answers to "did the client come?"; the caller's role is checked in the
database on every press."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from domain import vocabulary as press
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.vocabulary import Act, Step
from handlers.common import with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.turn import Turn
from storage.loyalty import settle_visit
from storage.outbox import enqueue_for_visit
from storage.stats import refresh_client_stats
from storage.tables import ACTIVE_VISIT, Role, Visit, VisitStatus


async def _visit_for_staff(
    turn: Turn, visit_id: int, *, open_statuses: tuple[str, ...] = ACTIVE_VISIT
) -> Visit | Reply:
    staff = turn.staff
    if staff is None:
        return Reply(turn._("This is for the staff of the shop."))
    visit = await turn.session.get(Visit, visit_id)
    if visit is None:
        return Reply(turn._("This visit does not exist any more."))
    if visit.master_id != staff.id and staff.role not in (Role.owner, Role.admin):
        return Reply(turn._("Only the visit's master or an administrator can mark it."))
    if visit.status not in open_statuses:
        return Reply(turn._("Already marked: {status}.").format(status=_status(turn, visit.status)))
    if visit.starts_at > turn.now:  # "came" before it began is a slip or a forged button
        return Reply(turn._("This visit has not started yet. Mark it once it has begun."))
    return visit


def _status(turn: Turn, status: str) -> str:
    names = {
        VisitStatus.completed: turn._("came"),
        VisitStatus.no_show: turn._("no-show"),
        VisitStatus.cancelled: turn._("cancelled"),
    }
    return names.get(VisitStatus(status), status)


async def complete_visit(turn: Turn, visit: Visit, amount: Decimal) -> None:
    """The client came and paid `amount`: the visit check, the visit card and a walk-in
    (handlers/staff_booking.py) all mark it here."""
    visit.status, visit.completed_at, visit.paid_amount = VisitStatus.completed, turn.now, amount
    turn.session.add(visit)
    await _refresh(turn, visit)
    # The client's thank-you (a walk-in's too), with the next visit at their rhythm one tap
    # away, while they are still at the door (scheduler/messages.py composes it).
    await enqueue_for_visit(
        session=turn.session, kind="next_visit_offer", visit=visit, now=turn.now
    )


async def _complete(turn: Turn, visit: Visit, amount: Decimal) -> list[Reply]:
    await complete_visit(turn, visit, amount)
    turn.goto(Step.START)
    text = turn._("Marked: came, {amount}.").format(amount=turn.tr.money(amount))
    return [Reply(text, edit=True)]


async def _refresh(turn: Turn, visit: Visit) -> None:
    """The client's figures (visits, rhythm, next visit) and loyalty ledger (earned on
    completion, reversed for a no-show after all) follow the visit's new status."""
    await turn.session.flush()
    await refresh_client_stats(
        session=turn.session,
        tz=turn.config.tz,
        return_days={s.id: s.return_interval_days for s in turn.catalog.services.values()},
        client_ids=[visit.client_id],
    )
    await settle_visit(session=turn.session, config=turn.config, visit=visit, now=turn.now)


async def press_came(turn: Turn, args: list[str]) -> list[Reply]:
    # "Came after all" undoes a no-show marked by mistake.
    statuses = (*ACTIVE_VISIT, VisitStatus.no_show)
    found = await _visit_for_staff(turn, int_arg(args, 0), open_statuses=statuses)
    if isinstance(found, Reply):
        return [found]
    return await _complete(turn, found, found.price)


async def press_other_amount(turn: Turn, args: list[str]) -> list[Reply]:
    found = await _visit_for_staff(turn, int_arg(args, 0))
    if isinstance(found, Reply):
        return [found]
    turn.goto(Step.STAFF_AMOUNT, v=found.id)
    return [await view_amount(turn)]


async def view_amount(turn: Turn) -> Reply:
    return Reply(turn._("How much did the client pay? Type the amount, e.g. 1500."))


def read_amount(text: str) -> Decimal | None:
    """'1 500', '1500,50' → the amount in money; None for anything that is not one."""
    try:
        amount = Decimal(text.replace(" ", "").replace("\xa0", "").replace(",", "."))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal(10_000_000):
        return None
    return amount.quantize(Decimal("0.01"))


async def on_amount(turn: Turn, event: Text | Contact) -> list[Reply]:
    amount = read_amount(event.text if isinstance(event, Text) else "")
    if amount is None:
        return [with_hint(turn._("Please type a number, e.g. 1500."), await view_amount(turn))]
    found = await _visit_for_staff(turn, int(turn.data.get("v", 0)))
    if isinstance(found, Reply):
        turn.goto(Step.START)
        return [found]
    return await _complete(turn, found, amount)


async def press_no_show(turn: Turn, args: list[str]) -> list[Reply]:
    # Also the morning after: a visit nobody marked was counted as done at 23:00.
    statuses = (*ACTIVE_VISIT, VisitStatus.completed)
    found = await _visit_for_staff(turn, int_arg(args, 0), open_statuses=statuses)
    if isinstance(found, Reply):
        return [found]
    if found.status == VisitStatus.completed and found.paid_amount is not None:
        text = turn._("Already marked: {status}.").format(status=_status(turn, found.status))
        return [Reply(text)]
    was_completed = found.status == VisitStatus.completed
    found.status, found.completed_at = VisitStatus.no_show, None
    turn.session.add(found)
    if was_completed:
        await _refresh(turn, found)
    else:  # a reward or points it was booked with come back
        await settle_visit(session=turn.session, config=turn.config, visit=found, now=turn.now)
    turn.goto(Step.START)
    undo = Button(turn._("Came after all"), press.staff_came(found.id))
    return [Reply(turn._("Marked: no-show."), buttons=rows([undo]), edit=True)]


FLOW = Flow(
    "staff",
    views={Step.STAFF_AMOUNT: view_amount},
    text_steps={Step.STAFF_AMOUNT: on_amount},
    actions={
        Act.STAFF_CAME: press_came,
        Act.STAFF_OTHER_AMOUNT: press_other_amount,
        Act.STAFF_NO_SHOW: press_no_show,
    },
)
