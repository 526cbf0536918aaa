-- Up to page_size events of the window (c.done_snapshot, window] after
-- c.last_id, in id order: those of transactions that took their xid after the
-- done snapshot (ids above done_id), merged with those of transactions open in
-- it that the window sees finished (ids above their floors); those of c's lane.
CREATE @or_replace@FUNCTION @schema@.window_events(c @schema@.group_cursor, window_snapshot pg_snapshot, page_size integer)
RETURNS SETOF @schema@.event
LANGUAGE plpgsql
STABLE
AS $pgevents$
DECLARE
    late xid8[];
    late_floor bigint;
BEGIN
    SELECT array_agg(u.x), min(u.f)
      INTO late, late_floor
      FROM unnest(c.open_xids, c.open_floors) AS u(x, f)
     WHERE pg_visible_in_snapshot(u.x, window_snapshot);
    IF late IS NULL THEN
        RETURN QUERY
        SELECT e.* FROM @schema@.event e
         WHERE e.id > greatest(c.last_id, c.done_id)
           AND pg_visible_in_snapshot(e.txid, window_snapshot)
           AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
           AND (c.lanes = 1 OR @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes) = c.lane)
         ORDER BY e.id
         LIMIT page_size;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT page.* FROM (
        (SELECT e.* FROM @schema@.event e
          WHERE e.id > greatest(c.last_id, c.done_id)
            AND pg_visible_in_snapshot(e.txid, window_snapshot)
            AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
            AND (c.lanes = 1 OR @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes) = c.lane)
          ORDER BY e.id
          LIMIT page_size)
        UNION ALL
        (SELECT e.* FROM @schema@.event e
          WHERE e.id > greatest(c.last_id, late_floor) AND e.id <= c.done_id
            AND e.txid = ANY(late)
            AND (c.lanes = 1 OR @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes) = c.lane)
          ORDER BY e.id
          LIMIT page_size)
    ) AS page
    ORDER BY page.id
    LIMIT page_size;
END
$pgevents$;
