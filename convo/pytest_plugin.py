"""pytest plugin: collects conversation-test files (``*.test.yaml``, ``test_*.yaml``), one
test item per YAML document, so a failure names the file, the document and the turn.

Flows are found as ``convo test`` finds them (:class:`~convo.testing.CaseResolver`), with
the configuration of ``$CONVO_CONFIG``, else ``./convo.toml``: pytest has no ``--config``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convo.testing import CaseResolver, ConversationCase, is_test_file, load_cases, run_case


class ConversationFailure(Exception):
    """A conversation test did not go as written."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_test_file(file_path):
        return ConversationFile.from_parent(parent, path=file_path)
    return None


class ConversationFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        # One resolver per file: its documents share the flow catalogs it builds.
        resolver = CaseResolver()
        for case in load_cases(self.path):
            yield ConversationItem.from_parent(self, name=case.title, case=case, resolver=resolver)


class ConversationItem(pytest.Item):
    def __init__(self, *, case: ConversationCase, resolver: CaseResolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.resolver = resolver

    def runtest(self) -> None:
        result = asyncio.run(run_case(self.case, self.resolver))
        if result.failure is not None:
            raise ConversationFailure(result.failure)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConversationFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"conversation {self.case.title}"
