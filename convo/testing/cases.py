"""Reading conversation-test files (DESIGN §7): one :class:`ConversationCase` per document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from convo.exceptions import ConvoError
from convo.models import Channel


def is_test_file(path: Path) -> bool:
    name = path.name
    return name.endswith((".test.yaml", ".test.yml")) or (
        name.startswith("test_") and name.endswith((".yaml", ".yml"))
    )


def discover_tests(paths: Sequence[str | Path]) -> list[Path]:
    """Conversation-test files in the given files and directories (recursively)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(f for f in sorted(p.rglob("*.y*ml")) if is_test_file(f))
        else:
            found.append(p)
    return found


class TestFileError(ConvoError):
    """A conversation-test file cannot be read (says file:line)."""


@dataclass(frozen=True, slots=True)
class TurnSpec:
    kind: str  # bot | user | end | wait | slots | step
    value: Any
    line: int


@dataclass(frozen=True, slots=True)
class ConversationCase:
    """One document of a conversation-test file."""

    file: Path
    index: int  # 1-based document number
    line: int
    flow: str
    channel: Channel
    contact: Mapping[str, Any]
    params: Mapping[str, Any]
    bot: str | None
    turns: tuple[TurnSpec, ...]
    name: str = ""

    @property
    def title(self) -> str:
        return self.name or f"doc{self.index}-{Path(self.flow).stem}"

    @property
    def where(self) -> str:
        return f"{self.file}: document {self.index} ({self.title})"


TURN_KINDS = ("bot", "user", "end", "wait", "slots", "step")
CASE_KEYS = {"flow", "channel", "contact", "params", "turns", "bot", "name"}


def load_cases(path: str | Path) -> list[ConversationCase]:
    """Read every document of a conversation-test file; ``TestFileError`` on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise TestFileError(f"{path}: {exc}") from exc
    cases: list[ConversationCase] = []
    for index, node in enumerate((n for n in nodes if n is not None), start=1):
        where = f"{path}:{node.start_mark.line + 1}"
        data = yaml.SafeLoader(text).construct_document(node)
        if not isinstance(data, dict) or "flow" not in data:
            raise TestFileError(f"{where}: a test document is a mapping with flow: and turns:")
        unknown = set(data) - CASE_KEYS
        if unknown:
            raise TestFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        turns_node = next((v for k, v in node.value if k.value == "turns"), None)
        if not isinstance(turns_node, yaml.SequenceNode):
            raise TestFileError(f"{where}: turns: must be a list")
        turns = []
        for item, raw in zip(turns_node.value, data["turns"], strict=True):
            line = item.start_mark.line + 1
            if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in TURN_KINDS:
                raise TestFileError(
                    f"{path}:{line}: a turn is one of {', '.join(TURN_KINDS)}, got {raw!r}"
                )
            kind, value = next(iter(raw.items()))
            turns.append(TurnSpec(kind, value, line))
        channel = data.get("channel", "sms")
        if channel not in ("sms", "voice"):
            raise TestFileError(f"{where}: channel must be sms or voice, got {channel!r}")
        cases.append(
            ConversationCase(
                file=path,
                index=index,
                line=node.start_mark.line + 1,
                flow=str(data["flow"]),
                channel=channel,
                contact=data.get("contact") or {},
                params=data.get("params") or {},
                bot=data.get("bot"),
                turns=tuple(turns),
                name=str(data.get("name", "")),
            )
        )
    return cases
