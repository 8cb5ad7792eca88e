"""The SQL of the SQLite store: schema migrations and every statement it runs.

Kept apart from :mod:`convo.store.sqlite` (which runs them) so the schema can be read in one
place. Every statement is a constant string, so sqlite3 prepares it once per connection.

Tables (version 10):

* ``sessions``        one row per conversation, keyed by (line, channel, contact);
                      ``params``/``slots`` are JSON text.
* ``messages``        the message log; ``seq`` (the rowid) breaks ties in ``created_at`` and
                      ``processed`` marks inbound messages a turn has handled; the outbox
                      keeps its retry state in ``attempts``, ``next_attempt_at`` and
                      ``requeued_at`` (version 5).
* ``suppressions``    (line, contact) pairs that opted out.
* ``fragment_groups`` / ``fragment_parts``  parts of long inbound texts (version 2); a
                      group's ``contact`` is the number that sent it (version 4).
* ``seen_tokens``     tokens already seen, to drop provider retries (version 2).
* ``delivered_parts`` the parts of long outbound texts delivered so far (version 3).
* ``tombstones``      keyed hashes of erased inbound messages' provider ids, with when they
                      were erased, so a replay stays a duplicate (version 6).
* ``meta``            the store's own values by name: the tombstone key (version 6).
* ``contacts``        contacts by number, their ``fields`` JSON text (version 7).
* ``idempotent_requests``  admin API requests by Idempotency-Key, with their answer
                      (version 7).
* ``campaigns`` / ``campaign_recipients``  campaigns and their recipients (version 8;
                      statements in :mod:`convo.store.sqlite_campaigns`).
* ``step_visits``     each step a conversation entered, and when (version 9; written by
                      ``save_turn``, read by ``convo.store.sqlite_reports``).
* ``flow_sources``    the text of each flow version loaded (version 10;
                      ``convo.store.sqlite_flow_sources``).

Partial indexes keep the hot queues small: the outbox indexes hold only queued/sending
messages (in order, with when each is due, and by recipient), the dead-letter index only
dead ones, the inbox index only unprocessed inbound ones, the timer index only active
sessions with a timer. Queries repeat the index's WHERE terms word for word, which is what
lets SQLite's planner use a partial index.
"""

