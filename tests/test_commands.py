"""The commands as an operator types them: what each prints, and that the demo leaves
its database and config as the defaults of the others."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleChat
from bot.cli import main
from bot.composition import Core
from handlers.events import Choice, Text

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "business.example.toml")


def test_db_upgrade_says_whether_it_created_upgraded_or_found_it_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"created {path} with the whole schema")
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    assert capsys.readouterr().out.startswith("the database is up to date")


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    data = ROOT / "tests" / "data"
    command = [sys.executable, "-m", "bot", "import", "--db", str(path), "--config",
               str(data / "business.toml"), "--clients", str(data / "clients.csv"),
               "--visits", str(data / "visits.csv")]  # fmt: skip
    # `regulars import … | head -0`: the pipe is closed before anything is read.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        errors = child.stderr.read().decode()
        child.wait(timeout=60)
    assert "Traceback" not in errors
    assert "BrokenPipeError" not in errors


def test_the_demo_becomes_the_default_for_the_other_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "BUSINESS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: the scripted tour
    assert main(["demo", "--config", CONFIG, "--clients", "40"]) == 0
    shown = capsys.readouterr().out
    assert "The demo is now the default for the other commands (written to .env)" in shown
    env = (tmp_path / ".env").read_text(encoding="utf-8")
    assert "DATABASE_URL=sqlite+aiosqlite:///demo.db" in env
    # No --db, no --config: simulate finds the demo's database and the example config.
    assert main(["simulate", "--days", "1"]) == 0
    assert "in all: sent" in capsys.readouterr().out
    # Run again, the demo rewrites its own .env; an operator's own .env is left alone.
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc\n", encoding="utf-8")
    assert main(["demo", "--config", CONFIG, "--clients", "40"]) == 0
    assert "Your own settings are kept: give the other commands --db demo.db" in (
        capsys.readouterr().out
    )
    assert (tmp_path / ".env").read_text(encoding="utf-8") == "TELEGRAM_BOT_TOKEN=123:abc\n"


async def test_a_buttons_text_can_be_typed_as_well_as_its_number(core: Core) -> None:
    chat = ConsoleChat(core.conversations, external_id="t", write=lambda _: None, language="en")
    await chat.say("/start")
    await chat.say("Anna")
    await chat.say("+7 912 345-67-89")
    # The consent screen: "I agree" typed in any case is the button, not free text.
    assert chat.event_for("i AGREE") == Choice(chat.last.flat_buttons[0].payload)  # type: ignore[union-attr]
    assert chat.event_for("agreed, thanks") == Text("agreed, thanks")


def test_chat_new_starts_a_fresh_client_each_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    args = ["chat", "--db", str(path), "--config", CONFIG]
    capsys.readouterr()
    for _ in range(2):
        assert main([*args, "--new"]) == 0
        shown = capsys.readouterr().out
        assert "You are a new client (a fresh chat)." in shown
        assert "Как вас зовут?" in shown  # registration starts over every time
    assert main(args) == 0
    assert "--new starts as a new client" in capsys.readouterr().out
