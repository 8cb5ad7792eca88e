"""The SQL of the PostgreSQL store: schema migrations and every statement it runs.

Kept apart from :mod:`convo.store.postgres` (which runs them) so the schema reads in one
place. The tables and columns are the SQLite store's (:mod:`convo.store.sqlite_schema`),
so one row codec (:mod:`convo.store.rows`) serves both; what PostgreSQL adds is what
several processes need:

* ``messages.claimed_by``  the store instance (a number, see
  :mod:`convo.store.postgres_connection`) that claimed a ``sending`` message, so a starting
  process releases only the claims of processes that are gone;
* ``schema_version``       one row: how many :data:`MIGRATIONS` the database has;
* ``rate_buckets``         a token bucket per provider, for every process together
  (:mod:`convo.store.postgres_shared`).

Dedupe is by unique constraints and ``INSERT ... ON CONFLICT DO NOTHING``; the outbox's
claims lock the recipient's head row with ``FOR UPDATE SKIP LOCKED`` (a sender never waits
for another: the recipient is busy, it moves on), and the claim's lease is its
``next_attempt_at``.

Statements are built at import from this module's constants only; values always travel as
``$n`` parameters, each cast to its column's type where PostgreSQL cannot infer it.
"""

# ruff: noqa: S608  (statements from constants only, see above)

from __future__ import annotations

from convo.store.postgres_shared import RATE_BUCKETS