# Statements are built at import from this module's constants only (column lists, fixed
# WHERE fragments); values always travel as ? parameters. Hence, for the whole file:
# ruff: noqa: S608

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 0 -> 1: sessions, message log, suppressions.
    """
    CREATE TABLE sessions (
        line TEXT NOT NULL,
        channel TEXT NOT NULL,
        contact TEXT NOT NULL,
        flow TEXT NOT NULL,
        flow_version TEXT NOT NULL,
        step TEXT NOT NULL,
        lang TEXT NOT NULL,
        params TEXT NOT NULL,
        slots TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        status TEXT NOT NULL,
        contact_name TEXT,
        timer_due REAL,
        timer_step TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (line, channel, contact)
    ) WITHOUT ROWID;
    CREATE INDEX sessions_contact ON sessions (contact);
    CREATE INDEX sessions_timers ON sessions (timer_due)
        WHERE status = 'active' AND timer_due IS NOT NULL;

    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        line TEXT NOT NULL,
        contact TEXT NOT NULL,
        channel TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        provider TEXT NOT NULL,
        provider_message_id TEXT NOT NULL,
        segments INTEGER NOT NULL,
        price REAL,
        error TEXT,
        media_urls TEXT NOT NULL,
        processed INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX messages_created ON messages (created_at);
    CREATE INDEX messages_contact ON messages (contact, created_at);
    -- One index, two jobs: delivery reports find messages by (provider, provider id) in
    -- either direction (the index's prefix), and a provider retrying an inbound webhook
    -- cannot make a second message: the third column is '' for every inbound message, so
    -- inbound provider ids are unique, and the message's own id for an outbound one, so a
    -- provider reusing an id for two messages we sent is not an error.
    CREATE UNIQUE INDEX messages_provider_id ON messages (
        provider, provider_message_id, (CASE direction WHEN 'inbound' THEN '' ELSE id END)
    ) WHERE provider_message_id != '';
    CREATE INDEX messages_outbox ON messages (created_at)
        WHERE direction = 'outbound' AND status IN ('queued', 'sending');
    CREATE INDEX messages_inbox ON messages (created_at)
        WHERE direction = 'inbound' AND processed = 0;

    CREATE TABLE suppressions (
        line TEXT NOT NULL,
        contact TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (line, contact)
    ) WITHOUT ROWID;
    """,
    # 1 -> 2: long-text fragments and poll-loop tokens.
    """
    CREATE TABLE fragment_groups (
        grp TEXT PRIMARY KEY,
        total INTEGER NOT NULL,
        first_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX fragment_groups_first_at ON fragment_groups (first_at);
    CREATE TABLE fragment_parts (
        grp TEXT NOT NULL REFERENCES fragment_groups (grp) ON DELETE CASCADE,
        part INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (grp, part)
    ) WITHOUT ROWID;

    CREATE TABLE seen_tokens (
        namespace TEXT NOT NULL,
        token TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (namespace, token)
    ) WITHOUT ROWID;
    CREATE INDEX seen_tokens_seen_at ON seen_tokens (seen_at);
    """,
    # 2 -> 3: provider metadata of outbound messages (JSON), e.g. gdpr_consent_ref; the
    # delivered parts of long texts (per-part receipts).
    """
    ALTER TABLE messages ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE delivered_parts (
        message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        part_id TEXT NOT NULL,
        PRIMARY KEY (message_id, part_id)
    ) WITHOUT ROWID;
    """,
    # 3 -> 4: a fragment group's contact is a column of its own (erasure finds groups by
    # it). Before, erasure read it from the group's name, which then was always a JSON
    # array with the sender's number third; groups kept from then get their contact from
    # there, once. CASE keeps json_type, which raises on malformed JSON, away from names
    # that are not JSON; such a group gets '' (nobody) and expires as before.
    """
    ALTER TABLE fragment_groups ADD COLUMN contact TEXT NOT NULL DEFAULT '';
    UPDATE fragment_groups SET contact = json_extract(grp, '$[2]')
        WHERE CASE WHEN json_valid(grp) THEN json_type(grp, '$[2]') END = 'text';
    CREATE INDEX fragment_groups_contact ON fragment_groups (contact);
    """,
    # 4 -> 5: the outbox's retry state, kept with the message so a restart neither forgets
    # a backoff nor hammers a provider that is down (``attempts``, ``next_attempt_at``,
    # ``requeued_at``: see MessageRecord); an index of each recipient's pending messages in
    # order (claim_next, and due_outbound's check that a message is its recipient's
    # oldest); the outbox index carries when each message is due, so the sweep skips those
    # in backoff without reading their rows; an index of the dead letters.
    """
    ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN requeued_at REAL;
    CREATE INDEX messages_outbox_recipient ON messages (line, contact, created_at)
        WHERE direction = 'outbound' AND status IN ('queued', 'sending');
    DROP INDEX messages_outbox;
    CREATE INDEX messages_outbox ON messages (created_at, seq, next_attempt_at)
        WHERE direction = 'outbound' AND status IN ('queued', 'sending');
    CREATE INDEX messages_dead ON messages (created_at)
        WHERE direction = 'outbound' AND status = 'dead';
    """,
    # 5 -> 6: the tombstones erasure leaves (convo.store.tombstones): a keyed hash of each
    # erased inbound message's (provider, provider id) and when it was erased, pruned with
    # the seen tokens; ``meta`` keeps the store's own values, here the tombstone key, which
    # SqliteStore.open creates (in Python, from the OS's CSPRNG) once for the file.
    """
    CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE tombstones (
        digest BLOB PRIMARY KEY,
        erased_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX tombstones_erased_at ON tombstones (erased_at);
    """,
    # 6 -> 7: contacts (convo.contacts) by E.164 number, their own fields as JSON text; the
    # admin API's requests by Idempotency-Key with their answer (NULL while in progress),
    # pruned with the seen tokens.
    """
    CREATE TABLE contacts (
        number TEXT PRIMARY KEY,
        name TEXT,
        lang TEXT,
        timezone TEXT,
        fields TEXT NOT NULL DEFAULT '{}'
    ) WITHOUT ROWID;
    CREATE TABLE idempotent_requests (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        answer TEXT,
        claimed_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotent_requests_claimed_at ON idempotent_requests (claimed_at);
    """,
    # 7 -> 8: campaigns and one row per recipient (convo.store.sqlite_campaigns has their
    # statements): a number is in a campaign once, skipped rows aside; the pending
    # recipients in the order they are due; the claims a crash may leave ("starting");
    # a contact's rows, for erasure.
    """
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        flow TEXT NOT NULL,
        line TEXT NOT NULL,
        channel TEXT NOT NULL,
        params TEXT NOT NULL,
        start_at REAL NOT NULL,
        quiet_from TEXT,
        quiet_to TEXT,
        rate REAL NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX campaigns_created ON campaigns (created_at);
    CREATE TABLE campaign_recipients (
        campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        number TEXT NOT NULL,
        row INTEGER NOT NULL,
        timezone TEXT NOT NULL,
        name TEXT,
        language TEXT,
        fields TEXT NOT NULL,
        state TEXT NOT NULL,
        not_before REAL NOT NULL,
        claimed_at REAL,
        started_at REAL,
        message_id TEXT,
        error TEXT,
        PRIMARY KEY (campaign_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX campaign_recipients_number ON campaign_recipients (campaign_id, number)
        WHERE state NOT IN ('skipped_invalid', 'skipped_duplicate');
    CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, not_before, seq)
        WHERE state = 'pending';
    CREATE INDEX campaign_recipients_starting ON campaign_recipients (claimed_at)
        WHERE state = 'starting';
    CREATE INDEX campaign_recipients_contact ON campaign_recipients (number);
    """,
    # 8 -> 9: the web console's reads (convo.store.sqlite_reports): conversations by last
    # change, and the step visits save_turn records, counted per flow over a period.
    """
    -- (the sessions' key is in every index of theirs: pages come from the index alone)
    CREATE INDEX sessions_updated ON sessions (updated_at);
    CREATE INDEX sessions_flow ON sessions (flow, updated_at, step, status);
    -- the outbox page lists and counts messages by status
    CREATE INDEX messages_status ON messages (status, created_at);
    CREATE TABLE step_visits (
        line TEXT NOT NULL,
        channel TEXT NOT NULL,
        contact TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        started_at REAL NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX step_visits_flow
        ON step_visits (flow, at, step, line, channel, contact, started_at);
    CREATE INDEX step_visits_contact ON step_visits (contact);
    """,
    # 9 -> 10: the source of every flow version loaded (convo.store.sqlite_flow_sources),
    # so a conversation keeps its version across a restart; step visits pruned by time.
    """
    CREATE TABLE flow_sources (
        flow TEXT NOT NULL,
        version TEXT NOT NULL,
        name TEXT NOT NULL,
        text TEXT NOT NULL,
        saved_at REAL NOT NULL,
        current_at REAL NOT NULL,
        PRIMARY KEY (flow, version)
    ) WITHOUT ROWID;
    CREATE INDEX step_visits_at ON step_visits (at);
    """,
]
"""``MIGRATIONS[i]`` brings a file from schema version ``i`` to ``i + 1``. Append only."""


