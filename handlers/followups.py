"""Answers to the bot's own messages: "I'll be there" on a reminder, a rating, "not now" on
a return nudge, the reason a sleeping client gives."""

from __future__ import annotations

from datetime import timedelta

from domain import vocabulary as press
from domain.feedback import can_change_rating, is_complaint
from domain.payloads import BadPayload, int_arg
from domain.replies import Button, Reply, rows
from domain.retention import CHURN_REASONS
from domain.vocabulary import Act, Step, star_buttons
from handlers import menu
from handlers.common import menu_button, too_long, typed, with_hint
from handlers.events import Contact, Text
from handlers.flows import Flow
from handlers.turn import Turn
from storage.feedback import alert_now, alerted_staff, feedback_of_visit
from storage.outbox import unanswered_winback, winback_percent
from storage.tables import (
    ACTIVE_VISIT,
    ChurnReason,
    Feedback,
    FeedbackStatus,
    Visit,
    VisitStatus,
)

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
    """A tap on the stars: one rating per visit, changeable for 24 hours. 3 or less asks
    what went wrong and becomes a complaint the owner is alerted to; 4 or 5 thanks and
    gives the review link."""
    visit = await _own_visit(turn, int_arg(args, 0))
    rating = int_arg(args, 1)
    if not 1 <= rating <= 5:
        raise BadPayload(str(rating))
    if visit is None or visit.status != VisitStatus.completed:
        return [Reply(turn._("This visit cannot be rated."), buttons=rows([menu_button(turn)]))]
    feedback = await feedback_of_visit(session=turn.session, visit_id=visit.id or 0)
    if feedback is not None and not can_change_rating(feedback.created_at, turn.now):
        text = turn._("Thank you, we already have your rating for this visit.")
        return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]
    if feedback is None:
        feedback = Feedback(visit_id=visit.id or 0, rating=rating, created_at=turn.now)
    changed, feedback.rating = feedback.id is not None, rating
    if is_complaint(rating) and feedback.status == FeedbackStatus.ok:
        # A new complaint (or a rating changed down): ask, then alert the owner.
        feedback.status = FeedbackStatus.open
        turn.session.add(feedback)
        turn.goto(Step.FEEDBACK_COMMENT, v=visit.id)
        return [await view_comment(turn)]
    turn.session.add(feedback)  # a complaint stays open until staff resolve it
    if is_complaint(rating):
        text = turn._("Thank you, your rating is changed.")
        return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]
    text = turn._("Thank you for the rating! We are glad you liked it.")
    if changed:
        text = turn._("Thank you, your rating is changed. We are glad you liked it.")
    buttons = [menu_button(turn)]
    if review_url := turn.config.business.review_url:
        text += "\n" + turn._("It would help us a lot if you left a review.")
        buttons.insert(0, Button.link(turn._("Leave a review"), review_url))
    return [Reply(text, buttons=rows(buttons), edit=True)]


async def press_rate_past(turn: Turn, args: list[str]) -> list[Reply]:
    """ "Rate" on a past visit in My visits: the stars, as the rating request has them."""
    visit = await _own_visit(turn, int_arg(args, 0))
    if visit is None or visit.status != VisitStatus.completed:
        return [Reply(turn._("This visit cannot be rated."), buttons=rows([menu_button(turn)]))]
    feedback = await feedback_of_visit(session=turn.session, visit_id=visit.id or 0)
    if feedback is not None and not can_change_rating(feedback.created_at, turn.now):
        text = turn._("Thank you, we already have your rating for this visit.")
        return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]
    text = turn._("How was your {service} with {master}, {when}? One tap to rate it:").format(
        service=turn.catalog.visit_title(visit.service_id, visit.addon_service_id, turn.locale),
        master=_master_name(turn, visit.master_id),
        when=turn.tr.when(visit.starts_at),
    )
    back = Button(turn._("« My visits"), press.tap(Act.MY_VISITS))
    return [Reply(text, buttons=rows([*star_buttons(visit.id), back]), edit=True)]


def _master_name(turn: Turn, master_id: int) -> str:
    master = turn.catalog.masters.get(master_id)
    return master.title(turn.locale) if master else "—"


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
    feedback = await _complaint_in_hand(turn)
    told = False
    if feedback is not None:
        feedback.comment = comment
        turn.session.add(feedback)
        told = await _alert(turn, feedback, with_comment=True)
    turn.goto(Step.MENU)
    if told:
        text = turn._(
            "Thank you for telling us. Your words have gone to the owner, who will read them "
            "today and do their best to put it right."
        )
    else:
        text = turn._(
            "Thank you for telling us. We will look into it and do our best to put it right."
        )
    return [Reply(text, buttons=rows([menu_button(turn)]))]


async def press_skip_comment(turn: Turn, args: list[str]) -> list[Reply]:
    feedback = await _complaint_in_hand(turn)
    told = feedback is not None and await _alert(turn, feedback, with_comment=False)
    turn.goto(Step.MENU)
    text = turn._("Thank you for the rating.")
    if told:
        text = turn._("Thank you for the rating. The owner will read about it today.")
    return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]


async def _complaint_in_hand(turn: Turn) -> Feedback | None:
    """The complaint whose "what went wrong?" this chat is answering (None once it moved
    on: a stale Skip button)."""
    if turn.step != Step.FEEDBACK_COMMENT or turn.client is None:
        return None
    visit = await _own_visit(turn, int(turn.data.get("v") or 0))
    if visit is None:
        return None
    return await feedback_of_visit(session=turn.session, visit_id=visit.id or 0)


async def _alert(turn: Turn, feedback: Feedback, *, with_comment: bool) -> bool:
    """The complaint to the owner and the administrators at once; a comment that comes
    after the first alert (the client took a while) follows it. False when nobody of the
    staff has a chat to be told in."""
    if feedback.status != FeedbackStatus.open:
        return False
    staff = await alerted_staff(session=turn.session)
    if not staff:
        return False
    new = await alert_now(session=turn.session, feedback=feedback, now=turn.now, staff=staff)
    if not new and with_comment:
        await alert_now(
            session=turn.session, feedback=feedback, now=turn.now, staff=staff, stage="comment"
        )
    return True


async def press_not_now(turn: Turn, args: list[str]) -> list[Reply]:
    client = turn.client
    assert client is not None
    today = turn.tr.local(turn.now).date()
    cycle = timedelta(days=client.rhythm_days or 30)
    client.nudge_snoozed_until = max(today, client.next_visit_due or today) + cycle
    text = turn._("All right, we will not remind you this time. See you!")
    return [Reply(text, buttons=rows([menu_button(turn)]), edit=True)]


async def press_skip_next_visit(turn: Turn, args: list[str]) -> list[Reply]:
    """ "No, thanks" to the next visit offered after a visit: nothing is stored; the usual
    reminder comes when it is time (for a client who gets offers)."""
    client = turn.client
    assert client is not None
    if client.marketing_allowed:
        text = turn._("All right. We will remind you when it is time for your next visit.")
    else:
        text = turn._("All right. You can book any time from the menu.")
    buttons = [Button(turn._("Book a visit"), press.tap(Act.START_BOOKING)), menu_button(turn)]
    return [Reply(text, buttons=rows(buttons), edit=True)]


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
        Act.RATE_PAST_VISIT: press_rate_past,
        Act.SKIP_NEXT_VISIT: press_skip_next_visit,
        Act.SKIP_FEEDBACK_COMMENT: press_skip_comment,
        Act.NOT_NOW: press_not_now,
        Act.WINBACK_REASON: press_reason,
    },
)
