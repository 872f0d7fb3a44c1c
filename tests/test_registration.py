from __future__ import annotations

from datetime import date

from bot.composition import Core, build_core_on
from testing.chat import ChatClient, Clock
from tests.helpers import add_client, add_visit, chat_id, clients, register, utc_visit


async def test_new_client_registers_and_lands_in_the_main_menu(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    replies = await chat.send("/start")
    assert "booking bot of Барбершоп «Бритва»" in replies[0].text
    assert replies[-1].text == "What is your name?"
    # The messenger's name, one tap away, and the other language for a wrong guess.
    assert chat.labels == ["Ivan", "Русский"]

    await chat.click("Ivan")
    assert chat.last.ask_contact
    await chat.send("8 (912) 345-67-89")
    assert "consent to process personal data" in chat.last.text
    assert "https://britva.example/privacy" in chat.last.text
    await chat.click("I agree")
    await chat.click("Yes, please")
    await chat.send("27.11.1990")

    assert chat.history[-2].text == "Thank you, Ivan! You are registered."
    assert chat.labels == [
        "Book a visit",
        "My visits",
        "My bonus",
        "Invite a friend",
        "Preferences",
        "Help",
    ]
    [client] = await clients(core)
    assert client.name == "Ivan"
    assert client.phone == "+79123456789"
    assert await chat_id(core, client.id) == "1001"
    assert client.phone_verified is False  # typed: a claim until a messenger proves it
    assert client.consent_at == chat.clock.now
    assert client.marketing_allowed
    assert client.birthday == date(1990, 11, 27)
    assert client.locale == "en"


async def test_invalid_phone_is_refused_and_asked_again(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan")
    await chat.send("12345")
    assert chat.last.text.startswith("That number is too short: some digits are missing.")
    assert chat.last.ask_contact
    await chat.send("+7 912 345 67 89")
    assert "consent" in chat.last.text
    assert await clients(core) == []  # nobody is created before the consent


async def test_contact_button_gives_the_phone(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan Petrov")
    await chat.share_contact("79123456789")
    await chat.click("I agree")
    await chat.click("No, thanks")
    await chat.click("Skip")
    [client] = await clients(core)
    assert (client.name, client.phone) == ("Ivan Petrov", "+79123456789")
    assert not client.marketing_allowed
    assert client.birthday is None


async def test_declining_consent_explains_and_keeps_the_step(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan")
    await chat.send("+79123456789")
    await chat.click("No")
    assert "Without this consent we cannot book you" in chat.last.text
    assert "+7 495 123-45-67" in chat.last.text
    assert chat.labels == ["I agree", "No"]
    await chat.send("what?")
    assert chat.last.text.startswith("Please choose one of the buttons below.")
    assert chat.labels == ["I agree", "No"]
    assert await clients(core) == []


async def test_too_long_name_and_bad_birthday_are_refused_politely(chat: ChatClient) -> None:
    chat.language = "en"
    chat.display_name = None
    await chat.send("/start")
    await chat.send("x" * 5000)
    assert chat.last.text.startswith("That is 5000 characters; the limit is 60.")
    await chat.send("Ivan")
    await chat.send("+79123456789")
    await chat.click("I agree")
    await chat.click("Yes, please")
    await chat.send("31.02.1990")
    assert chat.last.text.startswith("There is no such date.")
    await chat.send("yesterday")
    assert chat.last.text.startswith("I could not read that date.")
    await chat.send("31.12")
    assert "You are registered" in chat.history[-2].text


async def test_a_button_from_the_menu_before_registering_asks_to_finish(chat: ChatClient) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.press("1:bk")
    assert chat.last.text.startswith("Please finish registering first.")
    assert "What is your name?" in chat.last.text


async def test_restart_in_the_middle_of_registration_continues_where_the_client_was(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan")
    await chat.send("+79123456789")
    # The bot restarts: a new process, the same database.
    restarted = await build_core_on(db=core.db, config=core.config)
    again = ChatClient(restarted.conversations, clock, language="en")
    await again.send("/start")
    assert "consent" in again.last.text
    await again.click("I agree")
    await again.click("Yes, please")
    await again.click("Skip")
    [client] = await clients(core)
    assert client.phone == "+79123456789"


async def test_an_imported_client_is_recognised_by_phone_and_keeps_their_history(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    imported = await add_client(core, name="Иван", phone="+79123456789", consent_at=clock.now)
    assert imported.id is not None
    await add_visit(
        core,
        client_id=imported.id,
        master="ilya",
        service="haircut",
        start=utc_visit(2026, 10, 30, 12),
    )
    chat.language = "en"
    await chat.send("/start")
    await chat.click("Ivan")
    await chat.share_contact("+79123456789")  # the messenger vouches for the number
    await chat.click("I agree")
    await chat.click("Yes, please")
    await chat.click("Skip")
    [client] = await clients(core)
    assert client.id == imported.id and await chat_id(core, client.id) == "1001"
    assert "Repeat last visit" in chat.labels


async def test_whatsapp_registration_takes_the_senders_number(core: Core, clock: Clock) -> None:
    chat = ChatClient(
        core.conversations,
        clock,
        channel="whatsapp",
        external_id="79123456789",
        phone="79123456789",
        language="en",
        display_name="Ivan",
    )
    await chat.send("hi")
    await chat.click("Ivan")
    assert "consent" in chat.last.text  # no phone question
    await chat.click("I agree")
    await chat.click("No, thanks")
    await chat.click("Skip")
    [client] = await clients(core)
    assert client.phone == "+79123456789" and client.phone_verified
    assert await chat_id(core, client.id, "whatsapp") == "79123456789"


async def test_stop_turns_marketing_off(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat, marketing=True)
    await chat.send("/stop")
    assert "no more offers" in chat.last.text
    [client] = await clients(core)
    assert not client.marketing_allowed
    assert client.consent_at is not None  # reminders still allowed


async def test_a_typed_number_of_a_known_client_is_not_linked_without_proof(
    core: Core, clock: Clock
) -> None:
    known = await add_client(
        core, name="Вера", phone="+79161112233", whatsapp_id="79161112233", consent_at=clock.now
    )
    stranger = ChatClient(core.conversations, clock, external_id="666", language="en")
    await stranger.send("/start")
    await stranger.send("Mallory")
    await stranger.send("+7 916 111-22-33")
    assert stranger.last.text.startswith("We already know this number.")
    assert stranger.last.ask_contact  # only the messenger's own contact button links it
    [client] = await clients(core)
    assert (client.id, client.name) == (known.id, "Вера")
    assert await chat_id(core, client.id) is None
    # The real owner shares their contact: the record is linked, with its history.
    owner = ChatClient(core.conversations, clock, external_id="777", language="en")
    await owner.send("/start")
    await owner.send("Vera")
    await owner.share_contact("79161112233")
    await owner.click("I agree")
    await owner.click("No, thanks")
    await owner.click("Skip")
    [client] = await clients(core)
    assert (client.id, await chat_id(core, client.id)) == (known.id, "777")


async def test_a_phone_with_letters_is_refused(chat: ChatClient) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan")
    await chat.send("+7 912 ABC-DE-FG")
    assert chat.last.text.startswith("A phone number has only digits")


async def test_the_first_screen_switches_the_language(chat: ChatClient) -> None:
    chat.language = "en"
    await chat.send("/start")
    replies = await chat.click("Русский")
    assert replies[0].text.startswith("Здравствуйте! Барбершоп «Бритва» на связи")
    assert chat.last.text == "Как вас зовут?"
    assert "English" in chat.labels
    await chat.send("Иван")
    assert chat.last.ask_contact
    assert chat.last.locale == "ru"


async def test_a_russian_messenger_gets_russian_from_the_first_message(chat: ChatClient) -> None:
    chat.language = "ru-RU"
    replies = await chat.send("/start")
    assert replies[-1].text == "Как вас зовут?"
    assert "English" in chat.labels


async def test_a_year_in_the_future_or_before_1900_is_named(chat: ChatClient) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send("Ivan")
    await chat.send("+79123456789")
    await chat.click("I agree")
    await chat.click("Yes, please")
    await chat.send("01.01.2090")
    assert chat.last.text.startswith("That date is in the future. Please check the year.")
    await chat.send("01.01.1850")
    assert chat.last.text.startswith("That year is too long ago.")
