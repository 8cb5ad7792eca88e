"""Intake: from a parsed inbound message to a turn running in the background.

The inbound path keeps one promise: **an inbound message is stored before its webhook is
acknowledged**, and its turn runs right after, in a task the app tracks so shutdown waits
for it. :meth:`Intake.accept` is what a webhook awaits before answering 200: it stores the
message (``engine.receive``; a duplicate is dropped there, so a provider retry gets one
reply) and starts the turn in a tracked task that hands the replies it queued to the
outbox. A turn that fails (the store cannot write: locked, read-only, full) leaves its
message unprocessed; :meth:`Intake.recover` processes every such message, which is also
how a crash between acknowledgement and turn is repaired. The runtime runs it at start and
again after turns failed (:meth:`Intake.redeliver`), so an acknowledged text is answered
once the store takes writes again, without a restart.

When no turn of the conversation runs or waits and the store can (SQLite), storing the
text and loading its turn are one store job (``Engine.receive_held``): the conversation's
lock is taken before the text is stored and handed to the turn's task, which releases it
(its done callback does, should the task be cancelled before it ran).

Within this process a message id is *claimed* before it is stored, and recovery skips
claimed ids, so a message is never turned twice by a webhook and by recovery at once.

On a store several processes share (``store.shared``), a process may die between
acknowledging a text and turning it, while the others run on: nobody restarts to recover
it. So there :meth:`Intake.redeliver` also looks every ``sweep`` seconds for texts left
unprocessed longer than ``sweep``, whoever stored them, and turns them. A text another
process is turning right then is not turned twice: the engine re-reads it under the
conversation's lock (:meth:`convo.flow.engine.Engine.process`).

Long texts that arrive in parts (``InboundMessage.part``, e.g. Vonage ``concat-ref``) are
joined through the store's ``Fragments``, so parts may arrive in any order and at different
server processes. When all parts are in, the joined text becomes one message whose provider
message id is the first part's. :meth:`Intake.expire_fragments` delivers what arrived of
groups older than ``concat_timeout``. A group is *finished* (its parts' ids recorded as seen,
so a late provider retry of a part is ignored, then the group forgotten) only after the
joined text is stored: a crash or a store error anywhere in between leaves the group, and
the provider's retry of the part (or the expiry) joins it again, which stores the text or
finds it a duplicate. Nothing is marked seen before it is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convo.exceptions import MalformedWebhook, StoreError
from convo.models import InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from convo.flow.engine import HeldTurn
    from convo.runtime import TurnEngine

log = logging.getLogger("convo.intake")


class Intake:
    """Stores inbound messages and runs their turns in tracked background tasks.

    A new intake turns nothing of its own until :meth:`recover` has caught up once (the
    runtime runs it at start): messages it stores meanwhile are turned by that recovery,
    after the older messages a previous process left, so each contact's texts are turned
    in the order they arrived. The same holds after a failed turn, until recovery has
    turned its message."""

    def __init__(
        self,
        engine: TurnEngine,
        *,
        on_replies: Callable[[list[OutboundMessage]], None] = lambda replies: None,
        concat_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.on_replies = on_replies  # the outbox's submit: send what the turn queued
        self.concat_timeout = concat_timeout
        self.clock = clock
        self._claimed: set[str] = set()
        # The engine's receive_held (convo.flow.engine.Engine), when it has one: a text's
        # turn loaded in the store job that stores it.
        self._receive_held: (
            Callable[[InboundMessage], Awaitable[tuple[bool, HeldTurn | None]]] | None
        ) = getattr(engine, "receive_held", None)
        self._process_held: Callable[
            [InboundMessage, HeldTurn], Awaitable[list[OutboundMessage]]
        ] = getattr(engine, "process")  # noqa: B009 - one with receive_held takes a HeldTurn
        self._tasks: set[asyncio.Task[list[OutboundMessage]]] = set()
        self._failed = asyncio.Event()  # a turn failed since recovery last looked
        # Messages may be stored that no turn has taken (a previous process died, or a turn
        # failed): until recovery has caught up, a new message is stored but its turn is
        # left to recovery, which turns each contact's messages oldest first. Otherwise a
        # text resent after a crash could be turned before the older one it follows.
        self._backlog = True
        self._held = asyncio.Event()  # a message was left to recovery since it last looked

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def accept(self, message: InboundMessage) -> asyncio.Task[list[OutboundMessage]] | None:
        """Store ``message`` (joining parts first) and start its turn. Returns the turn's
        task, or None for a duplicate, a part still waiting for the others, or a message
        left to recovery (while older messages may wait unprocessed: after a start, or a
        failed turn; recovery turns them oldest first). Store errors propagate (the webhook
        must not be acknowledged then)."""
        group: _Group | None = None
        if message.part is not None and message.part.total > 1:
            group = await self._join(message)
            if group is None:
                return None
            message = group.message
        self._claimed.add(message.id)
        held: HeldTurn | None = None
        try:
            if self._receive_held is not None and group is None:
                fresh, held = await self._receive_held(message)
            else:
                fresh = await self.engine.receive(message)
        except BaseException:
            self._claimed.discard(message.id)
            raise
        if group is not None:
            await self._finish(group)
        if not fresh:
            self._claimed.discard(message.id)
            log.info(
                "duplicate inbound %s from %s ignored",
                message.provider_message_id,
                message.provider,
            )
            return None
        if self._backlog:
            if held is not None:
                held.release()
            self._claimed.discard(message.id)
            self._held.set()
            return None
        return self._start(message, held)

    def _start(
        self, message: InboundMessage, held: HeldTurn | None = None
    ) -> asyncio.Task[list[OutboundMessage]]:
        task = asyncio.create_task(self._turn(message, held), name=f"convo-turn-{message.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if held is not None:
            # A task cancelled before its first step never runs its own ``finally``.
            task.add_done_callback(lambda _: held.release())
        return task

    async def _turn(
        self, message: InboundMessage, held: HeldTurn | None = None
    ) -> list[OutboundMessage]:
        try:
            if held is not None:
                replies = await self._process_held(message, held)
            else:
                replies = await self.engine.process(message)
        except Exception:
            # The message stays unprocessed in the store: recovery turns it (redeliver).
            log.exception("turn for inbound %s (%s) failed", message.id, message.key)
            self._failed.set()
            self._backlog = True
            return []
        finally:
            self._claimed.discard(message.id)
        self.on_replies(replies)
        return replies

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the turns in flight; True when all finished."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def cancel(self) -> None:
        """Cancel the turns still running (their messages stay unprocessed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def redeliver(
        self, retry: float, max_retry: float = 300.0, *, sweep: float | None = None
    ) -> None:
        """Recover now, then again each time turns failed, forever (a supervised loop).
        After a recovery in which a turn failed, wait ``retry`` seconds, doubling up to
        ``max_retry`` while they keep failing, so a store that is down, or a message whose
        turn always fails, is not retried in a tight loop. With ``sweep`` (a shared store:
        module docstring), also every ``sweep`` seconds turn the messages unprocessed for
        longer than that. Store errors of recovery itself propagate (the supervisor
        restarts this with its own backoff)."""
        delay = retry
        older_than: float | None = None
        while True:
            self._failed.clear()
            await self.recover(older_than)
            if self._failed.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_retry)
                older_than = None
                continue
            delay = retry
            try:
                await asyncio.wait_for(self._failed.wait(), sweep)
            except TimeoutError:  # a sweep: what another process left behind
                assert sweep is not None
                older_than = self.clock() - sweep
                continue
            older_than = None
            await asyncio.sleep(retry)  # the store that just failed is likely still down

    async def recover(self, older_than: float | None = None) -> int:
        """Turn every stored-but-unprocessed inbound message not claimed by this process
        (after a crash, or after failed turns), oldest first; returns how many were
        started. ``older_than`` (a time, ``clock()``'s) leaves the messages stored after it
        alone. It stops at the first turn that fails (the store is likely down): the rest
        wait for the next recovery."""
        tried: set[str] = set()
        self._failed.clear()
        if self._backlog:  # messages left to recovery come first, however new
            older_than = None
        while True:
            self._held.clear()
            batch = [
                r
                for r in await self.store.unprocessed_inbound(limit=500)
                if r.id not in tried
                and r.id not in self._claimed
                and (older_than is None or r.created_at <= older_than)
            ]
            if not batch:
                if self._held.is_set():
                    continue  # left to us while we looked: look again
                self._backlog = False  # caught up: new messages are turned as they come
                return len(tried)
            for record in batch:
                tried.add(record.id)
                if record.id in self._claimed:
                    continue  # a webhook of this process took it meanwhile
                self._claimed.add(record.id)
                message = record.to_inbound()
                # One at a time, in order: a person's earlier message is answered first.
                # (_turn logs a failure and leaves the message for the next recovery.)
                await self._start(message)
                if self._failed.is_set():
                    return len(tried)

    # -- long texts in parts ----------------------------------------------------------------

    async def _join(self, message: InboundMessage) -> _Group | None:
        """Keep one part; the group once all its parts are in, else None."""
        part = message.part
        assert part is not None
        namespace = f"part:{message.provider}"
        if message.provider_message_id and await self.store.was_seen(
            namespace, message.provider_message_id
        ):
            return None  # a provider retry of a part of a text already stored
        key = json.dumps(
            [message.provider, message.line, message.sender, message.channel, part.ref, part.total]
        )
        payload = json.dumps({"id": message.provider_message_id, "text": message.text})
        now = self.clock()
        try:
            parts = await self.store.add_fragment(
                key, part.index, part.total, payload, now, contact=message.sender
            )
        except ValueError as exc:
            raise MalformedWebhook(f"{message.provider}: {exc}") from None
        return None if parts is None else _Group.joined(key, parts, now)

    async def _finish(self, group: _Group) -> None:
        """The group's text is stored: remember its parts' ids (late retries are dropped)
        and forget the group. A store error here loses nothing (the group stays, and is
        joined again, as a duplicate, by a retry or the expiry), so it is only logged."""
        try:
            for part_id in group.part_ids:
                await self.store.seen(f"part:{group.message.provider}", part_id, self.clock())
            await self.store.finish_fragments(group.key)
        except StoreError as exc:
            log.warning("long text %s stored; its parts stay until later: %s", group.key, exc)

    async def expire_fragments(self) -> int:
        """Deliver what arrived of long texts whose first part is older than the timeout.
        Store errors propagate (the groups stay, for the next run)."""
        now = self.clock()
        count = 0
        for key, parts in await self.store.expired_fragments(now - self.concat_timeout):
            try:
                group = _Group.joined(key, parts, now)
            except (ValueError, KeyError, TypeError):  # not what _join wrote: never deliverable
                log.exception("long text %r cannot be read; its parts are dropped", key)
                await self.store.finish_fragments(key)
                continue
            if parts:
                log.warning(
                    "long text %s incomplete after %ss; delivering %d part(s)",
                    key,
                    self.concat_timeout,
                    len(parts),
                )
                await self.accept(group.message)
                count += 1
            await self._finish(group)
        return count


@dataclass(frozen=True, slots=True)
class _Group:
    """A long text whose parts are all in (or expired): the store's name for the group,
    the joined message, and the provider ids of its parts."""

    key: str
    message: InboundMessage
    part_ids: tuple[str, ...]

    @classmethod
    def joined(cls, key: str, parts: list[str], now: float) -> _Group:
        provider, line, sender, channel, _ref, _total = json.loads(key)
        pieces = [json.loads(p) for p in parts]
        message = InboundMessage(
            line=line,
            sender=sender,
            text="".join(p["text"] for p in pieces),
            channel=channel,
            provider=provider,
            provider_message_id=pieces[0]["id"] if pieces else "",
            received_at=now,
        )
        return cls(key, message, tuple(p["id"] for p in pieces if p["id"]))