MIGRATIONS: list[str] = [
    # 0 -> 1: everything the SQLite store has at its version 6, in one step.
    """
    CREATE TABLE sessions (
        line text NOT NULL,
        channel text NOT NULL,
        contact text NOT NULL,
        flow text NOT NULL,
        flow_version text NOT NULL,
        step text NOT NULL,
        lang text NOT NULL,
        params text NOT NULL,
        slots text NOT NULL,
        attempts integer NOT NULL,
        status text NOT NULL,
        contact_name text,
        timer_due double precision,
        timer_step text,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (line, channel, contact)
    );
    CREATE INDEX sessions_contact ON sessions (contact);
    CREATE INDEX sessions_timers ON sessions (timer_due)
        WHERE status = 'active' AND timer_due IS NOT NULL;

    CREATE TABLE messages (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        line text NOT NULL,
        contact text NOT NULL,
        channel text NOT NULL,
        text text NOT NULL,
        status text NOT NULL,
        provider text NOT NULL,
        provider_message_id text NOT NULL,
        segments integer NOT NULL,
        price double precision,
        error text,
        media_urls text NOT NULL,
        processed integer NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        metadata text NOT NULL DEFAULT '{}',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at double precision NOT NULL DEFAULT 0,
        requeued_at double precision,
        claimed_by integer NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_created ON messages (created_at);
    CREATE INDEX messages_contact ON messages (contact, created_at);
    -- As in SQLite: lookups by (provider, provider id) in either direction, and inbound
    -- provider ids unique (the third column is '' for every inbound message).
    CREATE UNIQUE INDEX messages_provider_id ON messages (
        provider, provider_message_id, (CASE direction WHEN 'inbound' THEN '' ELSE id END)
    ) WHERE provider_message_id <> '';
    CREATE INDEX messages_outbox ON messages (created_at, seq, next_attempt_at)
        WHERE direction = 'outbound' AND status IN ('queued', 'sending');
    CREATE INDEX messages_outbox_recipient ON messages (line, contact, created_at, seq)
        WHERE direction = 'outbound' AND status IN ('queued', 'sending');
    CREATE INDEX messages_inbox ON messages (created_at, seq)
        WHERE direction = 'inbound' AND processed = 0;
    CREATE INDEX messages_dead ON messages (created_at, seq)
        WHERE direction = 'outbound' AND status = 'dead';

    CREATE TABLE suppressions (
        line text NOT NULL,
        contact text NOT NULL,
        created_at double precision NOT NULL,
        PRIMARY KEY (line, contact)
    );

    CREATE TABLE fragment_groups (
        grp text PRIMARY KEY,
        total integer NOT NULL,
        first_at double precision NOT NULL,
        contact text NOT NULL DEFAULT ''
    );
    CREATE INDEX fragment_groups_first_at ON fragment_groups (first_at);
    CREATE INDEX fragment_groups_contact ON fragment_groups (contact);
    CREATE TABLE fragment_parts (
        grp text NOT NULL REFERENCES fragment_groups (grp) ON DELETE CASCADE,
        part integer NOT NULL,
        text text NOT NULL,
        PRIMARY KEY (grp, part)
    );

    CREATE TABLE seen_tokens (
        namespace text NOT NULL,
        token text NOT NULL,
        seen_at double precision NOT NULL,
        PRIMARY KEY (namespace, token)
    );
    CREATE INDEX seen_tokens_seen_at ON seen_tokens (seen_at);

    CREATE TABLE delivered_parts (
        message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        part_id text NOT NULL,
        PRIMARY KEY (message_id, part_id)
    );

    CREATE TABLE meta (
        name text PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE tombstones (
        digest bytea PRIMARY KEY,
        erased_at double precision NOT NULL
    );
    CREATE INDEX tombstones_erased_at ON tombstones (erased_at);
    """,
    # 1 -> 2: contacts (convo.contacts) by E.164 number, their own fields as JSON text; the
    # admin API's requests by Idempotency-Key with their answer (NULL while in progress),
    # pruned with the seen tokens (SQLite's version 7).
    """
    CREATE TABLE contacts (
        number text PRIMARY KEY,
        name text,
        lang text,
        timezone text,
        fields text NOT NULL DEFAULT '{}'
    );
    CREATE TABLE idempotent_requests (
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        answer text,
        claimed_at double precision NOT NULL
    );
    CREATE INDEX idempotent_requests_claimed_at ON idempotent_requests (claimed_at);
    """,
    # 2 -> 3: providers' rate limits, shared by every process (convo.store.postgres_shared).
    RATE_BUCKETS,
    # 3 -> 4: the web console's reads (convo.store.postgres_reports), as SQLite's version 9:
    # conversations by last change, sessions by flow, messages by status, and the step
    # visits save_turn records.
    """
    CREATE INDEX sessions_updated ON sessions (updated_at, line, channel, contact);
    CREATE INDEX sessions_flow ON sessions (flow, updated_at, step, status);
    CREATE INDEX messages_status ON messages (status, created_at);
    CREATE TABLE step_visits (
        line text NOT NULL,
        channel text NOT NULL,
        contact text NOT NULL,
        flow text NOT NULL,
        step text NOT NULL,
        started_at double precision NOT NULL,
        at double precision NOT NULL
    );
    CREATE INDEX step_visits_flow
        ON step_visits (flow, at, step, line, channel, contact, started_at);
    CREATE INDEX step_visits_contact ON step_visits (contact);
    """,
    # 4 -> 5: the source of every flow version loaded (convo.store.postgres_flow_sources),
    # as SQLite's version 10; step visits pruned by time.
    """
    CREATE TABLE flow_sources (
        flow text NOT NULL,
        version text NOT NULL,
        name text NOT NULL,
        text text NOT NULL,
        saved_at double precision NOT NULL,
        current_at double precision NOT NULL,
        PRIMARY KEY (flow, version)
    );
    CREATE INDEX step_visits_at ON step_visits (at);
    """,
    # 5 -> 6: campaigns and one row per recipient, as SQLite's version 8 (statements in
    # convo.store.postgres_campaigns), plus what several processes need: the store instance
    # that claimed a starting recipient (claimed_by, as messages') and, on the database's
    # clock, when that claim may pass to another process if its own is gone (lease_until).
    """
    CREATE TABLE campaigns (
        id text PRIMARY KEY,
        name text NOT NULL,
        flow text NOT NULL,
        line text NOT NULL,
        channel text NOT NULL,
        params text NOT NULL,
        start_at double precision NOT NULL,
        quiet_from text,
        quiet_to text,
        rate double precision NOT NULL,
        status text NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE INDEX campaigns_created ON campaigns (created_at);
    CREATE TABLE campaign_recipients (
        campaign_id text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        number text NOT NULL,
        row integer NOT NULL,
        timezone text NOT NULL,
        name text,
        language text,
        fields text NOT NULL,
        state text NOT NULL,
        not_before double precision NOT NULL,
        claimed_at double precision,
        started_at double precision,
        message_id text,
        error text,
        claimed_by integer NOT NULL DEFAULT 0,
        lease_until double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (campaign_id, seq)
    );
    -- A number is in a campaign once (skipped rows aside): duplicates are decided here.
    CREATE UNIQUE INDEX campaign_recipients_number ON campaign_recipients (campaign_id, number)
        WHERE state NOT IN ('skipped_invalid', 'skipped_duplicate');
    CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, not_before, seq)
        WHERE state = 'pending';
    CREATE INDEX campaign_recipients_starting ON campaign_recipients (claimed_at)
        WHERE state = 'starting';
    CREATE INDEX campaign_recipients_contact ON campaign_recipients (number);
    """,
    # 6 -> 7: a due timer's claim (CLAIM_DUE_TIMERS): until when the process that claimed
    # it has it to itself.
    "ALTER TABLE sessions ADD COLUMN timer_lease double precision;",
    # 7 -> 8: a turn's lock and its first read in one round trip (OPEN_TURN). A statement
    # sees what was committed when it started, which may be before the lock it waits for
    # is granted; a PL/pgSQL function's query takes its own snapshot, after the PERFORM.
    # Whole rows (sessions, contacts, messages) so the function follows later columns.
    """
    CREATE FUNCTION convo_open_turn(lock_key bigint, p_contact text, p_line text,
                                    p_channel text, p_limit integer)
    RETURNS TABLE (o_session sessions, o_suppressed boolean, o_contact contacts,
                   o_message messages)
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(lock_key);
        RETURN QUERY
        SELECT s, EXISTS (SELECT 1 FROM suppressions AS x
                          WHERE x.line = p_line AND x.contact = p_contact),
               c, m.row
        FROM (SELECT 1) AS one
        LEFT JOIN sessions AS s
            ON s.line = p_line AND s.channel = p_channel AND s.contact = p_contact
        LEFT JOIN contacts AS c ON c.number = p_contact
        LEFT JOIN LATERAL (
            SELECT x AS row FROM messages AS x
            WHERE x.contact = p_contact AND x.line = p_line AND x.channel = p_channel
              AND x.direction = 'inbound' AND x.processed = 0
            ORDER BY x.created_at, x.seq LIMIT p_limit
        ) AS m ON true
        ORDER BY (m.row).created_at, (m.row).seq;
    END
    $$;
    """,
    # 8 -> 9: a conversation's unprocessed texts (the turn's opening read, INBOX_OF) found
    # through an index of their own: through messages_inbox, the opening read filtered
    # every unprocessed text of every conversation, so a backlog made each turn slower.
    """
    CREATE INDEX messages_inbox_of ON messages (contact, line, channel, created_at, seq)
        WHERE direction = 'inbound' AND processed = 0;
    """,
    # 9 -> 10: the outbox's claims (CLAIM_NEXT_BATCH) and outcomes with their claims
    # (RECORD_OUTCOMES) as functions that are planned at each call (plan_cache_mode). A
    # prepared statement keeps the plan made when its connection first ran it: made while
    # the table was small, it joined by scanning all of messages, so each batch cost more
    # as the table grew (4.7 and 7.5 ms a batch at ~5,000 messages, against ~2 ms planned
    # for the table as it is). The head is locked through the primary key, and whether it
    # is still due is checked on the row as locked: a lock through the partial outbox
    # index scanned that whole index for the seq.
    """
    CREATE FUNCTION convo_claim_next(p_lines text[], p_contacts text[],
                                     p_due_by double precision[],
                                     p_lease_end double precision[],
                                     p_now double precision, p_owner integer)
    RETURNS SETOF messages
    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $$
    BEGIN
        RETURN QUERY
        WITH wanted AS (
            SELECT * FROM unnest(p_lines, p_contacts, p_due_by, p_lease_end)
                AS w(line, contact, due_by, lease_end)
        ), due AS (
            SELECT h.seq, w.lease_end FROM wanted AS w CROSS JOIN LATERAL (
                SELECT x.seq, x.direction, x.status, x.next_attempt_at FROM messages AS x
                WHERE x.seq = (
                    SELECT y.seq FROM messages AS y
                    WHERE y.direction = 'outbound' AND y.status IN ('queued', 'sending')
                      AND y.line = w.line AND y.contact = w.contact
                    ORDER BY y.created_at, y.seq LIMIT 1)
                LIMIT 1 FOR UPDATE SKIP LOCKED
            ) AS h
            WHERE h.direction = 'outbound' AND h.status IN ('queued', 'sending')
              AND h.next_attempt_at <= w.due_by
        )
        UPDATE messages AS m SET status = 'sending', attempts = m.attempts + 1,
            next_attempt_at = due.lease_end, updated_at = p_now, claimed_by = p_owner
        FROM due WHERE m.seq = due.seq
        RETURNING m.*;
    END
    $$;
    CREATE FUNCTION convo_record_outcomes(p_status text[], p_forward boolean[],
                                          p_rank integer[], p_provider text[],
                                          p_pid text[], p_segments integer[],
                                          p_price double precision[], p_error text[],
                                          p_stamp double precision[], p_id text[],
                                          p_claim_at double precision[],
                                          p_lease_end double precision[],
                                          p_now double precision, p_owner integer)
    RETURNS TABLE (o_kind text, o_n bigint, o_message messages)
    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $$
    BEGIN
        RETURN QUERY
        WITH a AS (
            SELECT * FROM unnest(p_status, p_forward, p_rank, p_provider, p_pid,
                                 p_segments, p_price, p_error, p_stamp, p_id,
                                 p_claim_at, p_lease_end) WITH ORDINALITY
                AS a(new_status, forward, new_rank, new_provider, new_pid, new_segments,
                     new_price, new_error, stamp, message_id, claim_at, lease_end, n)
        ), target AS (
            SELECT DISTINCT ON (m.line, m.contact) a.*, m.seq AS target_seq
            FROM a JOIN messages AS m ON m.id = a.message_id
            ORDER BY m.line, m.contact, a.n
        ), updated AS (
            UPDATE messages AS m SET
                status = CASE WHEN t.new_status IS NULL OR (t.forward AND t.new_rank <=
                    CASE m.status WHEN 'sending' THEN 1 WHEN 'sent' THEN 2
                        WHEN 'delivered' THEN 3 WHEN 'undelivered' THEN 3
                        WHEN 'failed' THEN 3 WHEN 'dead' THEN 3 ELSE 0 END)
                    THEN m.status ELSE t.new_status END,
                provider = coalesce(t.new_provider, m.provider),
                provider_message_id = coalesce(t.new_pid, m.provider_message_id),
                segments = coalesce(t.new_segments, m.segments),
                price = coalesce(t.new_price, m.price),
                error = coalesce(t.new_error, m.error), updated_at = t.stamp
            FROM target AS t WHERE m.seq = t.target_seq
            RETURNING t.n, t.claim_at, t.lease_end, m.seq, m.line, m.contact, m.status,
                      m AS row
        ), due AS (
            SELECT u.n, h.seq, u.lease_end FROM updated AS u CROSS JOIN LATERAL (
                SELECT x.seq, x.direction, x.status, x.next_attempt_at FROM messages AS x
                WHERE x.seq = (
                    SELECT y.seq FROM messages AS y
                    WHERE y.direction = 'outbound' AND y.status IN ('queued', 'sending')
                      AND y.line = u.line AND y.contact = u.contact AND y.seq <> u.seq
                    ORDER BY y.created_at, y.seq LIMIT 1)
                LIMIT 1 FOR UPDATE SKIP LOCKED
            ) AS h
            WHERE u.claim_at IS NOT NULL AND u.status NOT IN ('queued', 'sending')
              AND h.direction = 'outbound' AND h.status IN ('queued', 'sending')
              AND h.next_attempt_at <= u.claim_at
        ), claimed AS (
            UPDATE messages AS m SET status = 'sending', attempts = m.attempts + 1,
                next_attempt_at = due.lease_end, updated_at = p_now, claimed_by = p_owner
            FROM due WHERE m.seq = due.seq
            RETURNING due.n, m AS row
        )
        SELECT 'updated'::text, updated.n, updated.row FROM updated
        UNION ALL SELECT 'claimed'::text, claimed.n, claimed.row FROM claimed
        UNION ALL SELECT 'later'::text, a.n, NULL::messages FROM a
        WHERE EXISTS (SELECT 1 FROM messages AS x WHERE x.id = a.message_id)
          AND NOT EXISTS (SELECT 1 FROM target WHERE target.n = a.n);
    END
    $$;
    """,
]
"""``MIGRATIONS[i]`` brings a database from schema version ``i`` to ``i + 1``. Append only."""

