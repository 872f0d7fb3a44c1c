"""/broadcast driven like the owner would: a group, the text, the preview with who will
really get it and why the others will not, the confirmation; then the real planner and
sender on a simulated clock deliver exactly the number previewed, in the hours for offers,
and tell the owner how it went."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import col, select

from bot.composition import Core
from domain import vocabulary as press
from domain.replies import Reply
from scheduler.delivery import Recipient
from scheduler.engine import SimulatedClock, run_simulated
from storage.stats import refresh_client_stats
from storage.tables import Broadcast, Client, Outbox
from testing.chat import ChatClient, Clock
from tests.helpers import MASTER, OWNER, add_client, add_visit, register, staff_chat, utc_visit

SHORTLY = utc_visit(2026, 11, 13, 12)  # ten days before the clock's Monday: hot
OPTED_IN = utc_visit(2025, 1, 10, 12)


@dataclass
class Recorder:
    clock: SimulatedClock
    sent: list[tuple[datetime, str, Reply]] = field(default_factory=list)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.sent.append((self.clock.now, recipient.address, reply))

    def of_kind(self, kind: str) -> Iterator[tuple[datetime, str, Reply]]:
        return (entry for entry in self.sent if entry[2].kind == kind)


async def _hot(core: Core, name: str, n: int, **fields: object) -> int:
    """A client whose last visit (a combo: no care tip to compete) was ten days ago."""
    defaults: dict[str, object] = {
        "phone": f"+7999444{n:04d}",
        "telegram_id": 8000 + n,
        "consent_at": OPTED_IN,
        "marketing_opt_in_at": OPTED_IN,
        "locale": "en",
    }
    client = await add_client(core, name=name, **{**defaults, **fields})
    assert client.id is not None
    await add_visit(core, client_id=client.id, master="artem", service="combo", start=SHORTLY)
    return client.id


async def _hot_clients(core: Core) -> dict[str, int]:
    """Ten hot clients: two will get a broadcast, the others are left out, one reason each
    at least; and one warm client, outside the group."""
    ids = {
        "anna": await _hot(core, "Anna", 1),
        "boris": await _hot(core, "Boris", 2),
        "vera": await _hot(core, "Vera", 3, marketing_opt_in_at=None),
        "gleb": await _hot(core, "Gleb", 4, marketing_opt_out_at=OPTED_IN + timedelta(days=1)),
        "dina": await _hot(core, "Dina", 5, telegram_id=None),
        "egor": await _hot(core, "Egor", 6, telegram_unreachable_at=OPTED_IN),
        "zhanna": await _hot(
            core,
            "Zhanna",
            7,
            telegram_id=None,
            whatsapp_id="79994440007",
            last_inbound_whatsapp_at=utc_visit(2026, 11, 20, 12),
        ),
        "ilya": await _hot(core, "Ilya", 8, birthday=date(1990, 11, 26)),
        "kira": await _hot(core, "Kira", 9),
        "lev": await _hot(core, "Lev", 10, consent_at=None),
    }
    warm = await add_client(
        core,
        name="Mila",
        phone="+79994440011",
        telegram_id=8011,
        consent_at=OPTED_IN,
        marketing_opt_in_at=OPTED_IN,
    )
    assert warm.id is not None
    await add_visit(
        core, client_id=warm.id, master="artem", service="combo", start=utc_visit(2026, 8, 1, 12)
    )
    # Kira got a gift offer four days ago: the 7-day cap holds a broadcast back.
    async with core.db.transaction() as session:
        gift = utc_visit(2026, 11, 19, 12)
        session.add(
            Outbox(
                kind="warm_offer",
                client_id=ids["kira"],
                due_at=gift,
                sent_at=gift,
                status="sent",
                dedupe_key="warm_offer:test",
                created_at=gift,
            )
        )
        await refresh_client_stats(
            session=session,
            tz=core.config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )
    return ids


PREVIEW = [
    "Clients will read:",
    "———",
    "Winter hours from December 1: 9:00–22:00.",
    "Come early!",
    "",
    "/stop — no more offers (reminders about your visits still come)",
    "[ Book a visit ]",
    "———",
    "Hot (the last visit up to 30 days ago): 10.",
    "It will go to 2 of them.",
    "Not to:",
    "– 2 did not agree to offers or turned them off",
    "– 3 the bot cannot reach (no chat with it, blocked it, no consent)",
    "– 1 write only on WhatsApp and not in the last 24 hours: WhatsApp allows no free text to them",
    "– 1 have a birthday within a week: their greeting goes first",
    "– 1 had an offer lately (at most 1 in 7 days and 4 in 30)",
    "Offers go out only 10:00–20:00. It will go on Monday, November 23, 10:00.",
]
TEXT = "Winter hours from December 1: 9:00–22:00.\nCome early!"


async def _to_preview(owner: ChatClient, text: str = TEXT) -> Reply:
    await owner.send("/broadcast")
    await owner.click("Hot")
    [preview] = await owner.send(text)
    return preview


async def _broadcast_rows(core: Core) -> list[Outbox]:
    async with core.db.reading() as session:
        query = select(Outbox).where(Outbox.kind == "broadcast").order_by(col(Outbox.id))
        return list((await session.exec(query)).all())


async def test_the_preview_count_is_what_the_engine_sends(shop: Core, clock: Clock) -> None:
    ids = await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    preview = await _to_preview(owner)
    assert preview.text.splitlines() == PREVIEW
    assert owner.labels == ["Send to 2 clients", "Change the text", "« Another group", "Staff menu"]
    [queued] = await owner.click("Send to 2 clients")
    assert queued.text.splitlines() == [
        "Queued for 2 clients; it goes on Monday, November 23, 10:00.",
        "You will get a message when it is done; /broadcast status shows how far it has got.",
    ]
    rows = await _broadcast_rows(shop)
    assert [row.client_id for row in rows] == [ids["anna"], ids["boris"]]
    assert {row.dedupe_key for row in rows} == {
        f"broadcast:{rows[0].payload['broadcast_id']}:client:{ids[n]}" for n in ("anna", "boris")
    }
    [status] = await owner.send("/broadcast status")
    assert status.text.splitlines()[2] == (
        "The broadcast of November 23 to hot clients: 0 of 2 delivered so far, 2 waiting."
    )

    recorder = Recorder(SimulatedClock(clock.now))
    engine = shop.engine(channels={"telegram": recorder}, clock=recorder.clock, paces=None)
    await run_simulated(engine, recorder.clock, clock.now + timedelta(hours=6))

    delivered = list(recorder.of_kind("broadcast"))
    assert len(delivered) == 2  # what the preview said
    assert {address for _, address, _ in delivered} == {"8001", "8002"}
    local = {at.astimezone(shop.config.tz).strftime("%H:%M") for at, _, _ in delivered}
    assert local == {"10:00"}  # held until offers may go
    assert delivered[0][2].text == TEXT + "\n\n" + (
        "/stop — no more offers (reminders about your visits still come)"
    )
    assert [b.label for b in delivered[0][2].flat_buttons] == [
        "Book a visit",
        "Unsubscribe from offers",
    ]
    [(_, to, report)] = list(recorder.of_kind("broadcast_report"))
    assert to == OWNER
    assert report.text == "The broadcast of November 23 to hot clients is done: 2 of 2 delivered."
    clock.now = recorder.clock.now
    [status] = await owner.send("/broadcast status")
    assert status.text.splitlines()[2] == report.text


async def test_a_client_who_opts_out_before_it_goes_is_left_out_and_counted(
    shop: Core, clock: Clock
) -> None:
    ids = await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    await _to_preview(owner)
    await owner.click("Send to 2 clients")
    anna = ChatClient(shop.conversations, clock, external_id="8001", language="en")
    await anna.send("/stop")
    recorder = Recorder(SimulatedClock(clock.now))
    engine = shop.engine(channels={"telegram": recorder}, clock=recorder.clock, paces=None)
    await run_simulated(engine, recorder.clock, clock.now + timedelta(hours=6))
    assert [address for _, address, _ in recorder.of_kind("broadcast")] == ["8002"]
    [(_, _, report)] = list(recorder.of_kind("broadcast_report"))
    assert report.text == (
        "The broadcast of November 23 to hot clients is done: 1 of 2 delivered; 1 not "
        "(turned offers off since, blocked the bot or could not be reached)."
    )
    skipped = [row for row in await _broadcast_rows(shop) if row.client_id == ids["anna"]]
    assert [(row.status, row.last_error) for row in skipped] == [
        ("skipped", "no marketing consent")
    ]


async def test_a_broadcast_counts_for_the_caps_of_later_offers(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    await _to_preview(owner)
    await owner.click("Send to 2 clients")
    clock.advance(hours=2)  # 11:00: the same group again
    preview = await _to_preview(owner, "And a second one")
    assert "It will go to 0 of them." in preview.text.splitlines()
    assert "– 3 had an offer lately (at most 1 in 7 days and 4 in 30)" in preview.text.splitlines()
    assert "Send to" not in " ".join(owner.labels)
    assert len(await _broadcast_rows(shop)) == 2


async def test_text_where_a_button_is_expected_gets_a_hint(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/broadcast")
    [hint] = await owner.send("everyone please")
    assert hint.text.startswith("Please choose the group with the buttons below.\n\nWhom should")
    await owner.click("Hot")
    [refused] = await owner.send("x" * 1001)
    assert refused.text.startswith("That is 1001 characters; the limit is 1000. Please shorten it.")
    assert refused.text.endswith("you will see it as clients will, and how many will get it.")
    [preview] = await owner.send("Short and sweet")
    [hint] = await owner.send("yes send it")
    assert hint.text.startswith(
        "Please send it, change the text or choose another group with the buttons below."
    )
    assert hint.text.endswith(preview.text.splitlines()[-1])
    assert await _broadcast_rows(shop) == []


async def test_an_old_preview_cannot_send_twice_or_after_a_change(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    first = await _to_preview(owner)
    send_first = owner.button("Send to 2 clients", first).payload
    await owner.click("Change the text")
    assert owner.last.text.startswith("Write the message to hot clients")
    second = await _to_preview(owner, "Another text")
    [stale] = await owner.press(send_first)
    assert stale.text.startswith("This preview is out of date: nothing was sent.")
    assert await _broadcast_rows(shop) == []
    send_second = owner.button("Send to 2 clients", second).payload
    await owner.press(send_second)
    [again] = await owner.press(send_second)
    assert again.text.startswith("This preview is out of date: nothing was sent.")
    async with shop.db.reading() as session:
        [campaign] = (await session.exec(select(Broadcast))).all()
    assert (campaign.text, campaign.audience, campaign.recipients) == ("Another text", "hot", 2)
    assert len(await _broadcast_rows(shop)) == 2


async def test_masters_and_clients_cannot_broadcast(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.send("/broadcast")
    assert refused.text == "Only the owner or an administrator can do this."
    for payload in (press.broadcast_to("hot"), press.broadcast_send("abcd1234")):
        [refused] = await master.press(payload)
        assert refused.text == "Only the owner or an administrator can do this."
    client = ChatClient(shop.conversations, clock, external_id="1001", language="en")
    await register(client)
    [menu] = await client.send("/broadcast")
    assert menu.text == "Ivan, what would you like to do?"
    for payload in (
        press.broadcast_to("all"),
        press.broadcast_send("abcd1234"),
        press.staff_open("broadcast"),
    ):
        [reply] = await client.press(payload)
        assert "Whom should the message go to?" not in reply.text
    assert await _broadcast_rows(shop) == []


async def test_everyone_who_accepts_offers_and_vip(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/broadcast")
    await owner.click("Everyone who accepts offers")
    [preview] = await owner.send("News for all")
    lines = preview.text.splitlines()
    assert "Everyone who accepts offers (every client who agreed to offers): 11." in lines
    assert "It will go to 3 of them." in lines  # Mila, warm, too
    await owner.click("« Another group")
    await owner.click("VIP")
    [preview] = await owner.send("For our best clients")
    assert "VIP (the top 20 % by spend over the last 365 days): 3." in preview.text.splitlines()


async def test_a_broadcast_in_russian(shop: Core, clock: Clock) -> None:
    await _hot_clients(shop)
    # The owner is a client too, reading Russian: the staff side speaks it as well.
    await add_client(shop, name="Артём", phone="+79990000099", telegram_id=int(OWNER), locale="ru")
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/broadcast")
    await owner.click("Горячие")
    [preview] = await owner.send("Привет!")
    assert "Получат: 2 из них." in preview.text.splitlines()
    assert owner.labels[0] == "Отправить 2 клиентам"
    async with shop.db.reading() as session:
        assert (await session.exec(select(Client).where(Client.phone == "+79990000099"))).one()
