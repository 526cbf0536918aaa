-- Events not yet handled by the group: in the log, and waiting in retry.
CREATE @or_replace@FUNCTION @schema@.pending(target_group text)
RETURNS bigint
LANGUAGE sql
STABLE
AS $pgevents$
SELECT (SELECT count(*) FROM @schema@.event row_of CROSS JOIN LATERAL @schema@.expand(row_of) AS e,
                             @schema@.group_cursor c
         WHERE c.group_name = target_group
           AND c.lane = @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes)
           AND NOT @schema@.handled(c, e.txid, e.id))
     + (SELECT count(*) FROM @schema@.retry r WHERE r.group_name = target_group);
$pgevents$;
