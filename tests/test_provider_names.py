"""Provider names are checked when the configuration is read: a name becomes a URL path
segment and part of the names of files the server writes, so only ``[a-z0-9_]+`` is
accepted, and the error names the file and the section."""

from __future__ import annotations

import pytest

from convo.config import parse_settings
from convo.exceptions import ConfigError


def test_a_provider_name_with_a_path_is_refused_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(
            {"providers": {"x/../../etc": {"type": "sandbox"}}}, source="convo.toml", env={}
        )
    message = str(info.value)
    assert message.startswith('convo.toml: [providers."x/../../etc"]')
    assert "a-z, 0-9 and _" in message


@pytest.mark.parametrize("name", ["Vonage", "my-vonage", "x.y", ""])
def test_provider_names_are_lowercase_words(name: str) -> None:
    with pytest.raises(ConfigError, match="a provider name may only hold"):
        parse_settings({"providers": {name: {"type": "sandbox"}}}, source="c.toml", env={})
