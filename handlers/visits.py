"""My visits: the upcoming list, one visit, cancel (until the cut-off), reschedule."""

from __future__ import annotations

from datetime import timedelta

from domain import vocabulary as press
from domain.feedback import can_change_rating, stars
from domain.payloads import int_arg
from domain.replies import Button, Reply, rows
from domain.text import upper_first
from domain.vocabulary import Act, Step
from handlers.booking import price_line, show_days, target_of
from handlers.common import can_change, menu_button, too_late_to_change, with_hint
from handlers.flows import Flow
from handlers.turn import Turn
from storage.feedback import ratings_of
from storage.loyalty import settle_visit
from storage.queries import recent_completed, upcoming_visits
from storage.tables import ACTIVE_VISIT, Visit, VisitStatus


def _line(turn: Turn, visit: Visit) -> str:
    return f"{upper_first(turn.tr.when(visit.starts_at))} — {_what(turn, visit)}"


def _what(turn: Turn, visit: Visit) -> str:
    master = turn.catalog.masters.get(visit.master_id)
    title = turn.catalog.visit_title(visit.service_id, visit.addon_service_id, turn.locale)
    return f"{title}, {master.title(turn.locale) if master else '—'}"


RATE_WITHIN = timedelta(days=30)  # a past visit this recent can still be rated from here


async def _past(turn: Turn) -> tuple[list[str], list[Button]]:
    """The latest completed visits with their rating, and a "Rate" button on those of the
    last 30 days not rated yet (or rated less than 24 hours ago: "Change the rating")."""
    assert turn.client is not None and turn.client.id is not None
    done = await recent_completed(session=turn.session, client_id=turn.client.id, now=turn.now)
    if not done:
        return [], []
    ratings = await ratings_of(session=turn.session, visit_ids=[v.id or 0 for v in done])
    lines, buttons = [turn._("Past visits:")], []
    for visit in done:
        rated = ratings.get(visit.id or 0)
        day = turn.tr.short_day(turn.tr.local(visit.starts_at).date())
        mark = stars(rated.rating) if rated else turn._("not rated yet")
        lines.append(f"{day} — {_what(turn, visit)} · {mark}")
        if turn.now - visit.starts_at > RATE_WITHIN:
            continue
        if rated is None:
            label = turn._("Rate: {day}").format(day=day)
        elif can_change_rating(rated.created_at, turn.now):
            label = turn._("Change the rating: {day}").format(day=day)
        else:
            continue
        buttons.append(Button(label, press.rate_past_visit(visit.id)))
    return lines, buttons


async def _own_active(turn: Turn, visit_id: int) -> Visit | None:
    visit = await turn.session.get(Visit, visit_id)
    if visit is None or turn.client is None or visit.client_id != turn.client.id:
        return None
    if visit.status not in ACTIVE_VISIT or visit.ends_at <= turn.now:
        return None
    return visit


async def view_visits(turn: Turn) -> Reply:
    assert turn.client is not None and turn.client.id is not None
    visits = await upcoming_visits(session=turn.session, client_id=turn.client.id, now=turn.now)
    done = turn.client.completed_visits
    # A new client has no history to tell: "0 visits" would read as a reproach.
    history = turn.tr.n_("{n} visit with us so far.", "{n} visits with us so far.", done)
    history = history.format(n=done) if done else ""
    past, rate = await _past(turn)
    past = ["", *past] if past else []
    if not visits:
        text = "\n".join(filter(None, [turn._("You have no upcoming visits."), history]))
        text = "\n".join([text, *past])
        buttons = [
            Button(turn._("Book a visit"), press.tap(Act.START_BOOKING)),
            *rate,
            menu_button(turn),
        ]
        return Reply(text, buttons=rows(buttons), edit=True)
    count = turn.tr.n_("You have {n} upcoming visit:", "You have {n} upcoming visits:", len(visits))
    lines = [count.format(n=len(visits)), *(_line(turn, v) for v in visits)]
    lines += ["", history] if history else []
    lines += past
    buttons = [
        Button(
            f"{turn.tr.short_day(turn.tr.local(v.starts_at).date())}, {turn.tr.clock(v.starts_at)}",
            press.open_visit(v.id),
        )
        for v in visits
    ]
    layout = (*rows(buttons, 2), *rows(rate), (menu_button(turn),))
    return Reply("\n".join(lines), buttons=layout, edit=True)


