"""Settings from the environment / .env, and the business configuration file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.business import BusinessConfig, reference_problems


class Settings(BaseSettings):
    # A blank line in .env ("TELEGRAM_WEBHOOK_SECRET=") means "not set", never "empty": an
    # empty secret would switch the webhook check off.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_parse_none_str=""
    )

    database_url: str = "sqlite+aiosqlite:///regulars.db"
    business_config: Path = Path("business.toml")
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    whatsapp_phone_id: str | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_url: str | None = None
    # Proactive messages per second from the business number: 20 is safe on every tier;
    # raise it up to the account's limit (80 on most tiers).
    whatsapp_messages_per_second: Annotated[float, Field(gt=0, le=1000)] = 20.0
    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    log_level: str = "INFO"
    # `regulars run` writes a daily SQLite backup here and keeps the newest BACKUP_KEEP.
    backup_dir: Path | None = None
    backup_keep: Annotated[int, Field(ge=1, le=3650)] = 7


class ConfigError(Exception):
    """A configuration problem an operator can fix; `problems` are 'path: reason' lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class StartupError(Exception):
    """Something outside the configuration files keeps the bot from starting (the
    database, the port, the translations): one line saying what, for the operator."""


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _reason(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "is required"
    return message.removeprefix("Value error, ")


def describe(error: ValidationError, *, whole_file: bool = True) -> list[str]:
    """pydantic's errors as 'services[2].duration: must be a positive number of minutes'.
    With `whole_file` False the whole-file checks are left out (the caller ran them on
    the raw file already)."""
    problems = []
    for item in error.errors():
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        if not loc and not whole_file:
            continue
        problems.append(f"{_path(loc)}: {_reason(item)}")
    return problems


def load_business_config(path: Path) -> BusinessConfig:
    """Read and check business.toml; raise ConfigError with every problem found."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(path), ["file not found (copy business.example.toml to start)"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    # The references are checked on the raw file as well, so one run reports every problem
    # (pydantic checks them only once every value is valid).
    references = reference_problems(raw)
    try:
        config = BusinessConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), describe(exc, whole_file=False) + references) from None
    return config
