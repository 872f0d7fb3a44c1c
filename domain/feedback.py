"""Ratings and complaints: what counts as a complaint, how long a rating may still be
changed, when an open complaint is sent to the owner again, and a complaint as staff read
it (the alert, /complaints). Pure: rows and `now` come from the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.text import Translator, one_line

WORST_FINE_RATING = 4  # 4 and 5 are thanks; 3 or less is a complaint
RATING_CHANGE_WINDOW = timedelta(hours=24)  # one rating per visit, changeable this long
# The alert goes when the client has said what went wrong (or skipped it); a client who
# never answers does not hold it back longer than this.
COMMENT_WAIT = timedelta(minutes=30)
REALERT_EVERY = timedelta(hours=24)  # an open complaint goes to the owner again…
REALERTS = 7  # …once a day for a week; after that it stays in /complaints and the digest


def is_complaint(rating: int) -> bool:
    return rating < WORST_FINE_RATING


def can_change_rating(given_at: datetime, now: datetime) -> bool:
    return now - given_at < RATING_CHANGE_WINDOW


def alert_round(given_at: datetime, now: datetime) -> int:
    """Which alert of an open complaint is due at `now`: 0 the first, 1 the repeat a day
    later, … up to REALERTS (and no further)."""
    return min(REALERTS, max(0, (now - given_at) // REALERT_EVERY))


def stars(rating: int) -> str:
    """★★☆☆☆ for 2 of 5."""
    rating = max(0, min(5, rating))
    return "★" * rating + "☆" * (5 - rating)


@dataclass(frozen=True, slots=True)
class Complaint:
    """A low rating with what staff need to act on it."""

    feedback_id: int
    rating: int
    comment: str
    given_at: datetime
    client_id: int
    client: str
    phone: str | None
    service: str
    master: str
    visit_start: datetime
    visits: int  # the client's completed visits, this one included
    first_visit: datetime | None  # the first completed visit
    last_visit: datetime | None  # the latest completed visit


def complaint_lines(tr: Translator, complaint: Complaint) -> list[str]:
    """The complaint in the reader's language: rating, client, visit, comment, history."""
    quote = "«{}»" if tr.locale == "ru" else "“{}”"
    comment = one_line(complaint.comment)
    lines = [
        tr._("Rating: {stars} ({rating} of 5)").format(
            stars=stars(complaint.rating), rating=complaint.rating
        ),
        tr._("Client: {name}").format(name=one_line(complaint.client)),
    ]
    if complaint.phone:
        lines.append(tr._("Phone: {phone}").format(phone=complaint.phone))
    lines += [
        tr._("Visit: {service} with {master}, {when}").format(
            service=complaint.service, master=complaint.master, when=tr.when(complaint.visit_start)
        ),
        tr._("Comment: {text}").format(text=quote.format(comment))
        if comment
        else tr._("No comment."),
        history_line(tr, complaint),
    ]
    return lines


def history_line(tr: Translator, complaint: Complaint) -> str:
    """'History: 5 visits since March 12, 2025, the last on November 23' in one line."""
    if complaint.visits <= 1 or complaint.first_visit is None or complaint.last_visit is None:
        return tr._("History: this was the first visit.")
    text = tr.n_(
        "History: {n} visit since {first}, the last on {last}.",
        "History: {n} visits since {first}, the last on {last}.",
        complaint.visits,
    )
    return text.format(
        n=complaint.visits,
        first=tr.long_day(tr.local(complaint.first_visit).date()),
        last=tr.day(tr.local(complaint.last_visit).date()),
    )