async def view_visit(turn: Turn) -> Reply:
    visit = await _own_active(turn, turn.data["v"])
    if visit is None:
        return await view_visits(turn)
    status = turn._("confirmed") if visit.status == VisitStatus.confirmed else turn._("booked")
    lines = [
        _line(turn, visit),
        turn._("Status: {status}").format(status=status),
        price_line(turn, visit),
    ]
    if turn.config.business.address:
        lines.append(
            turn._("Address: {address}").format(address=turn.config.business.where(turn.locale))
        )
    if visit.comment:
        lines.append(turn._("Comment: {comment}").format(comment=visit.comment))
    buttons = [Button(turn._("« My visits"), press.tap(Act.MY_VISITS))]
    if can_change(turn, visit):
        buttons[:0] = [
            Button(turn._("Reschedule"), press.reschedule(visit.id)),
            Button(turn._("Cancel visit"), press.cancel_visit(visit.id)),
        ]
    else:  # buttons that would only answer "too late" are not shown at all
        lines += ["", _call_us(turn)]
    return Reply("\n".join(lines), buttons=rows(buttons), edit=True)


def _call_us(turn: Turn) -> str:
    text = turn._(
        "This visit is too soon to change in the bot. To move or cancel it, please call us: "
        "{phone}."
    )
    return text.format(phone=turn.config.business.phone or "—")


async def view_cancel(turn: Turn) -> Reply:
    visit = await _own_active(turn, turn.data["v"])
    if visit is None:
        return await view_visits(turn)
    text = turn._("Cancel this visit?") + "\n" + _line(turn, visit)
    buttons = [
        Button(turn._("Yes, cancel it"), press.cancel_visit_sure(visit.id)),
        Button(turn._("No, keep it"), press.open_visit(visit.id)),
    ]
    return Reply(text, buttons=rows(buttons, 2), edit=True)


async def visit_gone(turn: Turn) -> list[Reply]:
    hint = turn._("This visit is no longer active (it was cancelled, moved or has passed).")
    turn.goto(Step.VISITS)
    return [with_hint(hint, await view_visits(turn))]


async def press_visits(turn: Turn, args: list[str]) -> list[Reply]:
    turn.goto(Step.VISITS)
    return [await view_visits(turn)]


async def press_visit(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_active(turn, int_arg(args, 0))
    if visit is None:
        return await visit_gone(turn)
    turn.goto(Step.VISIT, v=visit.id)
    return [await view_visit(turn)]


async def press_cancel(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_active(turn, int_arg(args, 0))
    if visit is None:
        return await visit_gone(turn)
    if refusal := too_late_to_change(turn, visit):
        return [refusal]
    turn.goto(Step.VISIT_CANCEL, v=visit.id)
    return [await view_cancel(turn)]


async def press_cancel_yes(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_active(turn, int_arg(args, 0))
    if visit is None:
        return await visit_gone(turn)
    if refusal := too_late_to_change(turn, visit):
        return [refusal]
    visit.status = VisitStatus.cancelled
    visit.cancelled_at = turn.now
    visit.cancel_reason = "client"
    turn.session.add(visit)
    # The offer it used is free again; a reward or points it was paid with come back.
    await settle_visit(session=turn.session, config=turn.config, visit=visit, now=turn.now)
    turn.goto(Step.MENU)
    text = turn._("Your visit is cancelled:") + "\n" + _line(turn, visit)
    buttons = [Button(turn._("Book another time"), press.tap(Act.START_BOOKING)), menu_button(turn)]
    return [Reply(text, buttons=rows(buttons), edit=True)]


async def press_reschedule(turn: Turn, args: list[str]) -> list[Reply]:
    visit = await _own_active(turn, int_arg(args, 0))
    target = await target_of(turn, f"r{visit.id}") if visit else None
    if visit is None or target is None:
        return await visit_gone(turn)
    if refusal := too_late_to_change(turn, visit):
        return [refusal]
    return await show_days(turn, target)


FLOW = Flow(
    "visits",
    views={
        Step.VISITS: view_visits,
        Step.VISIT: view_visit,
        Step.VISIT_CANCEL: view_cancel,
    },
    actions={
        Act.MY_VISITS: press_visits,
        Act.OPEN_VISIT: press_visit,
        Act.CANCEL_VISIT: press_cancel,
        Act.CANCEL_VISIT_SURE: press_cancel_yes,
        Act.RESCHEDULE: press_reschedule,
    },
)
