"""Each conversation module describes itself once as a `Flow`: the steps it can show, the
steps that take typed text and the actions its buttons ask for. `Flows` merges them and
refuses a second owner for any step or action, so a collision fails at start-up (and in
tests/test_vocabulary.py), never by one flow silently shadowing another."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from domain.replies import Reply
from domain.vocabulary import Act, Step
from handlers.common import Action, TextStep, View
from handlers.turn import Turn
from storage.tables import Role

# A typed command: the turn and what follows the command's name ("/day 2026-12-01").
CommandHandler = Callable[[Turn, str], Awaitable[list[Reply]]]
EVERY_ROLE = frozenset(Role)


@dataclass(frozen=True, slots=True)
class StaffCommand:
    """A staff command: its handler, the roles that may run it (read from the database on
    every turn) and its line in the chat's Telegram command list (an N_() text)."""

    handler: CommandHandler
    about: str
    roles: frozenset[Role] = EVERY_ROLE
    button: bool = True  # also a button of the staff menu


class DuplicateName(ValueError):
    """Two flows claim the same step or action."""


@dataclass(frozen=True, slots=True, eq=False)  # a flow is itself: compared by identity
class Flow:
    name: str
    views: Mapping[Step, View] = field(default_factory=dict)
    text_steps: Mapping[Step, TextStep] = field(default_factory=dict)
    actions: Mapping[Act, Action] = field(default_factory=dict)
    commands: Mapping[str, StaffCommand] = field(default_factory=dict)  # staff only


class Flows:
    def __init__(self, flows: Iterable[Flow]) -> None:
        self.views: dict[str, View] = {}
        self.text_steps: dict[str, TextStep] = {}
        self._actions: dict[str, tuple[Flow, Action]] = {}
        self._view_owner: dict[str, str] = {}
        self._text_owner: dict[str, str] = {}
        self._commands: dict[str, tuple[Flow, StaffCommand]] = {}
        for flow in flows:
            self._add(flow)

    def _add(self, flow: Flow) -> None:
        for step, view in flow.views.items():
            _claim(self._view_owner, step, flow, "step")
            self.views[step] = view
        for step, text_step in flow.text_steps.items():
            _claim(self._text_owner, step, flow, "text step")
            self.text_steps[step] = text_step
        for act, action in flow.actions.items():
            if act in self._actions:
                other = self._actions[act][0].name
                raise DuplicateName(f"action '{act}' is in both {other} and {flow.name}")
            self._actions[act] = (flow, action)
        for name, command in flow.commands.items():
            if name in self._commands:
                other = self._commands[name][0].name
                raise DuplicateName(f"command '/{name}' is in both {other} and {flow.name}")
            self._commands[name] = (flow, command)

    def action(self, name: str, among: Iterable[Flow]) -> Action | None:
        """The handler of action `name` when one of the flows `among` owns it."""
        found = self._actions.get(name)
        if found is None or found[0] not in tuple(among):
            return None
        return found[1]

    def text_step(self, step: str, among: Iterable[Flow]) -> TextStep | None:
        owner = self._text_owner.get(step)
        if owner is None or owner not in {flow.name for flow in among}:
            return None
        return self.text_steps[step]

    def command(self, name: str) -> StaffCommand | None:
        found = self._commands.get(name)
        return found[1] if found else None

    def commands_for(self, role: str) -> list[tuple[str, StaffCommand]]:
        """The staff commands a role may run, in the order the flows list them."""
        return [(name, c) for name, (_, c) in self._commands.items() if role in c.roles]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self._actions)


def _claim(owners: dict[str, str], step: str, flow: Flow, what: str) -> None:
    if step in owners:
        raise DuplicateName(f"{what} '{step}' is in both {owners[step]} and {flow.name}")
    owners[step] = flow.name
