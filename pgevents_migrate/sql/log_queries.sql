-- The worker's and the CLI's statements on the event log of artifact 5.
--
-- Written as sql/queries.sql is (LogQueue loads them by name). The log is
-- read through the functions of alembic_ops/sql/v5/log_functions.sql; what
-- is here reads their results and keeps the per-group side tables (retry,
-- dead_letter), which only failed events reach.
--
-- A retry claim is (id, attempts), as a claim of the job table is.
--
-- {events} is the log's events, each as e: its rows, or, from artifact 7 on,
-- the events its rows stand for (a statement row stands for up to 1024, with
-- ids from its own up), each row as {row}. An event's row is the one at or
-- below its id by less than 1024.

-- take_lane --
-- Take one more lane of the group for %(owner)s while it holds fewer than its share: (lane, epoch), or no row
SELECT taken_lane, taken_epoch FROM {s}.take_lane(%(group)s, %(owner)s, %(lease)s);

-- renew_lease --
-- Renew the lease of %(lane)s held with %(epoch)s; false once another reader took it
SELECT {s}.renew_lease(%(group)s, %(lane)s, %(epoch)s, %(lease)s);

-- release_lease --
-- Give up the lease of %(lane)s held with %(epoch)s, so that another worker takes it at once
UPDATE {s}.group_cursor
   SET owner = NULL, lease_until = NULL
 WHERE group_name = %(group)s AND lane = %(lane)s AND epoch = %(epoch)s;

-- release_lanes --
-- Give up every lane %(owner)s holds (a worker reconnecting or stopping)
UPDATE {s}.group_cursor
   SET owner = NULL, lease_until = NULL
 WHERE group_name = %(group)s AND owner = %(owner)s;

-- surplus --
-- Whether %(owner)s holds more lanes than its share while a worker waits for one (asked in %(recent)s s)
SELECT coalesce(count(*) FILTER (WHERE c.owner = %(owner)s)
                > ceil(max(g.lanes)::numeric / (count(DISTINCT c.owner) + 1)), false)
  FROM {s}.consumer_group g
  JOIN {s}.group_cursor c
    ON c.group_name = g.name AND c.owner IS NOT NULL AND c.lease_until >= clock_timestamp()
 WHERE g.name = %(group)s AND g.wanted_at > clock_timestamp() - make_interval(secs => %(recent)s);

-- fetch --
-- The next %(page)s events of the lane's cursor (the columns a claim returns)
SELECT id, op, schema_name, table_name, pk::text AS pk, old::text AS old, new::text AS new,
       changed, txid::text AS txid, created_at, 1 AS attempts, NULL::text[] AS done
  FROM {s}.fetch(%(group)s, %(lane)s, %(epoch)s, %(page)s);

-- ack --
-- Acknowledge the lane's open window up to %(id)s, or all of it with %(close)s; false if the lease was lost
SELECT {s}.ack(%(group)s, %(lane)s, %(epoch)s, %(id)s, %(close)s);

-- retry_later --
-- Copy a failed event of the open window to retry, available after %(delay)s seconds
SELECT {s}.retry_later(%(group)s, %(lane)s, %(epoch)s, %(id)s, %(delay)s, %(error)s, %(done)s, 1, %(ordered)s);

-- hold --
-- Copy an ordered event of the open window, unattempted, behind its row's ordered retries
SELECT {s}.retry_later(%(group)s, %(lane)s, %(epoch)s, %(id)s, 0, NULL, '{{}}', 0, true);

-- held_rows --
-- Which of these rows (schema, table, key) have ordered events waiting in the group's retries
SELECT DISTINCT r.schema_name, r.table_name, r.pk::text
  FROM {s}.retry r
 WHERE r.group_name = %(group)s AND r.ordered
   AND (r.schema_name, r.table_name, r.pk) IN
       (SELECT * FROM unnest(%(schemas)s::text[], %(tables)s::text[], %(pks)s::jsonb[]));

