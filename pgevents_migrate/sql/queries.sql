-- The worker's and the CLI's statements on the queue tables of one event schema.
--
-- Each query follows a line "-- query_name --" and a one-line comment saying
-- what it does; EventQueue loads them by name. Comment lines are for readers
-- and are not sent to the server. {s} is the event schema and the other
-- {names} are identifiers too, filled in with psycopg2.sql: a literal brace is
-- written twice ({{}}). Parameters are psycopg2's %(name)s or %s: a literal
-- percent sign is written twice.
--
-- A claim is (id, attempts): a claim increments attempts, so a worker whose
-- lease ran out can no longer acknowledge, renew or fail an event that another
-- worker has claimed since.

-- claim --
-- Claim up to %(limit)s available events of the listed tables, leased for %(lease)s seconds
WITH claimed AS (
    SELECT id
      FROM {s}.event
     WHERE (available_at IS NULL OR available_at <= clock_timestamp())
       AND (schema_name, table_name) IN
           (SELECT * FROM unnest(%(schemas)s::text[], %(tables)s::text[]))
     ORDER BY id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE {s}.event e
   SET attempts = e.attempts + 1,
       available_at = clock_timestamp() + make_interval(secs => %(lease)s)
 WHERE e.id = ANY(ARRAY(SELECT id FROM claimed))
RETURNING e.id, e.op, e.schema_name, e.table_name, e.pk::text, e.old::text, e.new::text,
          e.changed, e.txid::text AS txid, e.created_at, e.attempts,
          NULLIF(e.done, '{{}}') AS done;

-- extend_leases --
-- Renew for %(lease)s seconds the leases of the claims still held and not locked by another statement
-- ``e.id = ANY(ids)`` lets the planner reach the claimed rows through the
-- primary key: joined to ``unnest`` alone it picks a hash join over a
-- sequential scan of the whole log, once per batch (the same in the
-- statements below).
-- Renewals skip rows another statement has locked (the worker's own
-- acknowledgement deleting them): they never wait on it, so the two cannot
-- deadlock by locking overlapping claims in different orders.
UPDATE {s}.event
   SET available_at = clock_timestamp() + make_interval(secs => %(lease)s)
 WHERE id = ANY(ARRAY(
       SELECT e.id
         FROM {s}.event e, unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
        WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = c.id AND e.attempts = c.attempts
          FOR UPDATE OF e SKIP LOCKED));

-- delete_claims --
-- Acknowledge handled claims by deleting their events
DELETE FROM {s}.event e
 USING unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
 WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = c.id AND e.attempts = c.attempts;

-- archive_claims --
-- Acknowledge handled claims by moving their events to processed
WITH done AS (
    DELETE FROM {s}.event e
     USING unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
     WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = c.id AND e.attempts = c.attempts
    RETURNING e.*
)
INSERT INTO {s}.processed
       (id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts)
SELECT id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts
  FROM done;

-- release_claims --
-- Give back claims whose callbacks never started: available at once, the attempt not counted
UPDATE {s}.event e
   SET attempts = e.attempts - 1, available_at = NULL
  FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
 WHERE e.id = ANY(%(ids)s::bigint[]) AND e.id = c.id AND e.attempts = c.attempts;

-- retry_later --
-- Make a failed claim's event available again after a delay: (delay, error, done, id, attempts)
UPDATE {s}.event
   SET available_at = clock_timestamp() + make_interval(secs => %s), last_error = %s, done = %s
 WHERE id = %s AND attempts = %s;

-- bury --
-- Move a claim's event that used up its attempts to the dead letters: (id, attempts, done, error)
WITH d AS (DELETE FROM {s}.event WHERE id = %s AND attempts = %s RETURNING *)
INSERT INTO {s}.dead_letter
       (id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, done, error)
SELECT id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, %s, %s
  FROM d;

-- retry_dead_letters --
-- Put dead letters back in the queue with fresh attempts: (all of them, or these ids)
WITH d AS (DELETE FROM {s}.dead_letter WHERE %s OR id = ANY(%s) RETURNING *)
INSERT INTO {s}.event
       (id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, done, last_error)
       OVERRIDING SYSTEM VALUE
SELECT id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, 0, done, error
  FROM d;

-- notify --
-- Send an empty notification on the channel %s
SELECT pg_notify(%s, '');

-- dead_letters --
-- List the oldest %s dead letters
SELECT id, op, schema_name AS schema, table_name AS "table", pk, attempts, error, failed_at
  FROM {s}.dead_letter
 ORDER BY id
 LIMIT %s;

-- purge --
-- Delete up to %s rows of {table} (processed or dead_letter) whose {timestamp} is older than %s seconds
DELETE FROM {s}.{table}
 WHERE ctid = ANY(ARRAY(
       SELECT ctid
         FROM {s}.{table}
        WHERE {timestamp} < clock_timestamp() - make_interval(secs => %s)
        LIMIT %s));

-- counts --
-- Count pending events and dead letters; the oldest pending event; the NOTIFY queue's usage
SELECT (SELECT count(*) FROM {s}.event) AS pending,
       (SELECT count(*) FROM {s}.dead_letter) AS failed,
       (SELECT min(created_at) FROM {s}.event) AS oldest_pending,
       pg_notification_queue_usage() AS notification_queue_usage;

-- sleep --
-- Register this connection as a sleeping listener (writers NOTIFY); set the sleeper flag
-- Each change of the sleeper rows also sets the sleeper flag (artifact 4 on)
-- from them, in one implicit transaction under a lock that serializes the
-- changes: every statement of it sees the ones before (the same in wake and
-- forget_stale_sleepers). The flag is the low bit of the flags sequence
-- (artifact 6 on; rotate() sets the other bits under the same lock), else the
-- sleeping sequence (artifacts 4 and 5, where the division leaves 0).
LOCK TABLE {s}.sleeper IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO {s}.sleeper (backend_pid) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;
SELECT setval(flag, pg_sequence_last_value(flag) / 2 * 2 + (EXISTS (SELECT FROM {s}.sleeper))::integer)
  FROM coalesce(to_regclass(%s), to_regclass(%s)) AS flag
 WHERE flag IS NOT NULL;

-- wake --
-- Unregister this connection as a sleeping listener; set the sleeper flag
LOCK TABLE {s}.sleeper IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM {s}.sleeper WHERE backend_pid = pg_backend_pid();
SELECT setval(flag, pg_sequence_last_value(flag) / 2 * 2 + (EXISTS (SELECT FROM {s}.sleeper))::integer)
  FROM coalesce(to_regclass(%s), to_regclass(%s)) AS flag
 WHERE flag IS NOT NULL;

-- forget_stale_sleepers --
-- Drop the sleeper rows of connections that no longer exist; set the sleeper flag
LOCK TABLE {s}.sleeper IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM {s}.sleeper
 WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL);
SELECT setval(flag, pg_sequence_last_value(flag) / 2 * 2 + (EXISTS (SELECT FROM {s}.sleeper))::integer)
  FROM coalesce(to_regclass(%s), to_regclass(%s)) AS flag
 WHERE flag IS NOT NULL;
