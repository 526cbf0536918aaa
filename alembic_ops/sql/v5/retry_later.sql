-- Copies an event of the open window to retry (available after
-- delay_seconds), so that the cursor can pass it: a failed one (attempts 1),
-- or one that waits unattempted (attempts 0) behind an ordered retry of its
-- row; already there (a page read again after a crash) is fine. False if the
-- lease was lost.
CREATE @or_replace@FUNCTION @schema@.retry_later(
    target_group text, target_lane integer, lease_epoch bigint, failed_id bigint, delay_seconds float8,
    error text, done text[], attempts integer DEFAULT 1, ordered boolean DEFAULT false)
RETURNS boolean
LANGUAGE sql
AS $pgevents$
WITH lease AS (
    SELECT EXISTS (SELECT FROM @schema@.group_cursor g
                    WHERE g.group_name = target_group AND g.lane = target_lane AND g.epoch = lease_epoch) AS held
), copied AS (
    INSERT INTO @schema@.retry AS r
           (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
            attempts, available_at, done, last_error, ordered)
    SELECT target_group, e.id, e.op, e.schema_name, e.table_name, e.pk, e.old, e.new, e.changed, e.txid,
           e.created_at, retry_later.attempts, clock_timestamp() + make_interval(secs => delay_seconds),
           retry_later.done, retry_later.error, retry_later.ordered
-- #include failed_event
    ON CONFLICT (group_name, id) DO NOTHING)
SELECT held FROM lease;
$pgevents$;
