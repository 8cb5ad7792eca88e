"""The supervisor: failed loops are logged and restarted, closing stops them all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web

from convo.supervisor import Supervisor
from tests.conftest import until

LOGGER = "convo.supervisor"


def restart_delays(caplog: pytest.LogCaptureFixture, name: str) -> list[float]:
    """The backoffs the supervisor logged for loop ``name``, in order."""
    delays = []
    for record in caplog.records:
        if record.name == LOGGER and record.msg == "loop %s failed; restarting in %.2fs":
            assert isinstance(record.args, tuple)
            loop, delay = record.args
            if loop == name:
                assert isinstance(delay, float)
                delays.append(delay)
    return delays


async def test_a_body_raising_any_exception_is_logged_with_traceback_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise KeyError("no such thing")
        await asyncio.Event().wait()  # then stays up

    caplog.set_level(logging.INFO, LOGGER)
    async with Supervisor(backoff=0.01) as supervisor:
        supervisor.run("worker", body)
        await until(lambda: runs == 3)
        await until(lambda: supervisor.status() == {"worker": True})
    failures = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(failures) == 2
    for record in failures:
        assert "worker" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "KeyError: 'no such thing'" in caplog.text  # the traceback itself
    assert supervisor.status() == {"worker": False}  # closed


async def test_a_tick_that_raises_is_logged_and_the_next_tick_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks % 2:
            raise RuntimeError(f"tick {ticks} broke")

    caplog.set_level(logging.ERROR, LOGGER)
    async with Supervisor() as supervisor:
        supervisor.every("timers", 0.01, tick)
        await until(lambda: ticks >= 6)
        assert supervisor.status() == {"timers": True}  # failed ticks do not kill it
    failed = [r for r in caplog.records if "timers: tick failed" in r.getMessage()]
    assert len(failed) >= 3
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in failed)
    assert restart_delays(caplog, "timers") == []  # the loop itself was never restarted


async def test_backoff_doubles_up_to_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    failures = 0

    async def body() -> None:
        nonlocal failures
        failures += 1
        raise ValueError("always")

    caplog.set_level(logging.ERROR, LOGGER)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with Supervisor(backoff=0.01, max_backoff=0.04) as supervisor:
        supervisor.run("flaky", body)
        await until(lambda: failures >= 10)
        elapsed = loop.time() - start
    delays = restart_delays(caplog, "flaky")[:10]
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04]
    # Uncapped, the first nine waits alone would take 0.01 * (2**9 - 1) = 5.1 s.
    assert elapsed < 4.0


async def test_backoff_starts_over_after_the_body_ran_fine_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs == 4:
            await asyncio.sleep(0.3)  # well over reset_after
        if runs <= 4:
            raise OSError(f"run {runs}")
        await asyncio.Event().wait()

    caplog.set_level(logging.ERROR, LOGGER)
    async with Supervisor(backoff=0.01, max_backoff=1.0, reset_after=0.1) as supervisor:
        supervisor.run("net", body)
        await until(lambda: runs == 5)
    assert restart_delays(caplog, "net") == [0.01, 0.02, 0.04, 0.01]


async def test_status_is_false_while_waiting_out_a_backoff() -> None:
    failed = asyncio.Event()

    async def body() -> None:
        failed.set()
        raise ConnectionError("down")

    async with Supervisor(backoff=30.0) as supervisor:
        supervisor.run("down", body)
        await failed.wait()
        await asyncio.sleep(0)
        assert supervisor.status() == {"down": False}


async def test_aclose_cancels_every_loop_and_waits_for_them() -> None:
    started = asyncio.Event()
    cleaned: list[str] = []

    async def body(name: str) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            cleaned.append(name)
            with anyio.CancelScope(shield=True):  # a clean-up that itself awaits
                await asyncio.sleep(0.05)
            cleaned.append(f"{name} cleaned")

    async def forever() -> None:
        await body("forever")

    async def tick() -> None:
        await body("tick")

    supervisor = Supervisor()
    supervisor.run("forever", forever)  # added before start: begins at start
    supervisor.start()
    supervisor.every("tick", 10.0, tick)
    await until(lambda: supervisor.status() == {"forever": True, "tick": True})
    await started.wait()
    await supervisor.aclose()
    # Both finally blocks ran, shielded awaits included, before aclose returned.
    assert sorted(cleaned) == ["forever", "forever cleaned", "tick", "tick cleaned"]
    assert supervisor.status() == {"forever": False, "tick": False}
    await supervisor.aclose()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        supervisor.run("late", forever)


async def test_a_body_that_returns_has_finished_and_is_not_restarted() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    async with Supervisor(backoff=0.01) as supervisor:
        supervisor.run("recover", once)
        await until(lambda: "recover" not in supervisor.status())
        await asyncio.sleep(0.05)
    assert runs == 1


async def test_start_in_one_task_and_close_in_another() -> None:
    supervisor = Supervisor()
    running = asyncio.Event()
    cleaned = asyncio.Event()

    async def body() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    async def start() -> None:
        supervisor.start()
        supervisor.run("loop", body)

    await asyncio.create_task(start())  # that task has ended when the loop runs
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.create_task(supervisor.aclose())
    assert cleaned.is_set()
    assert supervisor.status() == {"loop": False}


async def test_an_aiohttp_cleanup_ctx_may_start_and_close_it_in_different_tasks() -> None:
    cleaned = asyncio.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    async def supervised(app: web.Application) -> AsyncIterator[None]:
        async with Supervisor() as supervisor:
            supervisor.run("body", body)
            supervisor.every("tick", 0.01, tick)
            yield

    app = web.Application()
    app.cleanup_ctx.append(supervised)
    runner = web.AppRunner(app)
    setup = asyncio.create_task(runner.setup())  # runs the start-up half
    await setup
    await until(lambda: ticks >= 2)
    cleanup = asyncio.create_task(runner.cleanup())  # the clean-up half, in another task
    await cleanup
    assert cleaned.is_set()
    assert setup is not cleanup


def test_backoff_must_be_positive_and_not_over_its_cap() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Supervisor(backoff=0)
    with pytest.raises(ValueError, match="backoff"):
        Supervisor(backoff=2.0, max_backoff=1.0)
    with pytest.raises(ValueError, match="interval"):
        Supervisor().every("x", 0, lambda: asyncio.sleep(0))
