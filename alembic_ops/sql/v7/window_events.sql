-- The events a row of the log stands for: itself, or one per key value of a
-- statement row (keyed_by names the key column), key i (from 1) with id
-- id + i - 1 and pk {keyed_by: value}. One SELECT, so that the planner
-- inlines it into the query that calls it.
CREATE @or_replace@FUNCTION @schema@.expand(e @schema@.event)
RETURNS SETOF @schema@.event
LANGUAGE sql
IMMUTABLE
AS $pgevents$
SELECT e.id + k.n - 1, e.gen, e.op, e.schema_name, e.table_name,
       CASE WHEN e.keyed_by IS NULL THEN e.pk ELSE jsonb_build_object(e.keyed_by, k.value) END,
       e.old, e.new, e.changed, e.txid, e.created_at, NULL::text, NULL::smallint
  FROM jsonb_array_elements(CASE WHEN e.keyed_by IS NULL THEN '[null]'::jsonb ELSE e.pk END)
       WITH ORDINALITY AS k(value, n);
$pgevents$;

-- How many of row e's events have ids above after and belong to c's lane:
-- counted from its ids alone while the group has one lane (no need to read
-- a statement row's keys).
CREATE @or_replace@FUNCTION @schema@.events_after(e @schema@.event, after bigint, c @schema@.group_cursor)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
AS $pgevents$
SELECT CASE WHEN c.lanes = 1 THEN greatest(least(coalesce(e.events, 1), e.id + coalesce(e.events, 1) - 1 - after), 0)
            ELSE (SELECT count(*) FROM @schema@.expand(e) AS y
                   WHERE y.id > after AND @schema@.lane_of(y.schema_name, y.table_name, y.pk, c.lanes) = c.lane) END;
$pgevents$;

-- Up to page_size events of the window (c.done_snapshot, window] after
-- c.last_id, in id order: those of transactions that took their xid after the
-- done snapshot (ids above done_id), merged with those of transactions open in
-- it that the window sees finished (ids above their floors); those of c's lane.
-- Each branch takes, in id order, the rows holding such events (a statement
-- row's first keys may be behind the cursor: its id is above after - 1024)
-- until they hold page_size of them; only statement rows are expanded (a row
-- of one event is its event). So a page shorter than page_size still means
-- the window is done.
CREATE @or_replace@FUNCTION @schema@.window_events(c @schema@.group_cursor, window_snapshot pg_snapshot, page_size integer)
RETURNS SETOF @schema@.event
LANGUAGE plpgsql
STABLE
AS $pgevents$
DECLARE
    late xid8[];
    late_floor bigint;
    after bigint := greatest(c.last_id, c.done_id);
    late_after bigint;
BEGIN
    SELECT array_agg(u.x), min(u.f)
      INTO late, late_floor
      FROM unnest(c.open_xids, c.open_floors) AS u(x, f)
     WHERE pg_visible_in_snapshot(u.x, window_snapshot);
    late_after := greatest(c.last_id, late_floor);
    RETURN QUERY
    WITH held AS (
        (SELECT q.r, sum(q.n) OVER (ORDER BY q.id) - q.n AS before, after AS above FROM (
             SELECT e AS r, e.id, @schema@.events_after(e, after, c) AS n FROM @schema@.event e
              WHERE e.id > after - 1024
                AND pg_visible_in_snapshot(e.txid, window_snapshot)
                AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
                AND @schema@.events_after(e, after, c) > 0
              ORDER BY e.id
              LIMIT page_size) AS q)
        UNION ALL
        -- A row at or below done_id holds only ids at or below it.
        (SELECT q.r, sum(q.n) OVER (ORDER BY q.id) - q.n, late_after FROM (
             SELECT e AS r, e.id, @schema@.events_after(e, late_after, c) AS n FROM @schema@.event e
              WHERE late IS NOT NULL
                AND e.id > late_after - 1024 AND e.id <= c.done_id
                AND e.txid = ANY(late)
                AND @schema@.events_after(e, late_after, c) > 0
              ORDER BY e.id
              LIMIT page_size) AS q))
    SELECT page.* FROM (
        SELECT (h.r).* FROM held h WHERE (h.r).keyed_by IS NULL
        UNION ALL
        SELECT x.* FROM held h CROSS JOIN LATERAL @schema@.expand(h.r) AS x
         WHERE (h.r).keyed_by IS NOT NULL AND h.before < page_size AND x.id > h.above
           AND (c.lanes = 1 OR @schema@.lane_of(x.schema_name, x.table_name, x.pk, c.lanes) = c.lane)
    ) AS page
    ORDER BY page.id
    LIMIT page_size;
END
$pgevents$;
