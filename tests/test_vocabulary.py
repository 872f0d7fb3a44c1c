"""The conversation's vocabulary: every action and step has exactly one owner, and the
typed payload builders write the same short wire format as before."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.payloads import BadPayload, unpack
from domain.replies import Reply
from domain.vocabulary import (
    Act,
    MovedVisit,
    NewVisit,
    Step,
    book_slot,
    choose_day,
    decode_target,
    encode_target,
)
from handlers.conversation import FLOWS
from handlers.flows import DuplicateName, Flow, Flows
from handlers.turn import Turn


async def _nothing(turn: Turn, args: list[str]) -> list[Reply]:
    return []


async def _view(turn: Turn) -> Reply:
    return Reply("")


def test_every_action_has_one_flow() -> None:
    assert FLOWS.actions == {act.value for act in Act}


def test_every_step_but_the_start_can_be_shown() -> None:
    assert set(FLOWS.views) == {step.value for step in Step} - {Step.START}


def test_an_action_claimed_twice_fails_at_start_up() -> None:
    one = Flow("one", actions={Act.MAIN_MENU: _nothing})
    two = Flow("two", actions={Act.MAIN_MENU: _nothing})
    with pytest.raises(DuplicateName, match="'mn' is in both one and two"):
        Flows([one, two])


def test_a_step_claimed_twice_fails_at_start_up() -> None:
    one = Flow("one", views={Step.MENU: _view})
    two = Flow("two", views={Step.MENU: _view})
    with pytest.raises(DuplicateName, match="'menu' is in both one and two"):
        Flows([one, two])


def test_an_action_is_found_only_among_the_flows_allowed() -> None:
    one = Flow("one", actions={Act.HELP: _nothing})
    flows = Flows([one, Flow("two")])
    assert flows.action("hp", among=[one]) is _nothing
    assert flows.action("hp", among=[]) is None


def test_the_wire_format_is_unchanged() -> None:
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    payload = book_slot(3, 2, start)
    assert payload == f"1:ok:n3.2:{int(start.timestamp() // 60)}"
    assert len(payload.encode()) <= 64
    assert unpack(payload) == ("ok", ["n3.2", str(int(start.timestamp() // 60))])
    assert choose_day(MovedVisit(812), date(2026, 11, 24)) == "1:dy:r812:20261124"


@pytest.mark.parametrize("ref", [NewVisit(3, 2), NewVisit(1, 0), MovedVisit(812)])
def test_a_target_reads_back_as_written(ref: NewVisit | MovedVisit) -> None:
    assert decode_target(encode_target(ref)) == ref


@pytest.mark.parametrize("token", ["", "n", "n3", "n3.x", "rx", "r"])
def test_a_forged_target_is_a_bad_payload(token: str) -> None:
    with pytest.raises(BadPayload):
        decode_target(token)
