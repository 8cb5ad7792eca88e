"""Flow files (YAML) -> :class:`~convo.flow.spec.FlowSpec`, with every error found at once.

This module is the public entry of the flow loader: it finds flow files, reads them and
decides what a caller gets. The reading itself is done by
:class:`~convo.flow.flow_reader.FlowReader`, which walks a file's YAML node tree (so every
problem is reported as ``file:line:col: message`` with a hint), never stops at the first
problem, and collects :class:`~convo.exceptions.Diagnostic` values; the cross-checks that
need the whole file (unknown and unreachable steps, templates and their variables, hooks)
run after the walk. A spec is only returned when no error was found; warnings are returned
by :func:`check_flow` and logged by the ``load_*`` functions.

Scalars are read leniently where the flow language expects text: ``key: 1``, ``words: [yes]``
and a language called ``no`` are the texts "1", "yes" and "no", not YAML 1.1 numbers and
booleans (the "Norway problem"). Where the language expects a number or a boolean, the YAML
type must match.

Public API: :func:`check_flow` (spec or None, plus all diagnostics), :func:`load_flow`,
:func:`load_flow_text`, :func:`load_flows`, :func:`discover`, :func:`top_level_scalars` and
:func:`parse_duration`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import yaml

from convo.exceptions import Diagnostic, FlowError
from convo.flow.durations import parse_duration
from convo.flow.flow_reader import FlowReader
from convo.flow.spec import FlowSpec

__all__ = [
    "check_flow",
    "check_flows",
    "discover",
    "is_conversation_test",
    "load_flow",
    "load_flow_text",
    "load_flows",
    "parse_duration",
    "top_level_scalars",
]

log = logging.getLogger("convo.flow")

_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})


# libyaml's parser when PyYAML has it: only events are needed, and it is several times faster.
_EventLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def top_level_scalars(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(key, value)`` for each top-level key of each YAML document of ``path``, in file
    order, read from the parser's events without building the documents: ``value`` is the
    text of a scalar value (``flow: 1`` gives "1", as the flow reader reads it), None for a
    null, a list or a mapping. Stops quietly at the first unreadable or invalid part, so a
    caller may stop reading early and never has to handle YAML errors: the flow loader
    reports those with their position."""
    try:
        with path.open(encoding="utf-8") as stream:
            # depth counts open collections; top-level keys are the scalars at depth 1 of a
            # document whose root is a mapping, alternating key and value.
            depth, in_mapping, key = 0, False, None
            for event in yaml.parse(stream, Loader=_EventLoader):
                if isinstance(event, yaml.CollectionStartEvent):
                    if depth == 0:
                        in_mapping = isinstance(event, yaml.MappingStartEvent)
                    elif depth == 1 and in_mapping and key is not None:
                        yield key, None
                        key = None
                    depth += 1
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
                elif depth == 1 and in_mapping and isinstance(event, yaml.NodeEvent):
                    value = event.value if isinstance(event, yaml.ScalarEvent) else None
                    if key is None:
                        key = value or ""
                    else:
                        plain_null = isinstance(event, yaml.ScalarEvent) and (
                            event.implicit[0] and event.value in _NULLS
                        )
                        yield key, None if plain_null else value
                        key = None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return


def is_conversation_test(path: Path) -> bool:
    """Whether ``path`` is a conversation-test file rather than a flow: by its name
    (``*.test.yaml``, ``*.test.yml``, ``test_*``), or, whatever its name, because one of its
    YAML documents has a top-level ``turns:`` key, which no flow file has."""
    name = path.name
    if name.endswith((".test.yaml", ".test.yml")) or name.startswith("test_"):
        return True
    return any(key == "turns" for key, _ in top_level_scalars(path))


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Flow files in ``paths``: each file as given, and ``*.yaml`` / ``*.yml`` found
    recursively in each directory (hidden directories and ``__pycache__`` skipped).
    Conversation-test files (see :func:`is_conversation_test`) are left out, so a test named
    like the flow it tests is never taken for a flow. A path that does not exist is kept, so
    that loading it reports the problem."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not any(
                    part.startswith(".") or part in _SKIP_DIRS
                    for part in p.relative_to(path).parts[:-1]
                )
            )
        else:
            candidates = [path]
        found.extend(p for p in candidates if not is_conversation_test(p))
    return list(dict.fromkeys(found))


