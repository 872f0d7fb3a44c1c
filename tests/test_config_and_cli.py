from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_business_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "business.example.toml").read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "business.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_wrong_value_is_reported_with_its_path(tmp_path: Path) -> None:
    broken = EXAMPLE.replace(
        'key = "beard"\nname = "Моделирование бороды"\nname_en = "Beard trim"\nduration = 45',
        'key = "beard"\nname = "Моделирование бороды"\nname_en = "Beard trim"\nduration = 0',
    )
    with pytest.raises(ConfigError) as error:
        load_business_config(_write(tmp_path, broken))
    assert error.value.problems == ["services[2].duration: must be a positive number of minutes"]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    broken = (
        EXAMPLE.replace('timezone = "Europe/Moscow"', 'timezone = "Moscow"')
        .replace("slot_step = 15", "slot_steps = 15")
        .replace('mon = "10:00-21:00"', 'mon = "21:00-10:00"')
        .replace('services = ["haircut", "kids", "beard"]', 'services = ["haircut", "manicure"]')
    )
    with pytest.raises(ConfigError) as error:
        load_business_config(_write(tmp_path, broken))
    assert error.value.problems == [
        "business.timezone: unknown time zone 'Moscow'; use an IANA name like Europe/Moscow",
        "booking.slot_steps: unknown key (check the spelling)",
        "hours.mon: '21:00-10:00': closing time must be after opening time",
        # Found in the same run: a reference is checked even while other values are wrong.
        "masters[2].services: unknown service 'manicure'",
    ]


def test_an_unknown_service_of_a_master_is_reported(tmp_path: Path) -> None:
    broken = EXAMPLE.replace(
        'services = ["haircut", "kids", "beard"]', 'services = ["haircut", "manicure"]'
    )
    with pytest.raises(ConfigError) as error:
        load_business_config(_write(tmp_path, broken))
    assert error.value.problems == ["masters[2].services: unknown service 'manicure'"]


def test_the_cli_reports_a_bad_config_with_exit_code_2_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EXAMPLE.replace("price = 1800", 'price = "free"')
    config = _write(tmp_path, broken)
    code = main(["chat", "--db", str(tmp_path / "x.db"), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "services[0].price: must be an amount of money, e.g. 1500 or 1500.50" in err
    assert "Traceback" not in err


def test_a_missing_config_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["chat", "--db", str(tmp_path / "x.db"), "--config", str(tmp_path / "none.toml")])
    assert code == 2
    assert "file not found (copy business.example.toml to start)" in capsys.readouterr().err


def test_run_without_any_channel_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    code = main(
        ["run", "--db", str(tmp_path / "x.db"), "--config", str(ROOT / "business.example.toml")]
    )
    assert code == 2
    assert "set TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    path = tmp_path / "fresh.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    tables = {row[0] for row in sqlite3.connect(path).execute("select name from sqlite_master")}
    assert {"client", "visit", "outbox", "conversation"} <= tables


def test_blank_lines_in_env_mean_not_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.config import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "")  # as .env.example ships it
    settings = Settings()
    # An empty secret would switch the webhook check off; unset derives one from the token.
    assert settings.telegram_webhook_secret is None
    assert settings.telegram_bot_token is None


def test_retention_windows_that_leave_no_time_are_refused(tmp_path: Path) -> None:
    broken = EXAMPLE.replace('marketing_from = "10:00"', 'marketing_from = "23:00"').replace(
        'marketing_to = "20:00"', 'marketing_to = "07:00"'
    )
    with pytest.raises(ConfigError) as error:
        load_business_config(_write(tmp_path, broken))
    assert error.value.problems == [
        "retention: marketing_from/marketing_to leave no time for offers outside the quiet hours"
    ]


def test_one_telegram_id_for_two_masters_is_refused(tmp_path: Path) -> None:
    broken = EXAMPLE.replace('role = "owner"\n', 'role = "owner"\ntelegram_id = 5\n').replace(
        'key = "ilya"\nname = "Илья"\n', 'key = "ilya"\nname = "Илья"\ntelegram_id = 5\n'
    )
    with pytest.raises(ConfigError) as error:
        load_business_config(_write(tmp_path, broken))
    assert error.value.problems == ["masters[1].telegram_id: also given to masters[0]"]
