"""``[server]``: the grace period of a stop (``shutdown_grace``, older name
``shutdown_timeout``) and the limits on slow and idle connections."""

from __future__ import annotations

import pytest

from convo.config import ServerSettings, parse_settings
from convo.exceptions import ConfigError


def server(**values: object) -> ServerSettings:
    return parse_settings({"server": values, "lines": []}, source="t.toml", env={}).server


def test_defaults() -> None:
    s = server()
    assert (s.shutdown_grace, s.keepalive_timeout, s.body_timeout, s.max_connections) == (
        10.0, 15.0, 30.0, 1000,
    )  # fmt: skip
    assert s.shutdown_timeout == s.shutdown_grace


def test_shutdown_timeout_is_the_older_name_of_shutdown_grace() -> None:
    assert server(shutdown_timeout=3).shutdown_grace == 3.0
    assert server(shutdown_grace=4).shutdown_grace == 4.0
    with pytest.raises(ConfigError, match=r"\[server\] shutdown_timeout: .*give one"):
        server(shutdown_timeout=3, shutdown_grace=4)


def test_limits_are_checked() -> None:
    assert server(keepalive_timeout=2, body_timeout=1.5, max_connections=7) == ServerSettings(
        keepalive_timeout=2.0, body_timeout=1.5, max_connections=7
    )
    with pytest.raises(ConfigError, match="keepalive_timeout: expected a number greater than 0"):
        server(keepalive_timeout=0)
    with pytest.raises(ConfigError, match="max_connections: expected at least 1"):
        server(max_connections=0)


def test_event_loop_is_auto_asyncio_or_uvloop() -> None:
    import asyncio

    import uvloop

    from convo.web.server import loop_factory

    assert server().event_loop == "auto"
    assert server(event_loop="asyncio").event_loop == "asyncio"
    with pytest.raises(ConfigError, match=r"\[server\] event_loop: expected one of auto, "):
        server(event_loop="trio")
    assert loop_factory("asyncio") is None
    for choice in ("auto", "uvloop"):  # installed with the dev extras, as with `speed`
        factory = loop_factory(choice)
        assert factory is not None
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
        finally:
            loop.close()