def statements(script: str) -> list[str]:
    """Split a migration script into single statements (``sqlite3`` executes one at a
    time inside our own transaction; ``executescript`` would commit first).

    Uses SQLite's own tokenizer (``complete_statement``), so a ``;`` inside a string or a
    trigger body does not split. Raises ValueError on an unterminated last statement.
    """
    found: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                found.append(pending.strip())
            pending = ""
    if _has_code(pending.removesuffix(";")):
        raise ValueError(f"migration ends in an unterminated statement: {pending.strip()!r}")
    return found


def _has_code(text: str) -> bool:
    lines = (line.split("--", 1)[0] for line in text.splitlines())
    return any(line.strip(" \t;") for line in lines)


SESSION_COLUMNS = _SESSION = (
    "line, channel, contact, flow, flow_version, step, lang, params, slots, attempts, "
    "status, contact_name, timer_due, timer_step, created_at, updated_at"
)
MESSAGE_COLUMNS = _MESSAGE = (
    "id, direction, line, contact, channel, text, status, provider, provider_message_id, "
    "segments, price, error, media_urls, created_at, updated_at, metadata, "
    "attempts, next_attempt_at, requeued_at"
)
_MESSAGE_INSERT = (
    "id, direction, line, contact, channel, text, status, provider, provider_message_id, "
    "segments, price, error, media_urls, processed, created_at, updated_at, metadata, "
    "attempts, next_attempt_at, requeued_at"
)

