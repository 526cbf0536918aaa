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

-- How many of statement row e's events have ids above after and belong to
-- c's lane, for a group of more than one lane (a group of one counts them
-- from the row's id and events alone, without reading its keys).
CREATE @or_replace@FUNCTION @schema@.lane_events_after(e @schema@.event, after bigint, c @schema@.group_cursor)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
AS $pgevents$
SELECT count(*) FROM @schema@.expand(e) AS y
 WHERE y.id > after AND @schema@.lane_of(y.schema_name, y.table_name, y.pk, c.lanes) = c.lane;
$pgevents$;

-- Up to page_size events of the window (c.done_snapshot, window] after
-- c.last_id, in id order: those of transactions that took their xid after the
-- done snapshot (ids above done_id), merged with those of transactions open in
-- it that the window sees finished (ids above their floors); those of c's lane.
-- It walks the rows holding such events in id order (a statement row's first
-- keys may be behind the cursor: its id is above after - 1024) until it has
-- page_size events, expanding only statement rows: a row of one event is its
-- event. So a page shorter than page_size still means the window is done.
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
    held record;
    found_events bigint := 0;
    expanded bigint;
BEGIN
    SELECT array_agg(u.x), min(u.f)
      INTO late, late_floor
      FROM unnest(c.open_xids, c.open_floors) AS u(x, f)
     WHERE pg_visible_in_snapshot(u.x, window_snapshot);
    late_after := greatest(c.last_id, late_floor);
    -- The common case: one lane, no transaction left from the done snapshot,
    -- and no statement row among the rows a page can take (the first
    -- page_size + 1 from after - 1024 on). Then the page is those rows, read
    -- as artifact 6 reads them. An empty page may mean either: walk the rows.
    IF late IS NULL AND c.lanes = 1 THEN
        RETURN QUERY
        SELECT e.* FROM @schema@.event e
         WHERE NOT EXISTS (
                   SELECT FROM (SELECT p.keyed_by FROM @schema@.event p
                                 WHERE p.id > after - 1024
                                   AND pg_visible_in_snapshot(p.txid, window_snapshot)
                                   AND NOT pg_visible_in_snapshot(p.txid, c.done_snapshot)
                                 ORDER BY p.id
                                 LIMIT page_size + 1) AS page_rows
                    WHERE page_rows.keyed_by IS NOT NULL)
           AND e.id > after
           AND pg_visible_in_snapshot(e.txid, window_snapshot)
           AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
         ORDER BY e.id
         LIMIT page_size;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    FOR held IN
        (SELECT e.id, e AS r, after AS above FROM @schema@.event e
          WHERE e.id > after - 1024
            AND pg_visible_in_snapshot(e.txid, window_snapshot)
            AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
            AND CASE WHEN e.keyed_by IS NULL
                     THEN e.id > after AND (c.lanes = 1 OR @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes) = c.lane)
                     ELSE e.id + e.events - 1 > after AND (c.lanes = 1 OR @schema@.lane_events_after(e, after, c) > 0) END
          ORDER BY e.id
          LIMIT page_size)
        UNION ALL
        -- A row at or below done_id holds only ids at or below it.
        (SELECT e.id, e, late_after FROM @schema@.event e
          WHERE late IS NOT NULL
            AND e.id > late_after - 1024 AND e.id <= c.done_id
            AND e.txid = ANY(late)
            AND CASE WHEN e.keyed_by IS NULL
                     THEN e.id > late_after AND (c.lanes = 1 OR @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes) = c.lane)
                     ELSE e.id + e.events - 1 > late_after AND (c.lanes = 1 OR @schema@.lane_events_after(e, late_after, c) > 0) END
          ORDER BY e.id
          LIMIT page_size)
        ORDER BY id
        LIMIT page_size
    LOOP
        IF (held.r).keyed_by IS NULL THEN
            RETURN NEXT held.r;
            found_events := found_events + 1;
        ELSE
            -- Only the keys after held.above, as many as the page still takes.
            RETURN QUERY
            SELECT x.* FROM (
                SELECT (held.r).id + k.i AS id, (held.r).gen, (held.r).op, (held.r).schema_name, (held.r).table_name,
                       jsonb_build_object((held.r).keyed_by, (held.r).pk -> k.i::integer) AS pk,
                       (held.r).old, (held.r).new, (held.r).changed, (held.r).txid, (held.r).created_at,
                       NULL::text, NULL::smallint
                  FROM generate_series(greatest(held.above - (held.r).id + 1, 0), (held.r).events - 1) AS k(i)) AS x
             WHERE c.lanes = 1 OR @schema@.lane_of(x.schema_name, x.table_name, x.pk, c.lanes) = c.lane
             LIMIT page_size - found_events;
            GET DIAGNOSTICS expanded = ROW_COUNT;
            found_events := found_events + expanded;
        END IF;
        EXIT WHEN found_events >= page_size;
    END LOOP;
END
$pgevents$;