# -- the schema's version (convo.store.migrations), read and written under the lock ----------

CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL); "
    "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)"
)
READ_VERSION = "SELECT version FROM schema_version"
SET_VERSION = "UPDATE schema_version SET version = $1"
HAS_VERSION_TABLE = "SELECT to_regclass('schema_version') IS NOT NULL"

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
# The types of _MESSAGE_INSERT's columns, for the one statement (INSERT ... SELECT) whose
# parameters PostgreSQL cannot type from a VALUES list.
_MESSAGE_TYPES = (
    *("text",) * 9,
    *("integer", "double precision", "text", "text", "integer"),
    *("double precision", "double precision", "text", "integer"),
    *("double precision", "double precision"),
)


def _params(count: int, start: int = 1) -> str:
    return ", ".join(f"${n}" for n in range(start, start + count))


GET_SESSION = f"SELECT {_SESSION} FROM sessions WHERE line = $1 AND channel = $2 AND contact = $3"
LOAD_TURN = (
    f"SELECT {_SESSION}, EXISTS (SELECT 1 FROM suppressions WHERE line = $1 AND contact = $3) "
    "FROM (SELECT 1) AS one LEFT JOIN sessions ON line = $1 AND channel = $2 AND contact = $3"
)
SESSIONS_OF = f"SELECT {_SESSION} FROM sessions WHERE contact = $1 ORDER BY line, channel"
# A save ends a timer's claim: the timer it leaves is new, or was fired.
UPSERT_SESSION = (
    f"INSERT INTO sessions ({_SESSION}) VALUES ({_params(16)}) "
    "ON CONFLICT (line, channel, contact) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SESSION.split(", ")[3:])
    + ", timer_lease = NULL"
)
# Ordered byte-wise (COLLATE "C"), as SQLite orders text.
SESSION_COUNTS = (
    "SELECT flow, flow_version, step, status, count(*), "
    "count(CASE WHEN status = 'active' THEN timer_due END) FROM sessions "
    "WHERE status <> 'ended' GROUP BY flow, flow_version, step, status "
    'ORDER BY flow COLLATE "C", flow_version COLLATE "C", step COLLATE "C", '
    'status COLLATE "C"'
)
# A step visit (convo.store.postgres_reports): nothing when the stored session is on the
# same flow and step (and has not ended while the new one has not), else the session
# enters its step.
_VISIT = (
    "INSERT INTO step_visits (line, channel, contact, flow, step, started_at, at) "
    "SELECT {line}, {channel}, {contact}, {flow}, {step}, {started}, {at} "
    "WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE line = {line} AND channel = {channel} "
    "AND contact = {contact} AND flow = {flow} AND step = {step} "
    "AND (status <> 'ended' OR {status} = 'ended'))"
)
#: $1..$8: line, channel, contact, flow, step, started_at, at, the new status.
RECORD_VISIT = _VISIT.format(
    line="$1::text", channel="$2::text", contact="$3::text", flow="$4::text",
    step="$5::text", started="$6::double precision", at="$7::double precision",
    status="$8::text",
)  # fmt: skip
# A whole turn's save in one round trip, the common case (one reply or none): its step
# visit (a CTE sees the sessions as they were before the statement: it compares with the
# stored one), the session upserted, the inbound message ($17, NULL for none) marked
# processed, and the reply ($18..$37) logged. One statement: a taken reply id fails all.
_VISIT_IN_SAVE = _VISIT.format(
    line="$1", channel="$2", contact="$3", flow="$4", step="$6", started="$15", at="$16",
    status="$11",
)  # fmt: skip
_SAVE_TURN = (
    f"WITH visited AS ({_VISIT_IN_SAVE} RETURNING 1), "
    f"saved AS ({UPSERT_SESSION} RETURNING 1), "
    "marked AS (UPDATE messages SET processed = 1 "
    "WHERE id = $17 AND direction = 'inbound' AND processed = 0 RETURNING 1) "
)
SAVE_TURN = _SAVE_TURN + "SELECT 1"
SAVE_TURN_WITH_REPLY = (
    _SAVE_TURN + f"INSERT INTO messages ({_MESSAGE_INSERT}) VALUES ({_params(20, start=18)})"
)
DUE_TIMERS = (
    "SELECT line, channel, contact FROM sessions "
    "WHERE status = 'active' AND timer_due IS NOT NULL AND timer_due <= $1 "
    "ORDER BY timer_due, line, channel, contact LIMIT $2"
)
# Due timers claimed by one process (TimerClaims): those not claimed by another process
# whose claim still runs ($1 now, $2 how many, $3 the claim's end). SKIP LOCKED: of two
# processes claiming at once, each passes over the rows the other is claiming, so they
# never get the same timer.
CLAIM_DUE_TIMERS = (
    "UPDATE sessions AS s SET timer_lease = $3 FROM (SELECT line, channel, contact "
    "FROM sessions WHERE status = 'active' AND timer_due IS NOT NULL AND timer_due <= $1 "
    "AND (timer_lease IS NULL OR timer_lease <= $1) "
    "ORDER BY timer_due, line, channel, contact LIMIT $2 FOR UPDATE SKIP LOCKED) AS due "
    "WHERE s.line = due.line AND s.channel = due.channel AND s.contact = due.contact "
    "RETURNING s.line, s.channel, s.contact, s.timer_due"
)

