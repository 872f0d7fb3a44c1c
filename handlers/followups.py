"""Answers to the bot's own messages: "I'll be there" on a reminder, a rating, "not now" on
a return nudge, the reason a sleeping client gives."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from domain import vocabulary as press
from domain.payloads import BadPayload, int_arg
from domain.replies import Button, Reply, rows
from domain.retention import CHURN_REASONS
from domain.vocabulary import Act, Step
from handlers import menu
from handlers.common import menu_button, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.turn import Turn
from storage.outbox import unanswered_winback, winback_percent
from storage.tables import ACTIVE_VISIT, ChurnReason, Feedback, Visit, VisitStatus

COMMENT_MAX = 1000
REASONS = tuple(CHURN_REASONS)  # the answers a win-back offers


async def _own_visit(turn: Turn, visit_id: int) -> Visit | None:
    visit = await turn.session.get(Visit, visit_id)
    if visit is None or turn.client is None or visit.client_id != turn.client.id:
        return None
    return visit


async def press_confirm_visit(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_visit(turn, int_arg(args, 0))
    if visit is None or visit.status not in ACTIVE_VISIT or visit.starts_at <= turn.now:
        from handlers.visits import visit_gone

        return await visit_gone(turn)
    if visit.status != VisitStatus.confirmed:
        visit.status, visit.confirmed_at = VisitStatus.confirmed, turn.now
        turn.session.add(visit)
    text = turn._("Thank you! We are expecting you {when}.").format(
        when=turn.tr.when(visit.starts_at)
    )
    return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]


async def press_rating(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_visit(turn, int_arg(args, 0))
    rating = int_arg(args, 1)
    if not 1 <= rating <= 5:
        raise BadPayload(str(rating))
    if visit is None or visit.status != VisitStatus.completed:
        return [Reply(turn._("This visit cannot be rated."), buttons=rows([menu_button(turn)]))]
    existing = (
        await turn.session.exec(select(Feedback).where(Feedback.visit_id == visit.id))
    ).first()
    if existing is not None:  # a second tap must not close an open complaint
        text = turn._("Thank you, we already have your rating for this visit.")
        return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]
    feedback = Feedback(visit_id=visit.id or 0, rating=rating, created_at=turn.now)
    feedback.status = "open" if rating <= 3 else "ok"
    turn.session.add(feedback)
    if rating <= 3:
        turn.goto(Step.FEEDBACK_COMMENT, v=visit.id)
        return [await view_comment(turn)]
    text = turn._("Thank you for the rating! We are glad you liked it.")
    buttons = [menu_button(turn)]
    if turn.config.business.review_url:
        text += "\n" + turn._("It would help us a lot if you left a review:")
        text += "\n" + turn.config.business.review_url
    return [Reply(text, buttons=rows(buttons), edit=True)]


async def view_comment(turn: Turn) -> Reply:
    text = turn._("We are sorry it was not perfect. What went wrong? Write a few words:")
    return Reply(
        text,
        buttons=rows([Button(turn._("Skip"), press.tap(Act.SKIP_FEEDBACK_COMMENT))]),
        edit=True,
    )


async def on_comment(turn: Turn, event: Text | Contact) -> list[Reply]:
    comment = typed(event)
    if not comment:
        return [with_hint(turn._("Please type the comment."), await view_comment(turn))]
    if refusal := too_long(turn, comment, COMMENT_MAX):
        return [with_hint(refusal, await view_comment(turn))]
    feedback = (
        await turn.session.exec(select(Feedback).where(Feedback.visit_id == turn.data.get("v")))
    ).first()
    if feedback is not None:
        feedback.comment = comment
        turn.session.add(feedback)
    turn.goto(Step.MENU)
    text = turn._("Thank you for telling us. We will look into it and do our best to put it right.")
    return [Reply(text, buttons=rows([menu_button(turn)]))]


async def press_skip_comment(turn: Turn, args: list[str]) -> list[Reply]:
    turn.goto(Step.MENU)
    return [
        Reply(turn._("Thank you for the rating."), buttons=rows([menu_button(turn)]), edit=True)
    ]


async def press_not_now(turn: Turn, args: list[str]) -> list[Reply]:
    client = turn.client
    assert client is not None
    today = turn.tr.local(turn.now).date()
    cycle = timedelta(days=client.rhythm_days or 30)
    client.nudge_snoozed_until = max(today, client.next_visit_due or today) + cycle
    text = turn._("All right, we will not remind you this time. See you!")
    return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]


async def press_reason(turn: Turn, args: list[str]) -> list[Reply]:
    """The answer to a win-back: counts once, for a win-back sent to this client, and
    gives the discount that message offered. Anything else is a stale (or forged) button."""
    outbox_id, reason = int_arg(args, 0), args[1] if len(args) > 1 else ""
    if reason not in REASONS:
        raise BadPayload(reason)
    client = turn.client
    assert client is not None and client.id is not None
    winback = await unanswered_winback(
        session=turn.session, outbox_id=outbox_id, client_id=client.id
    )
    if winback is None or client.holdout:  # held-out clients are the control group
        return await menu.stale(turn)
    turn.session.add(
        ChurnReason(client_id=client.id, answer=reason, outbox_id=winback.id, created_at=turn.now)
    )
    until = turn.tr.local(turn.now).date() + timedelta(days=turn.config.offers.offer_valid_days)
    text = turn._("Thank you for telling us. Come back with {discount} off any visit until {date}.")
    discount = f"{winback_percent(winback, turn.config)}%"
    text = text.format(discount=discount, date=turn.tr.day(until))
    buttons = [Button(turn._("Book a visit"), press.tap(Act.START_BOOKING)), menu_button(turn)]
    return [Reply(text, buttons=rows(buttons), edit=True)]


FLOW = Flow(
    "follow-ups",
    views={Step.FEEDBACK_COMMENT: view_comment},
    text_steps={Step.FEEDBACK_COMMENT: on_comment},
    actions={
        Act.CONFIRM_ATTENDANCE: press_confirm_visit,
        Act.RATE_VISIT: press_rating,
        Act.SKIP_FEEDBACK_COMMENT: press_skip_comment,
        Act.NOT_NOW: press_not_now,
        Act.WINBACK_REASON: press_reason,
    },
)
