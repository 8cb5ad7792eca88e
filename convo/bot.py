"""A bot: flows plus the Python hooks they call by name.

Flows call hooks with ``do: [dentist.book]`` (actions) and ``validate: dentist.slot_free``
(validators). A bot registers them::

    bot = Bot("dentist")

    @bot.validator                       # registered as "dentist.slot_free"
    async def slot_free(conv: Conversation, value: str) -> bool | str:
        return value in FREE or "That day is full, pick another."

    @bot.action("dentist.book")          # or name it explicitly
    async def book(conv: Conversation) -> None:
        conv.slots["booking"] = await calendar.book(conv.slots["new_date"])

Contracts:

* Hooks are ``async`` and get a :class:`Conversation`: the contact, the params, the slots
  (a dict the hook may change: changes are saved with the turn), the language and the
  ``media`` of the reply being handled (an MMS; :class:`convo.media.Media`, which a hook
  downloads with ``await media.save(path)`` or ``await media.read()``).
* A validator gets the parsed answer and returns ``True`` (accepted), ``False`` (refused:
  the step's ``invalid`` text or next reprompt is said) or a string (refused, and that string
  is said). It may also put a normalised value in ``conv.slots`` itself.
* A hook that raises aborts the turn: the error is logged with the conversation key, the
  person gets the flow's ``error_text`` and the conversation stays where it was.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from convo.exceptions import ConfigError
from convo.models import Contact, ConversationKey

if TYPE_CHECKING:
    from convo.media import Media

Action = Callable[["Conversation"], Awaitable[Any]]
Validator = Callable[["Conversation", Any], Awaitable["bool | str"]]


@dataclass(slots=True)
class Conversation:
    """What a hook sees of a conversation during one turn."""

    key: ConversationKey
    flow: str
    step: str
    contact: Contact
    lang: str
    params: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    media: tuple[Media, ...] = ()


class Bot:
    """A named set of hooks. ``name`` prefixes hook names registered without a dot."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.actions: dict[str, Action] = {}
        self.validators: dict[str, Validator] = {}

    def _qualify(self, func: Callable[..., Any], name: str | None) -> str:
        if name:
            return name
        return f"{self.name}.{func.__name__}" if self.name else func.__name__

    @overload
    def action(self, name: Action, /) -> Action: ...
    @overload
    def action(self, name: str | None = None, /) -> Callable[[Action], Action]: ...
    def action(self, name: str | Action | None = None, /) -> Any:
        """Register an action hook, as ``@bot.action`` or ``@bot.action("x.y")``."""
        if callable(name):
            self.actions[self._qualify(name, None)] = name
            return name

        def register(func: Action) -> Action:
            self.actions[self._qualify(func, name)] = func
            return func

        return register

    @overload
    def validator(self, name: Validator, /) -> Validator: ...
    @overload
    def validator(self, name: str | None = None, /) -> Callable[[Validator], Validator]: ...
    def validator(self, name: str | Validator | None = None, /) -> Any:
        """Register a validator hook, as ``@bot.validator`` or ``@bot.validator("x.y")``."""
        if callable(name):
            self.validators[self._qualify(name, None)] = name
            return name

        def register(func: Validator) -> Validator:
            self.validators[self._qualify(func, name)] = func
            return func

        return register

    def hook_names(self) -> dict[str, str]:
        """Every registered name and what it is (``"action"``, ``"validator"``, or ``"any"``
        when it is registered as both): what the loader checks ``do:`` and ``validate:``
        against."""
        kinds = dict.fromkeys(self.actions, "action")
        for name in self.validators:
            kinds[name] = "any" if name in kinds else "validator"
        return kinds


def load_bot(ref: str | Path) -> Bot:
    """Load a bot from ``path/to/bot.py`` (its module-level ``bot``), ``path.py:attr`` or an
    importable ``package.module:attr``. Raises ``ConfigError`` saying what was not found."""
    text = str(ref)
    target, _, attr = text.partition(":")
    attr = attr or "bot"
    if target.endswith(".py") or Path(target).is_file():
        path = Path(target).resolve()
        if not path.is_file():
            raise ConfigError(f"bot file not found: {target}")
        module_name = f"convo_bot_{abs(hash(str(path)))}"
        if module_name in sys.modules:
            module = sys.modules[module_name]
        else:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"cannot import bot file {target}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    found = getattr(module, attr, None)
    if not isinstance(found, Bot):
        raise ConfigError(f"{target} has no Bot named {attr!r}")
    return found