GET_SESSION = f"SELECT {_SESSION} FROM sessions WHERE line = ? AND channel = ? AND contact = ?"
SESSIONS_OF = f"SELECT {_SESSION} FROM sessions WHERE contact = ? ORDER BY line, channel"
UPSERT_SESSION = (
    f"INSERT INTO sessions ({_SESSION}) VALUES ({', '.join('?' * 16)}) "
    "ON CONFLICT (line, channel, contact) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SESSION.split(", ")[3:])
)
SESSION_COUNTS = (
    "SELECT flow, flow_version, step, status, count(*), "
    "count(CASE WHEN status = 'active' THEN timer_due END) FROM sessions "
    "WHERE status != 'ended' GROUP BY flow, flow_version, step, status "
    "ORDER BY flow, flow_version, step, status"
)
DUE_TIMERS = (
    "SELECT line, channel, contact FROM sessions "
    "WHERE status = 'active' AND timer_due IS NOT NULL AND timer_due <= ? "
    "ORDER BY timer_due, line, channel, contact LIMIT ?"
)

INSERT_MESSAGE = f"INSERT INTO messages ({_MESSAGE_INSERT}) VALUES ({', '.join('?' * 20)})"
# An inbound message: a taken id and a known inbound provider id both mean "duplicate" (no
# conflict target), as its tombstone does. Two forms (SqliteStore's _add_inbound):
# - alone (autocommit), one statement: the 20 columns, then the tombstone (NULL without a
#   provider id), so an erasure cannot fall between the tombstone check and the insert (the
#   WHERE also keeps SQLite from reading ON CONFLICT as a join's ON);
# - inside a batch's transaction, which keeps the two together, TOMBSTONED then a plain
#   INSERT ... VALUES: there INSERT ... SELECT needs a statement journal, which copied each
#   of the seven pages the insert wrote (4% of the thread's instructions, 50 turns in flight).
INSERT_INBOUND_CHECKED = (
    f"INSERT INTO messages ({_MESSAGE_INSERT}) SELECT {', '.join('?' * 20)} "
    "WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE digest = ?) ON CONFLICT DO NOTHING"
)
INSERT_INBOUND = (
    f"INSERT INTO messages ({_MESSAGE_INSERT}) VALUES ({', '.join('?' * 20)}) "
    "ON CONFLICT DO NOTHING"
)
TOMBSTONED = "SELECT 1 FROM tombstones WHERE digest = ?"
MARK_PROCESSED = (
    "UPDATE messages SET processed = 1 WHERE id = ? AND direction = 'inbound' AND processed = 0"
)
INBOX = (
    f"SELECT {_MESSAGE} FROM messages WHERE direction = 'inbound' AND processed = 0 "
    "ORDER BY created_at, seq LIMIT ?"
)
# One conversation's inbox (MessageLog.unprocessed_of), through messages_contact.
INBOX_OF = (
    f"SELECT {_MESSAGE} FROM messages WHERE contact = ? AND line = ? AND channel = ? "
    "AND direction = 'inbound' AND processed = 0 ORDER BY created_at, seq LIMIT ?"
)
OUTBOX = (
    f"SELECT {_MESSAGE} FROM messages "
    "WHERE direction = 'outbound' AND status IN ('queued', 'sending') "
    "ORDER BY created_at, seq LIMIT ?"
)
# The outbox's queue (MessageLog.due_outbound, claim_next). Every term repeats the partial
# indexes' WHERE word for word.
_PENDING = "direction = 'outbound' AND status IN ('queued', 'sending')"
_OLDER = (
    "SELECT 1 FROM messages AS o "
    "WHERE o.direction = 'outbound' AND o.status IN ('queued', 'sending') "
    "AND o.line = m.line AND o.contact = m.contact "
    "AND (o.created_at, o.seq) < (m.created_at, m.seq)"
)
OUTBOX_DEPTH = f"SELECT count(*) FROM messages WHERE {_PENDING}"
DUE_OUTBOX = (
    f"SELECT {_MESSAGE} FROM messages AS m WHERE {_PENDING} AND next_attempt_at <= ? "
    f"AND NOT EXISTS ({_OLDER}) ORDER BY created_at, seq LIMIT ?"
)
CLAIM_NEXT = (
    "UPDATE messages SET status = 'sending', attempts = attempts + 1, "
    "next_attempt_at = :until, updated_at = :clock "
    f"WHERE seq = (SELECT seq FROM messages WHERE {_PENDING} "
    "AND line = :line AND contact = :contact ORDER BY created_at, seq LIMIT 1) "
    f"AND next_attempt_at <= :now RETURNING {_MESSAGE}"
)
RELEASE_CLAIMS = (
    f"UPDATE messages SET next_attempt_at = ? WHERE {_PENDING} "
    "AND status = 'sending' AND next_attempt_at > ?"
)
DEFER_MESSAGE = (
    "UPDATE messages SET status = 'queued', next_attempt_at = :until, error = :error, "
    f"updated_at = :clock WHERE id = :id AND status = 'sending' RETURNING {_MESSAGE}"
)
_DEAD = "direction = 'outbound' AND status = 'dead'"
COUNT_DEAD = f"SELECT count(*) FROM messages WHERE {_DEAD}"
DEAD_LETTERS = (
    f"SELECT {_MESSAGE} FROM messages WHERE {_DEAD} "
    "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
)
_REQUEUE = (
    "UPDATE messages SET status = 'queued', attempts = 0, next_attempt_at = 0, "
    "requeued_at = :now, updated_at = :clock "
)
REQUEUE_ALL_DEAD = f"{_REQUEUE}WHERE {_DEAD} RETURNING id, created_at, seq"
# :ids is a JSON array of message ids: one statement for any number of them.
REQUEUE_DEAD = (
    f"{_REQUEUE}WHERE {_DEAD} AND id IN (SELECT value FROM json_each(:ids)) "
    "RETURNING id, created_at, seq"
)

