"""Reading conversation-test files: one :class:`ConversationCase` per document."""

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
    # Why the document cannot run (``file:line:col: ...``), or "": a malformed document is
    # one failing test, and the file's other documents still run.
    error: str = ""

    @property
    def title(self) -> str:
        return self.name or f"doc{self.index}-{Path(self.flow).stem}"

    @property
    def where(self) -> str:
        return f"{self.file}: document {self.index} ({self.title})"


TURN_KINDS = ("bot", "user", "end", "wait", "slots", "step")
CASE_KEYS = {"flow", "channel", "contact", "params", "turns", "bot", "name"}


def load_cases(path: str | Path) -> list[ConversationCase]:
    """Read every document of a conversation-test file. ``TestFileError`` when the file
    cannot be read as YAML at all; a document that is not a valid test becomes a case
    whose ``error`` says where and why (it fails alone)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise TestFileError(f"{path}: {exc}") from exc
    cases: list[ConversationCase] = []
    for index, node in enumerate((n for n in nodes if n is not None), start=1):
        data = yaml.SafeLoader(text).construct_document(node)
        try:
            cases.append(_case(path, index, node, data))
        except TestFileError as exc:
            flow = str(data.get("flow", "?")) if isinstance(data, dict) else "?"
            name = str(data.get("name", "")) if isinstance(data, dict) else ""
            line = node.start_mark.line + 1
            cases.append(
                ConversationCase(
                    path, index, line, flow, "sms", {}, {}, None, (), name, error=str(exc)
                )
            )
    return cases


def _at(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _case(path: Path, index: int, node: yaml.Node, data: Any) -> ConversationCase:
    where = _at(path, node)
    if not isinstance(data, dict) or "flow" not in data:
        raise TestFileError(f"{where}: a test document is a mapping with flow: and turns:")
    assert isinstance(node, yaml.MappingNode)
    unknown = set(data) - CASE_KEYS
    if unknown:
        key = next(k for k, _ in node.value if k.value in unknown)
        raise TestFileError(
            f"{_at(path, key)}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(a test document has {', '.join(sorted(CASE_KEYS))})"
        )
    turns_node = next((v for k, v in node.value if k.value == "turns"), None)
    if not isinstance(turns_node, yaml.SequenceNode):
        raise TestFileError(f"{_at(path, turns_node or node)}: turns: must be a list")
    turns = []
    for item, raw in zip(turns_node.value, data["turns"], strict=True):
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in TURN_KINDS:
            raise TestFileError(
                f"{_at(path, item)}: a turn is one of {', '.join(TURN_KINDS)}, got {raw!r}"
            )
        kind, value = next(iter(raw.items()))
        turns.append(TurnSpec(kind, value, item.start_mark.line + 1))
    channel = data.get("channel", "sms")
    if channel not in ("sms", "voice"):
        raise TestFileError(f"{where}: channel must be sms or voice, got {channel!r}")
    return ConversationCase(
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
