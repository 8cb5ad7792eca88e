"""pytest plugin: collects conversation-test files (``*.test.yaml``, ``test_*.yaml``), one
test item per YAML document, so a failure names the file, the document and the turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convo.testing import ConversationCase, is_test_file, load_cases, run_case


class ConversationFailure(Exception):
    """A conversation test did not go as written."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_test_file(file_path):
        return ConversationFile.from_parent(parent, path=file_path)
    return None


class ConversationFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        for case in load_cases(self.path):
            yield ConversationItem.from_parent(self, name=case.title, case=case)


class ConversationItem(pytest.Item):
    def __init__(self, *, case: ConversationCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        result = asyncio.run(run_case(self.case))
        if result.failure is not None:
            raise ConversationFailure(result.failure)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConversationFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"conversation {self.case.title}"