INSERT_MESSAGE = f"INSERT INTO messages ({_MESSAGE_INSERT}) VALUES ({_params(20)})"
# The message's 20 columns, then its tombstone (NULL without a provider id): one statement,
# so an erasure cannot fall between the check and the insert; a taken id, a known inbound
# provider id and a tombstone all mean "duplicate" (no row).
INSERT_INBOUND = (
    f"INSERT INTO messages ({_MESSAGE_INSERT}) SELECT "
    + ", ".join(f"${n}::{t}" for n, t in enumerate(_MESSAGE_TYPES, 1))
    + " WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE digest = $21::bytea) "
    "ON CONFLICT DO NOTHING RETURNING seq"
)
MARK_PROCESSED = (
    "UPDATE messages SET processed = 1 WHERE id = $1 AND direction = 'inbound' AND processed = 0"
)
INBOX = (
    f"SELECT {_MESSAGE} FROM messages WHERE direction = 'inbound' AND processed = 0 "
    "ORDER BY created_at, seq LIMIT $1"
)
# One conversation's inbox (MessageLog.unprocessed_of), through messages_contact.
INBOX_OF = (
    f"SELECT {_MESSAGE} FROM messages WHERE contact = $1 AND line = $2 AND channel = $3 "
    "AND direction = 'inbound' AND processed = 0 ORDER BY created_at, seq LIMIT $4"
)
# What a turn reads first, in one round trip (convo.store.postgres_connection, "What a turn
# reads first"): one row per unprocessed inbound text of the conversation, oldest first (one
# row of NULLs when there is none), each with the session (16 columns, NULLs for none),
# whether the contact is suppressed on the line, and the contact (5 columns, NULLs for none).
# $1 contact, $2 line, $3 channel, $4 limit.
TURN_OPENING = (
    "SELECT "
    + ", ".join(f"s.{c}" for c in _SESSION.split(", "))
    + ", EXISTS (SELECT 1 FROM suppressions AS x WHERE x.line = $2 AND x.contact = $1), "
    "c.number, c.lang, c.name, c.timezone, c.fields, "
    + ", ".join(f"m.{c}" for c in _MESSAGE.split(", "))
    + " FROM (SELECT 1) AS one "
    "LEFT JOIN sessions AS s ON s.line = $2 AND s.channel = $3 AND s.contact = $1 "
    "LEFT JOIN contacts AS c ON c.number = $1 "
    f"LEFT JOIN LATERAL (SELECT {_MESSAGE}, seq FROM messages WHERE contact = $1 AND line = $2 "
    "AND channel = $3 AND direction = 'inbound' AND processed = 0 "
    "ORDER BY created_at, seq LIMIT $4) AS m ON true ORDER BY m.created_at, m.seq"
)
# TURN_OPENING's columns, from convo_open_turn (migration 8), which first takes the lock.
OPEN_TURN = (
    "SELECT "
    + ", ".join(f"(o_session).{c}" for c in _SESSION.split(", "))
    + ", o_suppressed, (o_contact).number, (o_contact).lang, (o_contact).name, "
    "(o_contact).timezone, (o_contact).fields, "
    + ", ".join(f"(o_message).{c}" for c in _MESSAGE.split(", "))
    + " FROM convo_open_turn($5, $1, $2, $3, $4)"
)
_PENDING = "direction = 'outbound' AND status IN ('queued', 'sending')"
OUTBOX = f"SELECT {_MESSAGE} FROM messages WHERE {_PENDING} ORDER BY created_at, seq LIMIT $1"
OUTBOX_DEPTH = f"SELECT count(*) FROM messages WHERE {_PENDING}"
DUE_OUTBOX = (
    f"SELECT {_MESSAGE} FROM messages AS m WHERE {_PENDING} AND next_attempt_at <= $1 "
    "AND NOT EXISTS (SELECT 1 FROM messages AS o "
    "WHERE o.direction = 'outbound' AND o.status IN ('queued', 'sending') "
    "AND o.line = m.line AND o.contact = m.contact "
    "AND (o.created_at, o.seq) < (m.created_at, m.seq)) "
    "ORDER BY created_at, seq LIMIT $2"
)
# The recipient's oldest pending message, if it is due and no other sender is claiming it
# right now (SKIP LOCKED: that sender has the recipient; never take the next one instead,
# which would overtake it), claimed: convo_claim_next (migration 10) for one recipient. The
# lock re-reads the row as committed and the function re-checks it, so of two senders one
# claims and the other finds it not due.
CLAIM_NEXT = (
    f"SELECT {_MESSAGE} FROM convo_claim_next(ARRAY[$1::text], ARRAY[$2::text], "
    "ARRAY[$3::double precision], ARRAY[$4::double precision], $5, $6)"
)
# Batches (convo.store.postgres_batches): one statement for many calls, each parameter an
# array with one element per call.
_INSERT_NAMES = _MESSAGE_INSERT.split(", ")
# INSERT_INBOUND for many messages (and their tombstones, $21), in the order given: of two
# with one provider id, the first is stored. Returns the ids stored.
INSERT_INBOUND_BATCH = (
    f"INSERT INTO messages ({_MESSAGE_INSERT}) SELECT "
    + ", ".join(f"r.{c}" for c in _INSERT_NAMES)
    + " FROM unnest("
    + ", ".join(f"${n}::{t}[]" for n, t in enumerate((*_MESSAGE_TYPES, "bytea"), 1))
    + f") WITH ORDINALITY AS r({_MESSAGE_INSERT}, dead, n) "
    "WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE digest = r.dead) "
    "ORDER BY r.n ON CONFLICT DO NOTHING RETURNING id"
)
# CLAIM_NEXT for many recipients ($1 lines, $2 contacts, $3 due-by times, $4 lease ends;
# $5 now, $6 the owner): the claimed messages.
CLAIM_NEXT_BATCH = f"SELECT {_MESSAGE} FROM convo_claim_next($1, $2, $3, $4, $5, $6)"
# Claims of this store instance, or of one whose presence lock is gone (its process died):
# convo.store.postgres_connection.PRESENCE.
RELEASE_CLAIMS = (
    f"UPDATE messages SET next_attempt_at = $1 WHERE {_PENDING} "
    "AND status = 'sending' AND next_attempt_at > $1 AND (claimed_by = $2 OR claimed_by NOT IN "
    "(SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = $3 "
    "AND objsubid = 2 AND granted AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())))"
)
DEFER_MESSAGE = (
    "UPDATE messages SET status = 'queued', next_attempt_at = $2, error = $3, "
    f"updated_at = $4 WHERE id = $1 AND status = 'sending' RETURNING {_MESSAGE}"
)
_DEAD = "direction = 'outbound' AND status = 'dead'"
COUNT_DEAD = f"SELECT count(*) FROM messages WHERE {_DEAD}"
DEAD_LETTERS = (
    f"SELECT {_MESSAGE} FROM messages WHERE {_DEAD} "
    "ORDER BY created_at DESC, seq DESC LIMIT $1 OFFSET $2"
)
_REQUEUE = (
    "UPDATE messages SET status = 'queued', attempts = 0, next_attempt_at = 0, "
    "requeued_at = $1, updated_at = $2 "
)
REQUEUE_ALL_DEAD = f"{_REQUEUE}WHERE {_DEAD} RETURNING id, created_at, seq"
REQUEUE_DEAD = f"{_REQUEUE}WHERE {_DEAD} AND id = ANY($3::text[]) RETURNING id, created_at, seq"

