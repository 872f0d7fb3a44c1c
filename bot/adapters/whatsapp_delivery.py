"""Proactive messages (reminders, offers) through the WhatsApp Cloud API: free-form inside
the 24 hours after the client's last message, the kind's approved template outside them,
and the Graph API's errors translated into what the sender understands."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from pywa_async import WhatsApp
from pywa_async.errors import AuthorizationError, ReEngagementMessage, WhatsAppError
from pywa_async.types.templates import TemplateLanguage

from bot.adapters.whatsapp_outbound import MARKETING_STOPPED, UNREACHABLE_CODES, Outgoing
from bot.i18n import build_translators
from domain.business import BusinessConfig, Template
from domain.replies import Reply
from domain.text import Translator, translator_for
from scheduler.delivery import (
    DeliveryError,
    OptedOut,
    Recipient,
    Refused,
    RetryAfter,
    Transient,
    Unreachable,
)

THROUGHPUT_PAUSE = 5.0  # 130429: the number's messages per second are used up
APP_LIMIT_PAUSE = 60.0  # 4 / 80007: the app's or the account's API calls are used up
TOKEN_REJECTED_PAUSE = 60.0  # the token was revoked or lacks a permission: wait for the operator
_APP_LIMITS = frozenset({4, 80007})
# The template itself is the problem (missing, paused, disabled, parameters that do not fit
# it): sending it again cannot help, so the message is skipped with the reason.
_TEMPLATE_CODES = frozenset({132000, 132001, 132005, 132007, 132008, 132012, 132015, 132016})
# Not for this person at all: a test number's allow-list, our own number.
_NOT_FOR_THEM = frozenset({131021, 131030})
_LANGUAGES = {language.value: language for language in TemplateLanguage}


class WhatsAppDelivery:
    def __init__(
        self,
        client: WhatsApp,
        config: BusinessConfig,
        *,
        translators: Mapping[str, Translator] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        words = translators or build_translators(config)
        default = config.business.default_locale

        def translator(locale: str | None) -> Translator:
            return translator_for(words, locale, default)

        self.outgoing = Outgoing(client, translator)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        try:
            if recipient.in_conversation_window:
                try:
                    await self.outgoing.send(recipient.address, reply, locale=recipient.locale)
                    return
                except ReEngagementMessage:
                    pass  # WhatsApp counts the window closed (our clock is minutes coarse)
            await self._send_template(recipient, reply)
        except WhatsAppError as error:
            raise outcome_of(error) from error
        except httpx.HTTPError as error:
            raise Transient(f"WhatsApp unreachable: {type(error).__name__}: {error}") from error

    async def _send_template(self, recipient: Recipient, reply: Reply) -> None:
        template = template_outside_window(self.config, reply)
        await self.client.send_template(
            to=recipient.address,
            name=template.name,
            language=_LANGUAGES[template.language],
            params=template_params(template, reply),
        )


def check_deliverable(config: BusinessConfig, recipient: Recipient, reply: Reply) -> None:
    """Refused when WhatsApp would not take this message: outside the 24-hour window it
    needs the kind's approved template, filled with every value the template names. The
    sender learns this from the Graph API; `regulars simulate` asks here, the same rule."""
    if not recipient.in_conversation_window:
        template_params(template_outside_window(config, reply), reply)


def template_outside_window(config: BusinessConfig, reply: Reply) -> Template:
    template = config.whatsapp.templates.get(reply.kind or "")
    if template is None:
        raise Refused(f"no approved WhatsApp template for {reply.kind} outside the 24-hour window")
    if template.language not in _LANGUAGES:
        raise Refused(f"template {template.name}: unknown language {template.language!r}")
    return template


def template_params(template: Template, reply: Reply) -> list[dict[str, object]] | None:
    """The body parameters of `template`, taken from the reply's named values in the
    template's order; Refused when the message does not have one of them."""
    values = []
    for name in template.params:
        # Template parameters may not hold line breaks, tabs or runs of spaces.
        value = " ".join(reply.values.get(name, "").split())
        if not value:
            raise Refused(f"template {template.name} needs {name!r}; this {reply.kind} has none")
        values.append({"type": "text", "text": value})
    return [{"type": "body", "parameters": values}] if values else None


def outcome_of(error: WhatsAppError) -> DeliveryError:
    """What a Graph API error means for the sender."""
    code = error.code
    detail = f"WhatsApp error {code}: {error.message}"
    if error.details:
        detail += f" ({error.details})"
    detail = detail[:400]
    if code == 130429:
        return RetryAfter(THROUGHPUT_PAUSE, detail)
    if code in _APP_LIMITS:
        return RetryAfter(APP_LIMIT_PAUSE, detail)
    if isinstance(error, AuthorizationError):
        return RetryAfter(TOKEN_REJECTED_PAUSE, f"WhatsApp rejected the token: {detail}")
    if code == MARKETING_STOPPED:
        return OptedOut(detail)
    if code in UNREACHABLE_CODES:
        return Unreachable(detail)
    if code in _TEMPLATE_CODES or code in _NOT_FOR_THEM or isinstance(error, ReEngagementMessage):
        return Refused(detail)
    return Transient(detail)  # 131056 (too many to this person), 5xx, anything unforeseen