def check_flow(
    path: str | Path, *, hooks: Collection[str] | None = None
) -> tuple[FlowSpec | None, list[Diagnostic]]:
    """Read and check one flow file. Returns ``(spec, diagnostics)``: every error and
    warning found, sorted by position; ``spec`` is None when there is any error. Never
    raises for a bad file (unreadable, not UTF-8, bad YAML, bad flow): all become
    diagnostics. ``hooks``: the bot's hook names; None leaves them unchecked (one warning)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [Diagnostic(name, 1, 1, f"cannot read flow file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Diagnostic(name, line, 1, "flow file is not UTF-8 text")]
    return _check(text, name, data, hooks)


def load_flow(path: str | Path, *, hooks: Collection[str] | None = None) -> FlowSpec:
    """Load one flow file. Raises FlowError carrying every error; warnings are logged."""
    spec, diagnostics = check_flow(path, hooks=hooks)
    return _spec_or_raise(spec, diagnostics)


def load_flow_text(
    text: str, name: str = "<string>", *, hooks: Collection[str] | None = None
) -> FlowSpec:
    """Like :func:`load_flow`, from YAML text; ``name`` stands for the file in messages."""
    spec, diagnostics = _check(text, name, text.encode("utf-8"), hooks)
    return _spec_or_raise(spec, diagnostics)


def load_flows(
    paths: Sequence[str | Path], *, hooks: Collection[str] | None = None
) -> dict[str, FlowSpec]:
    """Every flow file in ``paths`` (see :func:`discover`), by flow id. Raises one FlowError
    with the errors of all files; two files with the same flow id are an error."""
    specs, errors = check_flows(paths, hooks=hooks)
    if errors:
        raise FlowError(errors)
    return specs


def check_flows(
    paths: Sequence[str | Path], *, hooks: Collection[str] | None = None
) -> tuple[dict[str, FlowSpec], list[Diagnostic]]:
    """Every flow file in ``paths`` that loads, by flow id, and the errors of those that
    do not (a file with errors gives no spec; the second file using a flow id is an
    error). Warnings are logged. What a reload needs: the good files, and the bad ones
    named."""
    specs: dict[str, FlowSpec] = {}
    errors: list[Diagnostic] = []
    for path in discover(paths):
        spec, diagnostics = check_flow(path, hooks=hooks)
        _log_warnings(diagnostics)
        errors.extend(d for d in diagnostics if d.severity == "error")
        if spec is None:
            continue
        if spec.id in specs:
            first = specs[spec.id]
            errors.append(
                Diagnostic(
                    spec.path,
                    spec.pos.line,
                    spec.pos.col,
                    f"flow id {spec.id!r} is used by both {first.path} and {spec.path}",
                    hint="give each flow file its own flow: id",
                )
            )
            continue
        specs[spec.id] = spec
    return specs, errors


def _spec_or_raise(spec: FlowSpec | None, diagnostics: list[Diagnostic]) -> FlowSpec:
    _log_warnings(diagnostics)
    if spec is None:
        raise FlowError([d for d in diagnostics if d.severity == "error"])
    return spec


def _log_warnings(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        if d.severity == "warning":
            log.warning("%s", d)


def _check(
    text: str, name: str, data: bytes, hooks: Collection[str] | None
) -> tuple[FlowSpec | None, list[Diagnostic]]:
    reader = FlowReader(name, text, hashlib.sha256(data).hexdigest()[:12], hooks)
    spec = reader.read()
    diagnostics = sorted(reader.diagnostics, key=lambda d: (d.line, d.col))
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    return spec, diagnostics