# MessageStatus.rank, in SQL (keep the two in step; convo_record_outcomes, migration 10, has
# a copy).
_RANK = (
    "CASE status WHEN 'sending' THEN 1 WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 "
    "WHEN 'undelivered' THEN 3 WHEN 'failed' THEN 3 WHEN 'dead' THEN 3 ELSE 0 END"
)
# $2 (forward only) applies $1 (the status) only above the current rank ($3: the new one's).
UPDATE_MESSAGE = (
    "UPDATE messages SET "
    f"status = CASE WHEN $1::text IS NULL OR ($2::boolean AND $3::integer <= {_RANK}) "
    "THEN status ELSE $1::text END, "
    "provider = coalesce($4::text, provider), "
    "provider_message_id = coalesce($5::text, provider_message_id), "
    "segments = coalesce($6::integer, segments), price = coalesce($7::double precision, price), "
    f"error = coalesce($8::text, error), updated_at = $9 WHERE id = $10 RETURNING {_MESSAGE}"
)
# UPDATE_MESSAGE for many messages (a batch never holds one twice): the changed rows.
UPDATE_MESSAGE_BATCH = (
    "UPDATE messages SET "
    f"status = CASE WHEN a.new_status IS NULL OR (a.forward AND a.new_rank <= {_RANK}) "
    "THEN status ELSE a.new_status END, "
    "provider = coalesce(a.new_provider, provider), "
    "provider_message_id = coalesce(a.new_pid, provider_message_id), "
    "segments = coalesce(a.new_segments, segments), price = coalesce(a.new_price, price), "
    "error = coalesce(a.new_error, error), updated_at = a.stamp "
    "FROM unnest($1::text[], $2::boolean[], $3::integer[], $4::text[], $5::text[], "
    "$6::integer[], $7::double precision[], $8::text[], $9::double precision[], $10::text[]) "
    "AS a(new_status, forward, new_rank, new_provider, new_pid, new_segments, new_price, "
    f"new_error, stamp, message_id) WHERE id = a.message_id RETURNING {_MESSAGE}"
)
# record_outcome for many outcomes (convo.store.postgres_batches), in one statement
# (convo_record_outcomes, migration 10): each outcome's UPDATE_MESSAGE (forward only), then,
# for those with a claim time ($11; NULL for none) whose message left the outbox,
# CLAIM_NEXT for the message's recipient. Its parameters are UPDATE_MESSAGE_BATCH's, then
# $11 the claim times, $12 the lease ends; $13 now, $14 the owner. The statement's parts
# share one snapshot, in which the updated message is still pending: the claim passes over
# it by its seq. One message per recipient at most (the first, by the order given); the
# others are answered ``later`` and changed nothing. Rows: ``updated`` or ``claimed`` (n:
# the outcome's place, from 1), then the message.
RECORD_OUTCOMES = (
    "SELECT o_kind, o_n, "
    + ", ".join(f"(o_message).{c}" for c in _MESSAGE.split(", "))
    + " FROM convo_record_outcomes("
    + _params(14)
    + ")"
)
GET_MESSAGE = f"SELECT {_MESSAGE} FROM messages WHERE id = $1"
FIND_MESSAGE = (
    f"SELECT {_MESSAGE} FROM messages "
    "WHERE provider = $1 AND provider_message_id = $2 AND provider_message_id <> '' "
    "ORDER BY direction = 'outbound' DESC, seq DESC LIMIT 1"
)
COUNT_MESSAGES = "SELECT count(*) FROM messages"
# By messages_contact (contact, created_at): one contact's recent messages.
LAST_SENT_TO = (
    "SELECT max(created_at) FROM messages WHERE contact = $1 AND created_at >= $2 "
    "AND line = $3 AND direction = 'outbound' AND status IN ('sent', 'delivered', 'undelivered')"
)
LIST_MESSAGES = f"SELECT {_MESSAGE} FROM messages{{where}} ORDER BY created_at DESC, seq DESC"