# MessageStatus.rank, in SQL (keep the two in step).
_RANK = (
    "CASE status WHEN 'sending' THEN 1 WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 "
    "WHEN 'undelivered' THEN 3 WHEN 'failed' THEN 3 WHEN 'dead' THEN 3 ELSE 0 END"
)
# :forward = 1 applies :status only above the current rank (one atomic statement).
UPDATE_MESSAGE = (
    "UPDATE messages SET "
    f"status = CASE WHEN :status IS NULL OR (:forward AND :rank <= {_RANK}) "
    "THEN status ELSE :status END, "
    "provider = coalesce(:provider, provider), "
    "provider_message_id = coalesce(:pid, provider_message_id), "
    "segments = coalesce(:segments, segments), price = coalesce(:price, price), "
    f"error = coalesce(:error, error), updated_at = :now WHERE id = :id RETURNING {_MESSAGE}"
)
GET_MESSAGE = f"SELECT {_MESSAGE} FROM messages WHERE id = ?"
FIND_MESSAGE = (
    f"SELECT {_MESSAGE} FROM messages "
    "WHERE provider = ? AND provider_message_id = ? AND provider_message_id != '' "
    "ORDER BY direction = 'outbound' DESC, seq DESC LIMIT 1"
)
COUNT_MESSAGES = "SELECT count(*) FROM messages"
# By messages_contact (contact, created_at): one contact's recent messages.
LAST_SENT_TO = (
    "SELECT max(created_at) FROM messages WHERE contact = ? AND created_at >= ? "
    "AND line = ? AND direction = 'outbound' AND status IN ('sent', 'delivered', 'undelivered')"
)
LIST_MESSAGES = (
    f"SELECT {_MESSAGE} FROM messages{{where}} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
)

