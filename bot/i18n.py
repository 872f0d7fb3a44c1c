"""Loading the gettext catalogs (locales/<lang>/LC_MESSAGES/regulars.mo) into Translators."""

from __future__ import annotations

import gettext
import io
import logging
import struct
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.config import StartupError
from domain.business import LOCALES, BusinessConfig
from domain.text import Translator

DOMAIN = "regulars"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"

log = logging.getLogger(__name__)


def load_catalog(locale: str, directory: Path = LOCALES_DIR) -> gettext.NullTranslations:
    """The compiled catalog; the .po itself when it was not compiled yet (a fresh
    checkout run without make); no translation at all when neither exists."""
    folder = directory / locale / "LC_MESSAGES"
    mo = folder / f"{DOMAIN}.mo"
    po = folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        try:
            with mo.open("rb") as handle:
                return gettext.GNUTranslations(handle)
        except (OSError, ValueError, struct.error) as error:  # truncated, not a catalog
            raise StartupError(
                f"{mo} is not a usable translation catalog ({error}); rebuild it: make locales"
            ) from None
    if po.exists():
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return gettext.GNUTranslations(buffer)
    log.warning("no %s catalog in %s: texts stay in English", locale, folder)
    return gettext.NullTranslations()


def build_translators(
    config: BusinessConfig, directory: Path = LOCALES_DIR
) -> dict[str, Translator]:
    return {
        locale: Translator(
            locale=locale,
            catalog=load_catalog(locale, directory),
            tz=config.tz,
            currency=config.business.currency,
            # The symbol people see on the price list there (₽, not "RUB"), in every language.
            currency_locale=str(Locale.parse(f"und_{config.business.phone_region}")),
        )
        for locale in LOCALES
    }
