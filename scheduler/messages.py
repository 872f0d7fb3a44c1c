"""What each planned message says, composed when it is sent (so a moved visit shows its
new time), and the last check that it still makes sense to send it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain import vocabulary as press
from domain.agenda import visit_lines
from domain.broadcast import broadcast_reply, outcome_text
from domain.business import BusinessConfig
from domain.confirmation import confirmation_lines, visit_price_text
from domain.feedback import complaint_lines
from domain.loyalty import amount_text
from domain.people import first_name
from domain.replies import Button, Reply, rows
from domain.retention import (
    CHURN_REASONS,
    KIND_CLASS,
    NEXT_VISIT_DAYS_AFTER,
    NEXT_VISIT_DAYS_BEFORE,
    NEXT_VISIT_MAX_DAYS,
    MessageClass,
)
from domain.slots import usual_time
from domain.text import Translator, one_line, translator_for, upper_first
from domain.vocabulary import Act, NewVisit
from scheduler.delivery import Recipient
from scheduler.digest import digest_reply
from storage.availability import openings
from storage.broadcasts import progress
from storage.catalog import Catalog, MasterInfo, ServiceInfo
from storage.feedback import complaint_of
from storage.guards import (
    chosen_chat,
    has_open_visit,
    marketing_allowed,
    why_unreachable,
    working_chats,
)
from storage.identities import identities_of
from storage.outbox import winback_percent
from storage.queries import completed_starts
from storage.staff import agenda
from storage.tables import (
    ACTIVE_VISIT,
    Broadcast,
    Channel,
    Client,
    Feedback,
    FeedbackStatus,
    Outbox,
    Role,
    Staff,
    Visit,
    VisitStatus,
)


class Skip(Exception):
    """The message no longer makes sense; `str(self)` says why (kept in the outbox)."""


@dataclass(frozen=True, slots=True)
class Composed:
    recipient: Recipient
    reply: Reply


class Messages:
    def __init__(
        self,
        *,
        config: BusinessConfig,
        catalog: Catalog,
        translators: Mapping[str, Translator],
        channels: Collection[str] = ("telegram", "whatsapp"),
    ) -> None:
        self.config = config
        self.channels = frozenset(channels)
        self.catalog = catalog
        self.translators = translators
        self._kinds: dict[str, Callable[[_Draft], Awaitable[Reply]]] = {
            "booking_confirmation": self._booking_confirmation,
            "reminder": self._reminder,
            "visit_cancelled": self._visit_cancelled,
            "feedback_request": self._feedback_request,
            "care_tip": self._care_tip,
            "return_nudge": self._return_nudge,
            "warm_offer": self._warm_offer,
            "winback": self._winback,
            "birthday": self._birthday,
            "next_visit_offer": self._next_visit,
            "referral_reward": self._referral_reward,
            "visit_check": self._visit_check,
            "staff_day_plan": self._staff_day_plan,
            "complaint_alert": self._complaint_alert,
            "digest": self._digest,
            "broadcast": self._broadcast,
            "broadcast_report": self._broadcast_report,
        }

    def translator(self, locale: str | None) -> Translator:
        return translator_for(self.translators, locale, self.config.business.default_locale)

    async def compose(self, session: AsyncSession, row: Outbox, now: datetime) -> Composed:
        """The recipient and the reply for `row`, or Skip."""
        render = self._kinds.get(row.kind)
        if render is None:
            raise Skip(f"unknown kind {row.kind}")
        if row.staff_id is not None:
            staff = await session.get(Staff, row.staff_id)
            if staff is None or not staff.active or not staff.telegram_id:
                raise Skip("the staff member has no chat with the bot")
            locale = self.config.business.default_locale
            recipient = Recipient(
                "telegram", str(staff.telegram_id), locale, staff_id=staff.id, composed_at=now
            )
            draft = _Draft(self, session, row, now, self.translator(locale), None, staff)
        else:
            client = await session.get(Client, row.client_id) if row.client_id else None
            recipient = await self._client_recipient(session, client, now)
            assert client is not None
            if KIND_CLASS.get(row.kind) is MessageClass.marketing:
                await self._marketing_still_welcome(session, client, row, now)
            draft = _Draft(self, session, row, now, self.translator(client.locale), client, None)
        reply = await render(draft)
        if KIND_CLASS.get(row.kind) is MessageClass.marketing:
            reply = _with_unsubscribe(reply, draft.tr)
        return Composed(recipient, reply)

    async def _client_recipient(
        self, session: AsyncSession, client: Client | None, now: datetime
    ) -> Recipient:
        """The client's preferred messenger, or another one when the preferred one is
        unreachable or not connected to this bot."""
        if client is None or client.id is None:
            raise Skip("the client is deleted")
        identities = await identities_of(session=session, client_id=client.id)
        if reason := why_unreachable(client, identities):
            raise Skip(reason)
        chat = chosen_chat(client.preferred_channel, identities, self.channels)
        if chat is None:
            raise Skip("the client has no messenger the bot can reach")
        return Recipient(
            chat.channel,
            chat.external_id,
            client.locale,
            client_id=client.id,
            last_inbound=chat.last_inbound_at,
            composed_at=now,
        )

    async def _marketing_still_welcome(
        self, session: AsyncSession, client: Client, row: Outbox, now: datetime
    ) -> None:
        if not marketing_allowed(client):
            raise Skip("no marketing consent")
        if row.kind in ("return_nudge", "warm_offer", "winback") and await has_open_visit(
            session=session, client_id=client.id or 0
        ):
            raise Skip("the client has an open visit")

    # The kinds.

    async def _booking_confirmation(self, d: _Draft) -> Reply:
        """Staff booked or moved a visit for the client (a phone call, a master's time off):
        the same confirmation a client reads after booking in the chat."""
        visit = await d.active_visit()
        if visit.starts_at <= d.now:
            raise Skip("the visit has begun")
        tr = d.tr
        _, master = d.service_and_master(visit)
        moved = bool(d.row.payload.get("moved"))
        headline = tr._("Your visit is moved.") if moved else tr._("We have booked you a visit.")
        lines = confirmation_lines(
            tr,
            self.config,
            headline=headline,
            service=d.visit_title(visit),
            master=master.title(tr.locale),
            starts_at=visit.starts_at,
            minutes=int((visit.ends_at - visit.starts_at).total_seconds() // 60),
            price=visit.price,
            comment=visit.comment,
            booked_at=visit.rescheduled_at or visit.created_at,
            # A discount staff gave (a birthday gift, a reward) reads as in the chat.
            price_text=visit_price_text(
                tr,
                self.config,
                price=visit.price,
                discount=visit.discount,
                source=visit.discount_source,
            ),
        )
        buttons = [
            Button(tr._("My visits"), press.tap(Act.MY_VISITS)),
            Button(tr._("« Main menu"), press.tap(Act.MAIN_MENU)),
        ]
        values = d.values(
            service=d.visit_title(visit),
            master=master.title(tr.locale),
            when=tr.when(visit.starts_at),
        )
        return Reply(
            "\n".join(lines), buttons=rows(buttons, 2), kind="booking_confirmation", values=values
        )

    async def _reminder(self, d: _Draft) -> Reply:
        visit = await d.active_visit()
        if visit.starts_at <= d.now:
            raise Skip("the visit has begun")
        tr = d.tr
        _, master = d.service_and_master(visit)
        text = tr._("Reminder: {service} with {master}, {when}.").format(
            service=d.visit_title(visit),
            master=master.title(tr.locale),
            when=tr.when(visit.starts_at),
        )
        if address := self.config.business.where(tr.locale):
            text += "\n" + tr._("Address: {address}").format(address=address)
        buttons = []
        if visit.status != VisitStatus.confirmed:
            buttons.append(Button(tr._("I'll be there"), press.confirm_attendance(visit.id)))
        buttons += [
            Button(tr._("Reschedule"), press.reschedule(visit.id)),
            Button(tr._("Cancel visit"), press.cancel_visit(visit.id)),
        ]
        values = d.values(
            service=d.visit_title(visit),
            master=master.title(tr.locale),
            when=tr.when(visit.starts_at),
        )
        return Reply(text, buttons=rows(buttons), kind="reminder", values=values)

    async def _visit_cancelled(self, d: _Draft) -> Reply:
        """The shop cancelled the visit (a master's time off, a call): say so and offer
        another time."""
        visit = await d.visit()
        if visit.status != VisitStatus.cancelled:
            raise Skip(f"the visit is {visit.status}")
        tr = d.tr
        _, master = d.service_and_master(visit)
        when = tr.when(visit.starts_at)
        text = tr._(
            "Sorry: we had to cancel your visit, {service} with {master}, {when}. "
            "Please choose another time, or call us: {phone}."
        ).format(
            service=d.visit_title(visit),
            master=master.title(tr.locale),
            when=when,
            phone=self.config.business.phone or "—",
        )
        values = d.values(service=d.visit_title(visit), when=when)
        return Reply(text, buttons=rows([d.book_button()]), kind="visit_cancelled", values=values)

    async def _feedback_request(self, d: _Draft) -> Reply:
        visit = await d.visit()
        if visit.status != VisitStatus.completed:
            raise Skip("the visit did not take place")
        given = await d.session.exec(select(Feedback.id).where(Feedback.visit_id == visit.id))
        if given.first() is not None:
            raise Skip("feedback already given")
        tr = d.tr
        _, master = d.service_and_master(visit)
        text = tr._("How was your {service} with {master}? One tap to rate it:").format(
            service=d.visit_title(visit), master=master.title(tr.locale)
        )
        stars = press.star_buttons(visit.id)
        values = d.values(service=d.visit_title(visit), master=master.title(tr.locale))
        return Reply(text, buttons=rows(stars), kind="feedback_request", values=values)

    async def _care_tip(self, d: _Draft) -> Reply:
        visit = await d.visit()
        service = self.catalog.services.get(visit.service_id)
        if service is None or not service.tip(d.tr.locale):
            raise Skip("the service has no care tip")
        text = d.tr._("A tip after your {service}: {tip}").format(
            service=service.title(d.tr.locale), tip=service.tip(d.tr.locale)
        )
        values = d.values(service=service.title(d.tr.locale), tip=service.tip(d.tr.locale))
        return Reply(text, buttons=rows([d.book_button()]), kind="care_tip", values=values)

    async def _return_nudge(self, d: _Draft) -> Reply:
        offer = await self._next_visit_offer(d)
        if offer is None:
            raise Skip("the last service is no longer offered")
        text = d.tr._(
            "{name}, it is nearly time for your {service}. Shall we book you with {master}?"
        ).format(name=first_name(d.need_client().name), service=offer.service, master=offer.master)
        return Reply(text, buttons=rows(offer.buttons), kind="return_nudge", values=offer.values)

    async def _next_visit_offer(self, d: _Draft) -> _NextVisitOffer | None:
        """The last service again with the usual master: one tap on a suggested slot, another
        time, or "not now". None when the client's last service is no longer offered."""
        client = d.need_client()
        service = self.catalog.services.get(client.last_service_id or 0)
        if service is None:
            return None
        masters = {m.id for m in self.catalog.masters_for(service.id)}
        master_id = client.last_master_id if client.last_master_id in masters else None
        tr = d.tr
        who = (
            self.catalog.masters[master_id].title(tr.locale)
            if master_id
            else tr._("any available master")
        )
        target = NewVisit(service.id, master_id or 0)
        buttons = []
        slot = await d.suggested_slot(service.id, master_id) if master_id else None
        if slot is not None and master_id:
            label = tr._("Book {when}").format(when=_short(tr, slot))
            buttons.append(Button(label, press.book_slot(service.id, master_id, slot)))
        buttons += [
            Button(tr._("Other time"), press.choose_days_for(target)),
            Button(tr._("Not now"), press.tap(Act.NOT_NOW)),
        ]
        values = d.values(service=service.title(tr.locale), master=who)
        if slot is not None:
            values["when"] = tr.when(slot)
        return _NextVisitOffer(service.title(tr.locale), who, buttons, values)

    async def _warm_offer(self, d: _Draft) -> Reply:
        client = d.need_client()
        tr = d.tr
        until = d.local_today() + timedelta(days=self.config.offers.offer_valid_days)
        text = tr._(
            "{name}, we have kept a gift for you: {gift}. It is yours with any visit until {date}."
        ).format(
            name=first_name(client.name),
            gift=self.config.offers.warm_gift(tr.locale),
            date=tr.day(until),
        )
        values = d.values(gift=self.config.offers.warm_gift(tr.locale), date=tr.day(until))
        return Reply(text, buttons=rows([d.book_button()]), kind="warm_offer", values=values)

    async def _winback(self, d: _Draft) -> Reply:
        client = d.need_client()
        tr = d.tr
        text = tr._(
            "{name}, we have not seen you for a while and we miss you. "
            "May we ask why? One tap — and a discount is waiting for you."
        ).format(name=first_name(client.name))
        # The answer names the win-back it answers: one answer per message, only to whom
        # it was sent (handlers/followups.py).
        buttons = [
            Button(tr._(label), press.winback_reason(d.row.id, code))
            for code, label in CHURN_REASONS.items()
        ]
        until = d.local_today() + timedelta(days=self.config.offers.offer_valid_days)
        values = d.values(discount=f"{winback_percent(d.row, self.config)}%", date=tr.day(until))
        return Reply(text, buttons=rows(buttons), kind="winback", values=values)

    async def _birthday(self, d: _Draft) -> Reply:
        client = d.need_client()
        tr = d.tr
        days = self.config.offers.birthday_valid_days
        gift = self.config.offers.birthday_present(tr.locale)
        text = tr._("Happy birthday, {name}! Our gift for you: {gift} — {valid}.").format(
            name=first_name(client.name), gift=gift, valid=_birthday_validity(tr, days)
        )
        values = d.values(gift=gift, days=str(days))
        buttons = [d.book_button()]
        # A nudge due this week rides on the greeting instead of following it (planner).
        offer = await self._next_visit_offer(d) if "predicted" in d.row.payload else None
        if offer is not None:
            text += "\n" + tr._(
                "And it is nearly time for your {service}: shall we book you with {master}?"
            ).format(service=offer.service, master=offer.master)
            buttons = offer.buttons
        return Reply(text, buttons=rows(buttons), kind="birthday", values=values)

    async def _next_visit(self, d: _Draft) -> Reply:
        """Right after a visit is marked came: thanks, and the next visit at the client's
        rhythm with the same master, three times on different days one tap away. For a
        first-time client it is the point of the message."""
        visit = await d.visit()
        if visit.status != VisitStatus.completed:
            raise Skip(f"the visit is {visit.status}")
        client = d.need_client()
        if await has_open_visit(session=d.session, client_id=client.id or 0):
            raise Skip("the client has booked the next visit already")
        again = self.catalog.same_again(visit.service_id, visit.master_id, visit.addon_service_id)
        if again is None:
            raise Skip("the visit's service or master is no longer offered")
        service, master, addon = again
        tr = d.tr
        title = " + ".join(s.title(tr.locale) for s in (service, addon) if s is not None)
        due = client.next_visit_due or (
            tr.local(visit.starts_at).date() + timedelta(days=service.return_interval_days)
        )
        duration = service.duration + (addon.duration if addon else timedelta(0))
        slots = await d.slots_around(service, master, due, duration)
        words = {
            "name": first_name(client.name),
            "service": title,
            "master": master.title(tr.locale),
            "date": tr.day(due),
        }
        if client.completed_visits <= 1:
            text = tr._(
                "{name}, thank you for your first visit! Your next {service} with {master} "
                "will be due around {date}. Shall we keep a time for you now?"
            )
        else:
            text = tr._(
                "{name}, thank you for coming! Your next {service} with {master} will be due "
                "around {date}. Shall we book it now?"
            )
        text = text.format(**words)
        if slots:
            text += "\n" + tr._("One tap and it is booked:")
        buttons = [
            Button(
                tr._("Book {when}").format(when=_short(tr, slot)),
                press.book_next_visit(visit.id, slot),
            )
            for slot in slots
        ]
        target = NewVisit(service.id, master.id, addon.id if addon else 0)
        buttons += [
            Button(
                tr._("Other time") if slots else tr._("Choose a time"),
                press.choose_days_for(target),
            ),
            Button(tr._("No, thanks"), press.skip_next_visit(visit.id)),
        ]
        values = d.values(service=title, master=master.title(tr.locale), date=tr.day(due))
        if slots:
            values["when"] = tr.when(slots[0])
        return Reply(text, buttons=rows(buttons), kind="next_visit_offer", values=values)

    async def _complaint_alert(self, d: _Draft) -> Reply:
        """A complaint to the owner or an administrator: who, which visit, the rating and
        the comment, the client's history, a link to write to the client, Resolve."""
        staff = d.staff
        assert staff is not None
        if staff.role not in (Role.owner, Role.admin):
            raise Skip("no longer the owner or an administrator")
        feedback = await d.session.get(Feedback, int(d.row.payload.get("feedback_id", 0)))
        if feedback is None or feedback.status != FeedbackStatus.open:
            raise Skip("the complaint is resolved" if feedback else "the complaint is gone")
        tr = d.tr
        complaint = await complaint_of(
            session=d.session,
            feedback=feedback,
            service_title=lambda visit: self.catalog.visit_title(
                visit.service_id, visit.addon_service_id, tr.locale
            ),
            master_name=lambda master_id: (
                self.catalog.masters[master_id].title(tr.locale)
                if master_id in self.catalog.masters
                else "—"
            ),
        )
        if complaint is None:
            raise Skip("the complaint's visit or client is gone")
        stage = d.row.payload.get("stage", 0)
        if stage == "comment":
            head = tr._("The client has said what went wrong:")
        elif isinstance(stage, int) and stage > 0:
            head = tr.n_(
                "Still not resolved, {n} day after the rating:",
                "Still not resolved, {n} days after the rating:",
                stage,
            ).format(n=stage)
        else:
            head = tr._("A complaint:")
        buttons = [*await self._write_links(d, complaint.client_id)]
        buttons.append(Button(tr._("Resolve"), press.resolve_complaint(feedback.id)))
        text = "\n".join([head, *complaint_lines(tr, complaint)])
        return Reply(text, buttons=rows(buttons), kind="complaint_alert")

    async def _write_links(self, d: _Draft, client_id: int) -> list[Button]:
        """A link that opens a chat with the client, on each messenger they use. (A
        phone call cannot be a Telegram button: the number is in the text.)"""
        links = []
        identities = await identities_of(session=d.session, client_id=client_id)
        for chat in working_chats(identities):
            if chat.channel == Channel.telegram and chat.external_id.isdigit():
                url = f"tg://user?id={chat.external_id}"
                links.append(Button.link(d.tr._("Write in Telegram"), url))
            elif chat.channel == Channel.whatsapp and chat.external_id.isdigit():
                url = f"https://wa.me/{chat.external_id}"
                links.append(Button.link(d.tr._("Write in WhatsApp"), url))
        return list({link.url: link for link in links}.values())

    async def _referral_reward(self, d: _Draft) -> Reply:
        """To the referrer: the friend they invited came for a first visit, and both got
        the referral reward (storage/loyalty.py)."""
        programme = self.config.loyalty
        if programme is None:
            raise Skip("there is no loyalty programme")
        visit = await d.visit()
        if visit.status != VisitStatus.completed:
            raise Skip("the friend's first visit did not take place after all")
        friend = await d.session.get(Client, int(d.row.payload.get("friend_id", 0)))
        if friend is None or friend.deleted_at is not None:
            raise Skip("the friend is deleted")
        tr = d.tr
        amount = int(d.row.payload.get("amount") or programme.referral_reward)
        reward = amount_text(tr, programme.kind, amount)
        text = tr._(
            "{name}, your friend {friend} has come for their first visit. Thank you for "
            "recommending us! You both get {reward}."
        ).format(
            name=first_name(d.need_client().name), friend=first_name(friend.name), reward=reward
        )
        buttons = [Button(tr._("My bonus"), press.tap(Act.MY_BONUS))]
        values = d.values(friend=first_name(friend.name), gift=reward)
        return Reply(text, buttons=rows(buttons), kind="referral_reward", values=values)

    async def _visit_check(self, d: _Draft) -> Reply:
        visit = await d.active_visit()
        client = await d.session.get(Client, visit.client_id)
        tr = d.tr
        d.service_and_master(visit)
        text = tr._("{client}, {service} at {time}: did the client come?").format(
            client=one_line(client.name) if client else "—",
            service=d.visit_title(visit),
            time=tr.clock(visit.starts_at),
        )
        buttons = [
            Button(
                tr._("Came, {price}").format(price=tr.money(visit.price)),
                press.staff_came(visit.id),
            ),
            Button(tr._("Came, other amount"), press.staff_other_amount(visit.id)),
            Button(tr._("No-show"), press.staff_no_show(visit.id)),
        ]
        return Reply(text, buttons=rows(buttons), kind="visit_check")

    async def _staff_day_plan(self, d: _Draft) -> Reply:
        staff = d.staff
        assert staff is not None
        tr = d.tr
        day = date.fromisoformat(d.row.payload["day"])
        start = datetime.combine(day, time(), self.config.tz).astimezone(UTC)
        # The next local midnight, not start + 24 h: a DST day has 23 or 25 hours.
        end = datetime.combine(day + timedelta(days=1), time(), self.config.tz).astimezone(UTC)
        booked = await agenda(
            session=d.session,
            start=start,
            end=end,
            service_title=lambda visit: self.catalog.visit_title(
                visit.service_id, visit.addon_service_id, tr.locale
            ),
            master_id=staff.id,
            statuses=ACTIVE_VISIT,
        )
        if not booked:
            raise Skip("no visits booked for the day")  # an empty plan is noise before work
        lines = [tr._("{name}, your day, {day}:").format(name=staff.name, day=tr.weekday_day(day))]
        for visit in booked:
            lines += visit_lines(tr, visit, status=False)
        return Reply("\n".join(lines), kind="staff_day_plan")

    async def _digest(self, d: _Draft) -> Reply:
        as_of = date.fromisoformat(d.row.payload["as_of"])
        return await digest_reply(
            session=d.session, config=self.config, catalog=self.catalog, tr=d.tr, as_of=as_of
        )

    async def _broadcast(self, d: _Draft) -> Reply:
        broadcast = await d.broadcast()
        reply = broadcast_reply(d.tr, broadcast.text)
        return replace(reply, values=d.values(text=broadcast.text))

    async def _broadcast_report(self, d: _Draft) -> Reply:
        """To whoever sent a broadcast, once every row of it is settled."""
        broadcast = await d.broadcast()
        counts = await progress(session=d.session, broadcast=broadcast)
        text = outcome_text(
            d.tr, group=broadcast.audience, created_at=broadcast.created_at, counts=counts
        )
        return Reply(text, kind="broadcast_report")


@dataclass(frozen=True, slots=True)
class _NextVisitOffer:
    service: str
    master: str
    buttons: list[Button]
    values: dict[str, str]


def _with_unsubscribe(reply: Reply, tr: Translator) -> Reply:
    """Every offer ends with a way out of offers (reminders keep coming)."""
    button = Button(tr._("Unsubscribe from offers"), press.tap(Act.UNSUBSCRIBE))
    return replace(reply, buttons=(*reply.buttons, (button,)))


@dataclass(slots=True)
class _Draft:
    messages: Messages
    session: AsyncSession
    row: Outbox
    now: datetime
    tr: Translator
    client: Client | None
    staff: Staff | None

    def need_client(self) -> Client:
        assert self.client is not None
        return self.client

    def local_today(self) -> date:
        return self.now.astimezone(self.messages.config.tz).date()

    def values(self, **values: str) -> dict[str, str]:
        """The named values a WhatsApp template of this kind may show."""
        name = (
            first_name(self.client.name) if self.client else self.staff.name if self.staff else ""
        )
        address = self.messages.config.business.where(self.tr.locale)
        return {"name": name, "address": address, **values}

    def book_button(self) -> Button:
        return Button(self.tr._("Book a visit"), press.tap(Act.START_BOOKING))

    def service_and_master(self, visit: Visit) -> tuple[ServiceInfo, MasterInfo]:
        """The visit's service and master, or Skip when the configuration dropped them."""
        service = self.messages.catalog.services.get(visit.service_id)
        master = self.messages.catalog.masters.get(visit.master_id)
        if service is None or master is None:
            raise Skip("the visit's service or master is no longer in the configuration")
        return service, master

    async def visit(self) -> Visit:
        visit = await self.session.get(Visit, int(self.row.payload.get("visit_id", 0)))
        if visit is None:
            raise Skip("the visit is gone")
        return visit

    async def broadcast(self) -> Broadcast:
        broadcast = await self.session.get(Broadcast, int(self.row.payload.get("broadcast_id", 0)))
        if broadcast is None:
            raise Skip("the broadcast is gone")
        return broadcast

    async def active_visit(self) -> Visit:
        visit = await self.visit()
        if visit.status not in ACTIVE_VISIT:
            raise Skip(f"the visit is {visit.status}")
        return visit

    def visit_title(self, visit: Visit) -> str:
        """'Men's haircut + Beard trim': the service, and the one added at booking."""
        return self.messages.catalog.visit_title(
            visit.service_id, visit.addon_service_id, self.tr.locale
        )

    async def slots_around(
        self, service: ServiceInfo, master: MasterInfo, day: date, duration: timedelta
    ) -> list[datetime]:
        """Three free times with `master` on different days near `day`, each near the
        client's usual time of day (the next-visit offer)."""
        today = self.local_today()
        last = day + timedelta(days=NEXT_VISIT_DAYS_AFTER)
        horizon = min((last - today).days + 1, NEXT_VISIT_MAX_DAYS)
        if horizon <= 0:
            return []
        free = await openings(
            session=self.session,
            config=self.messages.config,
            service=service,
            masters=[master],
            now=self.now,
            duration=duration,
            horizon_days=max(horizon, self.messages.config.booking.horizon_days),
        )
        _, minute = usual_time(
            await completed_starts(session=self.session, client_id=self.need_client().id or 0),
            self.messages.config.tz,
        )
        return free.around(day, minute, before=NEXT_VISIT_DAYS_BEFORE, after=NEXT_VISIT_DAYS_AFTER)

    async def suggested_slot(self, service_id: int, master_id: int) -> datetime | None:
        """The free slot nearest the client's usual time, on or after the predicted day."""
        config, catalog = self.messages.config, self.messages.catalog
        client = self.need_client()
        free = await openings(
            session=self.session,
            config=config,
            service=catalog.services[service_id],
            masters=[catalog.masters[master_id]],
            now=self.now,
        )
        _, minute = usual_time(
            await completed_starts(session=self.session, client_id=client.id or 0), config.tz
        )
        today = self.local_today()
        return free.near_usual_time(max(today, client.next_visit_due or today), minute)


def _birthday_validity(tr: Translator, days: int) -> str:
    """In words, with the plural the number needs ("7 дней", never "7 дн.")."""
    if not days:
        return tr._("on your birthday")
    return tr.n_(
        "any day up to {n} day before or after your birthday",
        "any day up to {n} days before or after your birthday",
        days,
    ).format(n=days)


def _short(tr: Translator, moment: datetime) -> str:
    return upper_first(f"{tr.short_day(tr.local(moment).date())}, {tr.clock(moment)}")
