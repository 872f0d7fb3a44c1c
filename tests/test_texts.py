from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from bot.composition import Core
from bot.i18n import build_translators
from domain.business import BusinessConfig
from domain.people import first_name
from testing.chat import ChatClient, utc
from tests.helpers import register


def test_dates_and_prices_read_naturally_in_russian(config: BusinessConfig) -> None:
    ru = build_translators(config)["ru"]
    assert ru.when(utc(2026, 11, 27, 12, 30)) == "в пятницу, 27 ноября, 15:30"
    assert ru.when(utc(2026, 11, 24, 9, 0)) == "во вторник, 24 ноября, 12:00"
    assert ru.money(Decimal("1500")) == "1\xa0500\xa0₽"
    assert ru.money(Decimal("1500.50")) == "1\xa0500,50\xa0₽"
    assert ru.minutes(90) == "1 ч 30 мин"
    assert ru.short_day(date(2026, 11, 27)) == "пт, 27 нояб."


def test_dates_and_prices_in_english(config: BusinessConfig) -> None:
    en = build_translators(config)["en"]
    assert en.when(utc(2026, 11, 27, 12, 30)) == "on Friday, November 27, 15:30"
    assert en.money(Decimal("1500")) == "₽1,500"
    assert en.minutes(45) == "45 min"


def test_russian_plural_forms(config: BusinessConfig) -> None:
    ru = build_translators(config)["ru"]
    forms = {
        n: ru.n_("{n} visit with us so far.", "{n} visits with us so far.", n).format(n=n)
        for n in (1, 3, 5, 11, 21, 22, 25)
    }
    assert forms == {
        1: "Вы были у нас уже 1 раз.",
        3: "Вы были у нас уже 3 раза.",
        5: "Вы были у нас уже 5 раз.",
        11: "Вы были у нас уже 11 раз.",
        21: "Вы были у нас уже 21 раз.",
        22: "Вы были у нас уже 22 раза.",
        25: "Вы были у нас уже 25 раз.",
    }


def test_the_local_time_is_shown_not_utc(config: BusinessConfig) -> None:
    ru = build_translators(config)["ru"]
    # 21:30 UTC on Thursday is 00:30 on Friday in Moscow.
    assert ru.when(utc(2026, 11, 26, 21, 30)) == "в пятницу, 27 ноября, 00:30"


async def test_a_russian_speaking_client_gets_russian_texts(chat: ChatClient, core: Core) -> None:
    chat.language = "ru"
    await chat.send("/start")
    assert chat.last.text == "Как вас зовут?"
    await chat.click("Ivan")
    await chat.send("+79123456789")
    await chat.click("Даю согласие")
    assert chat.labels == ["Да, пишите", "Нет, спасибо"]


async def test_switching_the_language_switches_the_texts(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Language")
    await chat.click("Русский")
    assert chat.last.text.startswith("Сохранено.")
    await chat.send("/start")
    assert "Записаться" in chat.labels


def test_every_text_has_a_russian_translation_and_nothing_is_fuzzy() -> None:
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent / "locales"
    with (root / "ru" / "LC_MESSAGES" / "regulars.po").open("rb") as handle:
        catalog = read_po(handle)
    with (root / "regulars.pot").open("rb") as handle:
        template = read_po(handle)
    missing = [
        message.id
        for message in catalog
        if message.id
        and (
            message.fuzzy
            or not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
        )
    ]
    assert missing == []
    # Every text the code uses is in the catalog (make extract-messages was run).
    assert {m.id for m in template if m.id} <= {m.id for m in catalog if m.id}


def test_a_friendly_message_uses_the_first_name() -> None:
    assert first_name("Виктор Зайцев") == "Виктор"
    assert first_name("  Anna  ") == "Anna"
    assert first_name("Мария-Луиза Петрова") == "Мария-Луиза"
    assert first_name("") == ""
