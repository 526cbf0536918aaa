-- pgevents-migrate artifact 7 -> 6: each statement row becomes the rows of
-- one event it stands for, with their ids, in its partition; then the
-- sequence moves past every id drawn (artifact 6's ids are nextval itself),
-- and the functions and triggers of 6 return.
-- #include expect
LOCK TABLE @schema@.rotation IN EXCLUSIVE MODE;
LOCK TABLE @schema@.event IN SHARE ROW EXCLUSIVE MODE;
DO $pgevents$
DECLARE
    part integer;
BEGIN
    FOR part IN 0..3 LOOP
        EXECUTE format('INSERT INTO %1$I.%2$I SELECT x.* FROM ONLY %1$I.%2$I AS r CROSS JOIN LATERAL %1$I.expand(r) AS x'
                       ' WHERE r.keyed_by IS NOT NULL', @schema_name@, 'event_' || part);
    END LOOP;
END
$pgevents$;
DELETE FROM @schema@.event WHERE keyed_by IS NOT NULL;
DROP FUNCTION @schema@.lane_events_after(@schema@.event, bigint, @schema@.group_cursor);
DROP FUNCTION @schema@.expand(@schema@.event);
ALTER TABLE @schema@.event DROP COLUMN keyed_by, DROP COLUMN events;
ALTER TABLE @schema@.event ALTER COLUMN pk SET STORAGE EXTENDED;
ALTER TABLE @schema@.event ALTER COLUMN id SET DEFAULT nextval(@event_id@);
SELECT setval(@event_id@, (coalesce(pg_sequence_last_value(@event_id@), 0) + 1) * 1024);
-- #include log_functions
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_6@;
