"""The PostgreSQL store's contacts and idempotent requests (mixed into
:class:`~convo.store.postgres.PostgresStore`): each method one job on the store's pool,
the statements in :mod:`convo.store.postgres_schema` (tables ``contacts`` and
``idempotent_requests``, schema version 2).

A batch of contacts is one statement (``unnest`` of one array per column), so an import
costs a round trip per batch, not per row. Text PostgreSQL cannot hold (U+0000) is stored
as U+FFFD, as everywhere in this store.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import convo.store.postgres_schema as sql
from convo.exceptions import StoreError
from convo.models import Contact
from convo.store.base import SEALED, StoredRequest
from convo.store.checks import contact_json
from convo.store.postgres_connection import Job

T = TypeVar("T")
Connection = Any  # asyncpg's connection, or the pool's proxy of one


def contact_of(number: str, row: tuple[Any, ...]) -> Contact | None:
    """The contact of a row of ``number, lang, name, timezone, fields`` (None when the
    number is NULL: no such contact); StoreError when its fields are not JSON."""
    if row[0] is None:
        return None
    try:
        fields = json.loads(row[4])
    except ValueError as exc:
        raise StoreError(f"contact {number}: fields are not JSON ({exc})") from None
    return Contact(row[0], row[1], row[2], row[3], fields)


class PostgresContacts:
    """:class:`~convo.store.base.Contacts` and :class:`~convo.store.base.IdempotentRequests`
    over the store's pool (``_run``, provided by the store)."""

    def _run(self, what: str, job: Job[T], *, transaction: bool = False) -> Awaitable[T]:
        raise NotImplementedError  # PostgresStore's

    async def get_contact(self, number: str) -> Contact | None:
        async def job(cx: Connection) -> Contact | None:
            row = await cx.fetchrow(sql.GET_CONTACT, _text(number))
            return None if row is None else contact_of(number, tuple(row))

        return await self._run("get contact", job)

    async def put_contact(self, contact: Contact) -> bool:
        return await self.put_contacts([contact]) == 1

    async def put_contacts(self, contacts: Sequence[Contact]) -> int:
        # A number given twice: the later one stays (one statement cannot update a row twice).
        latest = {c.number: c for c in contacts}
        columns: list[list[str | None]] = [[], [], [], [], []]
        for c in latest.values():
            row = (c.number, c.lang, c.name, c.timezone, contact_json(c))
            for column, value in zip(columns, row, strict=True):
                column.append(_text(value))
        if not latest:
            return 0

        async def job(cx: Connection) -> int:
            return sum(1 for r in await cx.fetch(sql.PUT_CONTACTS, *columns) if r[0])

        return await self._run("put contacts", job)

    async def delete_contact(self, number: str) -> bool:
        async def job(cx: Connection) -> bool:
            status: str = await cx.execute(sql.DELETE_CONTACT, _text(number))
            return status != "DELETE 0"

        return await self._run("delete contact", job)

    async def claim_request(self, key: str, fingerprint: str, now: float) -> StoredRequest | None:
        key = _text(key)

        async def job(cx: Connection) -> StoredRequest | None:
            if await cx.fetchval(sql.CLAIM_REQUEST, key, fingerprint, now) is not None:
                return None
            row = await cx.fetchrow(sql.GET_REQUEST, key)
            return StoredRequest(row[0], row[1])

        return await self._run("claim request", job, transaction=True)

    async def settle_request(self, key: str, answer: str | None) -> None:
        key = _text(key)

        async def job(cx: Connection) -> None:
            if answer is None:
                await cx.execute(sql.DROP_REQUEST, key)
            else:
                await cx.execute(sql.ANSWER_REQUEST, _text(answer), key)

        await self._run("settle request", job)

    async def seal_requests(self, prefix: str, answer: str) -> int:
        async def job(cx: Connection) -> int:
            status = await cx.execute(sql.SEAL_REQUESTS, SEALED, _text(answer), _text(prefix))
            return int(status.split()[-1])

        return await self._run("seal requests", job)


def _text(value: str | None) -> Any:
    return value.replace("\0", "\ufffd") if value is not None and "\0" in value else value
