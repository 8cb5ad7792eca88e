"""The SQLite store's contacts and idempotent requests (mixed into
:class:`~convo.store.sqlite.SqliteStore`): each method one job on its connection, the
statements in :mod:`convo.store.sqlite_schema` (tables ``contacts`` and
``idempotent_requests``, schema version 7)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Sequence
from typing import TypeVar

import convo.store.sqlite_schema as sql
from convo.exceptions import StoreError
from convo.models import Contact
from convo.store.base import SEALED, StoredRequest
from convo.store.checks import contact_json
from convo.store.sqlite_connection import Job, transaction

T = TypeVar("T")


class SqliteContacts:
    """:class:`~convo.store.base.Contacts` and :class:`~convo.store.base.IdempotentRequests`
    over the store's connection (``_run``, provided by the store)."""

    def _run(self, what: str, job: Job[T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    def _brief(self, what: str, job: Job[T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    async def get_contact(self, number: str) -> Contact | None:
        def job(cx: sqlite3.Connection) -> Contact | None:
            row = cx.execute(sql.GET_CONTACT, (number,)).fetchone()
            if row is None:
                return None
            try:
                fields = json.loads(row[4])
            except ValueError as exc:
                raise StoreError(f"contact {number}: fields are not JSON ({exc})") from None
            return Contact(row[0], row[1], row[2], row[3], fields)

        return await self._brief("get contact", job)

    async def put_contact(self, contact: Contact) -> bool:
        return await self.put_contacts([contact]) == 1

    async def put_contacts(self, contacts: Sequence[Contact]) -> int:
        rows = [(c.number, c.lang, c.name, c.timezone, contact_json(c)) for c in contacts]

        def job(cx: sqlite3.Connection) -> int:
            new = set()
            with transaction(cx):
                for row in rows:
                    if cx.execute(sql.CONTACT_EXISTS, (row[0],)).fetchone() is None:
                        new.add(row[0])
                    cx.execute(sql.PUT_CONTACT, row)
            return len(new)

        return await self._run("put contacts", job)

    async def delete_contact(self, number: str) -> bool:
        def job(cx: sqlite3.Connection) -> bool:
            with transaction(cx):
                return cx.execute(sql.DELETE_CONTACT, (number,)).rowcount > 0

        return await self._run("delete contact", job)

    async def claim_request(self, key: str, fingerprint: str, now: float) -> StoredRequest | None:
        def job(cx: sqlite3.Connection) -> StoredRequest | None:
            with transaction(cx):
                if cx.execute(sql.CLAIM_REQUEST, (key, fingerprint, now)).rowcount == 1:
                    return None
                found, answer = cx.execute(sql.GET_REQUEST, (key,)).fetchone()
                return StoredRequest(found, answer)

        return await self._run("claim request", job)

    async def settle_request(self, key: str, answer: str | None) -> None:
        def job(cx: sqlite3.Connection) -> None:
            with transaction(cx):
                if answer is None:
                    cx.execute(sql.DROP_REQUEST, (key,))
                else:
                    cx.execute(sql.ANSWER_REQUEST, (answer, key))

        await self._run("settle request", job)

    async def seal_requests(self, prefix: str, answer: str) -> int:
        def job(cx: sqlite3.Connection) -> int:
            with transaction(cx):
                return cx.execute(sql.SEAL_REQUESTS, (SEALED, answer, prefix, prefix)).rowcount

        return await self._run("seal requests", job)