SUPPRESS = (
    "INSERT INTO suppressions (line, contact, created_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING"
)
UNSUPPRESS = "DELETE FROM suppressions WHERE line = $1 AND contact = $2"
IS_SUPPRESSED = "SELECT EXISTS (SELECT 1 FROM suppressions WHERE line = $1 AND contact = $2)"

ADD_FRAGMENT_GROUP = (
    "INSERT INTO fragment_groups (grp, total, first_at, contact) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING"
)
# The group's row is locked until the transaction ends: parts of one group arriving at two
# processes at once are counted one after the other, so one of them sees it whole.
LOCK_FRAGMENT_GROUP = "SELECT total FROM fragment_groups WHERE grp = $1 FOR UPDATE"
ADD_FRAGMENT_PART = (
    "INSERT INTO fragment_parts (grp, part, text) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
)
FRAGMENT_PARTS = "SELECT text FROM fragment_parts WHERE grp = $1 ORDER BY part"
DELETE_FRAGMENT_GROUP = "DELETE FROM fragment_groups WHERE grp = $1"
EXPIRED_FRAGMENT_GROUPS = (
    "SELECT grp FROM fragment_groups WHERE first_at < $1 ORDER BY first_at, grp"
)

SEEN = (
    "INSERT INTO seen_tokens (namespace, token, seen_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
WAS_SEEN = "SELECT EXISTS (SELECT 1 FROM seen_tokens WHERE namespace = $1 AND token = $2)"
PRUNE_SEEN = "DELETE FROM seen_tokens WHERE seen_at < $1"
PRUNE_TOMBSTONES = "DELETE FROM tombstones WHERE erased_at < $1"

ADD_META = "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
GET_META = "SELECT value FROM meta WHERE name = $1"
TOMBSTONE_KEY = "tombstone_key"

ADD_DELIVERED_PART = (
    "INSERT INTO delivered_parts (message_id, part_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)
COUNT_DELIVERED_PARTS = "SELECT count(*) FROM delivered_parts WHERE message_id = $1"


def message_filter(
    direction: str | None, status: str | None, number: str | None
) -> tuple[str, list[str]]:
    """The WHERE clause (from fixed fragments only) and its arguments for a message query;
    the page's LIMIT and OFFSET are the next two parameters."""
    terms: list[str] = []
    args: list[str] = []
    for column, value in (("direction", direction), ("status", status), ("contact", number)):
        if value is not None:
            args.append(value)
            terms.append(f"{column} = ${len(args)}")
    where = " WHERE " + " AND ".join(terms) if terms else ""
    return where, args


# -- erasure (PostgresStore.erase_contact) ----------------------------------------------------

ERASE_PROVIDER_COPIES = (
    "SELECT provider, provider_message_id FROM messages "
    "WHERE contact = $1 AND provider_message_id <> '' ORDER BY seq"
)
ERASE_INBOUND_IDS = (
    "SELECT DISTINCT provider, provider_message_id FROM messages "
    "WHERE contact = $1 AND direction = 'inbound' AND provider_message_id <> ''"
)
ADD_TOMBSTONE = (
    "INSERT INTO tombstones (digest, erased_at) VALUES ($1, $2) "
    "ON CONFLICT (digest) DO UPDATE SET erased_at = greatest(tombstones.erased_at, "
    "excluded.erased_at)"
)
ERASE_MESSAGES = "DELETE FROM messages WHERE contact = $1"  # delivered_parts cascade
ERASE_SESSIONS = "DELETE FROM sessions WHERE contact = $1"
ERASE_VISITS = "DELETE FROM step_visits WHERE contact = $1"
COUNT_CONTACT_FRAGMENTS = (
    "SELECT count(*) FROM fragment_parts "
    "WHERE grp IN (SELECT grp FROM fragment_groups WHERE contact = $1)"
)
ERASE_FRAGMENT_GROUPS = "DELETE FROM fragment_groups WHERE contact = $1"  # parts cascade


# -- contacts and idempotent requests (convo.store.postgres_contacts) -------------------------

GET_CONTACT = "SELECT number, lang, name, timezone, fields FROM contacts WHERE number = $1"
# One batch in one statement; (xmax = 0) is true for a row this statement inserted.
PUT_CONTACTS = (
    "INSERT INTO contacts (number, lang, name, timezone, fields) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    "ON CONFLICT (number) DO UPDATE SET lang = excluded.lang, name = excluded.name, "
    "timezone = excluded.timezone, fields = excluded.fields RETURNING (xmax = 0)"
)
DELETE_CONTACT = "DELETE FROM contacts WHERE number = $1"
CLAIM_REQUEST = (
    "INSERT INTO idempotent_requests (key, fingerprint, claimed_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
GET_REQUEST = "SELECT fingerprint, answer FROM idempotent_requests WHERE key = $1"
ANSWER_REQUEST = "UPDATE idempotent_requests SET answer = $1 WHERE key = $2"
DROP_REQUEST = "DELETE FROM idempotent_requests WHERE key = $1"
SEAL_REQUESTS = (
    "UPDATE idempotent_requests SET fingerprint = $1, answer = $2 WHERE starts_with(key, $3)"
)
PRUNE_REQUESTS = "DELETE FROM idempotent_requests WHERE claimed_at < $1"