-- bury_event --
-- Dead-letter a failed event of the log at once (a first attempt that was the last)
INSERT INTO {s}.dead_letter
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, done, error)
SELECT %(group)s, e.id, e.op, e.schema_name, e.table_name, e.pk, e.old, e.new, e.changed, e.txid,
       e.created_at, 1, %(done)s, %(error)s
  FROM {events}
 WHERE {row}.id > %(id)s - 1024 AND {row}.id <= %(id)s AND e.id = %(id)s
ON CONFLICT (group_name, id) DO NOTHING;

-- claim_retries --
-- Claim up to %(limit)s of the group's due retries, leased for %(lease)s seconds
-- Claimed retries stay in the table (available_at in the future), so the
-- next ordered event of a row stays behind its claimed first one.
UPDATE {s}.retry r
   SET attempts = r.attempts + 1,
       available_at = clock_timestamp() + make_interval(secs => %(lease)s)
  FROM (SELECT q.group_name, q.id
          FROM {s}.retry q
         WHERE q.group_name = %(group)s AND q.available_at <= clock_timestamp()
           -- An ordered event waits for the earlier ordered retries of its row.
           AND NOT (q.ordered AND EXISTS (
                   SELECT FROM {s}.retry p
                    WHERE p.group_name = q.group_name AND p.ordered AND p.table_name = q.table_name
                      AND p.pk = q.pk AND p.schema_name = q.schema_name AND p.id < q.id))
         ORDER BY q.id
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED) AS due
 WHERE r.group_name = due.group_name AND r.id = due.id
RETURNING r.id, r.op, r.schema_name, r.table_name, r.pk::text AS pk, r.old::text AS old,
          r.new::text AS new, r.changed, r.txid::text AS txid, r.created_at, r.attempts,
          NULLIF(r.done, '{{}}') AS done;

-- extend_retries --
-- Renew for %(lease)s seconds the leases of the retry claims still held
UPDATE {s}.retry r
   SET available_at = clock_timestamp() + make_interval(secs => %(lease)s)
  FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
 WHERE r.group_name = %(group)s AND r.id = c.id AND r.attempts = c.attempts;

-- retry_done --
-- A retried event was handled: forget it
DELETE FROM {s}.retry
 WHERE group_name = %(group)s AND id = %(id)s AND attempts = %(attempts)s;

-- retry_again --
-- A retried event failed again: available after %(delay)s seconds
UPDATE {s}.retry
   SET available_at = clock_timestamp() + make_interval(secs => %(delay)s),
       last_error = %(error)s, done = %(done)s
 WHERE group_name = %(group)s AND id = %(id)s AND attempts = %(attempts)s;

-- bury_retry --
-- A retried event used up its attempts: move it to the dead letters
WITH gone AS (
    DELETE FROM {s}.retry
     WHERE group_name = %(group)s AND id = %(id)s AND attempts = %(attempts)s
    RETURNING *)
INSERT INTO {s}.dead_letter
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, done, error)
SELECT group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
       attempts, %(done)s, %(error)s
  FROM gone
ON CONFLICT (group_name, id) DO NOTHING;

-- dead_letters --
-- List the group's oldest %(limit)s dead letters
SELECT id, op, schema_name AS schema, table_name AS "table", pk, attempts, error, failed_at
  FROM {s}.dead_letter
 WHERE group_name = %(group)s
 ORDER BY id
 LIMIT %(limit)s;

-- retry_dead_letters --
-- Put the group's dead letters (all, or the ids listed) back as retries due now, with fresh attempts
WITH gone AS (
    DELETE FROM {s}.dead_letter
     WHERE group_name = %(group)s AND (%(all)s OR id = ANY(%(ids)s::bigint[]))
    RETURNING *)
INSERT INTO {s}.retry AS r
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, available_at, done, last_error)
SELECT group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
       0, clock_timestamp(), done, error
  FROM gone
