"""A Reply is a value: made once, never changed; a hint on top keeps the rest."""

from __future__ import annotations

import dataclasses

import pytest

from domain.replies import Reply
from handlers.common import with_hint


def test_a_reply_cannot_be_changed_after_it_is_made() -> None:
    values = {"name": "Anna"}
    reply = Reply("Hello", kind="reminder", values=values)
    values["name"] = "Boris"
    assert reply.values["name"] == "Anna"
    with pytest.raises(TypeError):
        reply.values["name"] = "Boris"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.text = "Bye"  # type: ignore[misc]


def test_a_hint_keeps_everything_but_the_text() -> None:
    view = Reply("Choose a day:", edit=True, locale="ru", contact_button="📱", kind="x")
    hinted = with_hint("Please use the buttons.", view)
    assert hinted.text == "Please use the buttons.\n\nChoose a day:"
    assert dataclasses.replace(hinted, text=view.text) == view
    assert hinted.edit and hinted.locale == "ru" and hinted.contact_button == "📱"