SUPPRESS = (
    "INSERT INTO suppressions (line, contact, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)
UNSUPPRESS = "DELETE FROM suppressions WHERE line = ? AND contact = ?"
IS_SUPPRESSED = "SELECT 1 FROM suppressions WHERE line = ? AND contact = ?"

ADD_FRAGMENT_GROUP = (
    "INSERT INTO fragment_groups (grp, total, first_at, contact) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
FRAGMENT_TOTAL = "SELECT total FROM fragment_groups WHERE grp = ?"
ADD_FRAGMENT_PART = (
    "INSERT INTO fragment_parts (grp, part, text) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)
FRAGMENT_PARTS = "SELECT text FROM fragment_parts WHERE grp = ? ORDER BY part"
DELETE_FRAGMENT_GROUP = "DELETE FROM fragment_groups WHERE grp = ?"
EXPIRED_FRAGMENT_GROUPS = (
    "SELECT grp FROM fragment_groups WHERE first_at < ? ORDER BY first_at, grp"
)

SEEN = "INSERT INTO seen_tokens (namespace, token, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
WAS_SEEN = "SELECT 1 FROM seen_tokens WHERE namespace = ? AND token = ?"
PRUNE_SEEN = "DELETE FROM seen_tokens WHERE seen_at < ?"
PRUNE_TOMBSTONES = "DELETE FROM tombstones WHERE erased_at < ?"

# The first value stored under a name stays: a key is created once (a later one is dropped).
ADD_META = "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING"
GET_META = "SELECT value FROM meta WHERE name = ?"
TOMBSTONE_KEY = "tombstone_key"


def message_filter(
    direction: str | None, status: str | None, number: str | None
) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause (from fixed fragments only) and its arguments for a message query."""
    terms: list[str] = []
    args: list[str] = []
    for column, value in (("direction", direction), ("status", status), ("contact", number)):
        if value is not None:
            terms.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


# -- erasure (SqliteStore.erase_contact) -------------------------------------------------------

ERASE_PROVIDER_COPIES = (
    "SELECT provider, provider_message_id FROM messages "
    "WHERE contact = ? AND provider_message_id != '' ORDER BY seq"
)
ERASE_INBOUND_IDS = (
    "SELECT DISTINCT provider, provider_message_id FROM messages "
    "WHERE contact = ? AND direction = 'inbound' AND provider_message_id != ''"
)
# Erased again (a tombstone pruned, the id back, erased anew): the later time counts.
ADD_TOMBSTONE = (
    "INSERT INTO tombstones (digest, erased_at) VALUES (?, ?) "
    "ON CONFLICT (digest) DO UPDATE SET erased_at = max(erased_at, excluded.erased_at)"
)
ERASE_MESSAGES = "DELETE FROM messages WHERE contact = ?"  # delivered_parts cascade
ADD_DELIVERED_PART = "INSERT OR IGNORE INTO delivered_parts (message_id, part_id) VALUES (?, ?)"
COUNT_DELIVERED_PARTS = "SELECT count(*) FROM delivered_parts WHERE message_id = ?"
ERASE_SESSIONS = "DELETE FROM sessions WHERE contact = ?"
COUNT_CONTACT_FRAGMENTS = (
    "SELECT count(*) FROM fragment_parts "
    "WHERE grp IN (SELECT grp FROM fragment_groups WHERE contact = ?)"
)
# Their parts go by cascade (foreign_keys is on).
ERASE_FRAGMENT_GROUPS = "DELETE FROM fragment_groups WHERE contact = ?"


# -- contacts and idempotent requests (convo.store.sqlite_contacts) ---------------------------

GET_CONTACT = "SELECT number, lang, name, timezone, fields FROM contacts WHERE number = ?"
CONTACT_EXISTS = "SELECT 1 FROM contacts WHERE number = ?"
PUT_CONTACT = (
    "INSERT INTO contacts (number, lang, name, timezone, fields) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (number) DO UPDATE SET lang = excluded.lang, name = excluded.name, "
    "timezone = excluded.timezone, fields = excluded.fields"
)
DELETE_CONTACT = "DELETE FROM contacts WHERE number = ?"
CLAIM_REQUEST = (
    "INSERT INTO idempotent_requests (key, fingerprint, claimed_at) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
GET_REQUEST = "SELECT fingerprint, answer FROM idempotent_requests WHERE key = ?"
ANSWER_REQUEST = "UPDATE idempotent_requests SET answer = ? WHERE key = ?"
DROP_REQUEST = "DELETE FROM idempotent_requests WHERE key = ?"
SEAL_REQUESTS = (  # substr, not LIKE: a prefix may hold % or _
    "UPDATE idempotent_requests SET fingerprint = ?, answer = ? WHERE substr(key, 1, length(?)) = ?"
)
PRUNE_REQUESTS = "DELETE FROM idempotent_requests WHERE claimed_at < ?"