ON CONFLICT (group_name, id) DO UPDATE
   SET attempts = 0, available_at = excluded.available_at, last_error = excluded.last_error;

-- purge_dead_letters --
-- Delete the group's dead letters older than %(age)s seconds
DELETE FROM {s}.dead_letter
 WHERE group_name = %(group)s AND failed_at < clock_timestamp() - make_interval(secs => %(age)s);

-- counts --
-- The group's pending events (log and retries), dead letters, oldest pending event, NOTIFY queue usage, reader
SELECT {s}.pending(%(group)s) AS pending,
       (SELECT count(*) FROM {s}.dead_letter d WHERE d.group_name = %(group)s) AS failed,
       least((SELECT min(e.created_at)
                FROM {events}, {s}.group_cursor c
               WHERE c.group_name = %(group)s
                 AND c.lane = {s}.lane_of(e.schema_name, e.table_name, e.pk, c.lanes)
                 AND NOT {s}.handled(c, e.txid, e.id)),
             (SELECT min(r.created_at) FROM {s}.retry r WHERE r.group_name = %(group)s))
         AS oldest_pending,
       pg_notification_queue_usage() AS notification_queue_usage,
       (SELECT max(c.updated_at) FROM {s}.group_cursor c WHERE c.group_name = %(group)s) AS last_read,
       coalesce((SELECT bool_or(c.lease_until > clock_timestamp()) FROM {s}.group_cursor c
                  WHERE c.group_name = %(group)s), false) AS reading,
       (SELECT g.skipped_at FROM {s}.consumer_group g WHERE g.name = %(group)s) AS skipped_at;

-- group_exists --
-- Whether the consumer group %(group)s is registered
SELECT EXISTS (SELECT FROM {s}.consumer_group WHERE name = %(group)s);

-- maintain --
-- Rotate the log's partitions unless another worker is at it (alone in its transaction)
-- A group lagging more than %(max_lag)s seconds (0: no bound) is moved to now.
SELECT CASE WHEN pg_try_advisory_xact_lock(hashtext(%(lock)s))
            THEN {s}.rotate(%(switch_events)s, make_interval(secs => %(switch_after)s),
                            make_interval(secs => %(keep)s),
                            CASE WHEN %(max_lag)s > 0 THEN make_interval(secs => %(max_lag)s) END)
       END;

-- release_retries --
-- Give back retry claims whose callbacks never started: due at once, the attempt not counted
UPDATE {s}.retry r
   SET attempts = r.attempts - 1, available_at = clock_timestamp()
  FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS c(id, attempts)
 WHERE r.group_name = %(group)s AND r.id = c.id AND r.attempts = c.attempts;

-- groups --
-- The registered consumer groups, by name
SELECT name FROM {s}.consumer_group ORDER BY name;

-- replay --
-- Deliver again the group's handled events still in the log, chosen by id, time and table (as retries due now)
-- An event not handled yet is left where it is: it comes anyway. done names the
-- callbacks not to run again (all but the one replayed for).
INSERT INTO {s}.retry AS r
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, available_at, done)
SELECT c.group_name, e.id, e.op, e.schema_name, e.table_name, e.pk, e.old, e.new, e.changed, e.txid,
       e.created_at, 0, clock_timestamp(), %(done)s
  FROM {events}, {s}.group_cursor c
 WHERE c.group_name = %(group)s
   AND c.lane = {s}.lane_of(e.schema_name, e.table_name, e.pk, c.lanes)
   AND {s}.handled(c, e.txid, e.id)
   AND e.id >= coalesce(%(from_id)s::bigint, 0)
   AND e.created_at >= coalesce(%(since)s::timestamptz, '-infinity')
   AND (%(schema)s::text IS NULL OR e.schema_name = %(schema)s)
   AND (%(table)s::text IS NULL OR e.table_name = %(table)s)
ON CONFLICT (group_name, id) DO NOTHING;
