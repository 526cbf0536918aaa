-- pgevents-migrate artifact 5 -> 4: the log becomes the job table again.
-- Events some group has not handled (in the log or waiting in retry) become
-- pending events, once each whatever the number of groups, keeping the
-- attempts of a retry; dead letters keep one row per id; handled events are
-- not kept. Writers wait for the lock below.
-- #include expect
-- Artifact 4 has no row conditions: refuse while a trigger carries one.
DO $pgevents$
DECLARE
    conditional text;
BEGIN
    SELECT string_agg(DISTINCT t.tgrelid::regclass::text, ', ') INTO conditional
      FROM pg_trigger t
      JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE p.pronamespace = to_regnamespace(quote_ident(@schema_name@))
       AND starts_with(obj_description(p.oid, 'pg_proc'), @generated_marker@)
       AND split_part(encode(t.tgargs, 'escape'), '\000', 2) LIKE '%+when';
    IF conditional IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: artifact 4 has no row conditions, and triggers on ' || conditional || ' have one',
            HINT = 'Drop those triggers, or recreate them without when=, in a migration before this downgrade.';
    END IF;
END
$pgevents$;
LOCK TABLE @schema@.event IN ACCESS EXCLUSIVE MODE;
-- Copies, so that the new tables get the old names of constraints too.
CREATE TEMPORARY TABLE pgevents_pending_v5 ON COMMIT DROP AS
SELECT DISTINCT ON (id) id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
       attempts, available_at, done, last_error
  FROM (SELECT r.id, r.op, r.schema_name, r.table_name, r.pk, r.old, r.new, r.changed, r.txid, r.created_at,
               r.attempts, r.available_at, r.done, r.last_error
          FROM @schema@.retry r
        UNION ALL
        SELECT e.id, e.op, e.schema_name, e.table_name, e.pk, e.old, e.new, e.changed, e.txid, e.created_at,
               0, NULL, '{}', NULL
          FROM @schema@.event e
         WHERE EXISTS (SELECT FROM @schema@.group_cursor c
                        WHERE c.lane = @schema@.lane_of(e.schema_name, e.table_name, e.pk, c.lanes)
                          AND NOT @schema@.handled(c, e.txid, e.id))) pending
 ORDER BY id, attempts DESC;
CREATE TEMPORARY TABLE pgevents_dead_letter_v5 ON COMMIT DROP AS
SELECT DISTINCT ON (id) * FROM @schema@.dead_letter ORDER BY id, failed_at DESC;
CREATE TEMPORARY TABLE pgevents_last_id_v5 ON COMMIT DROP AS
SELECT greatest((SELECT max(id) FROM @schema@.event), (SELECT max(id) FROM @schema@.retry),
                (SELECT max(id) FROM @schema@.dead_letter), pg_sequence_last_value(@event_id@), 1) AS id;
-- #include drop_log_functions
-- #include drop_log_tables
-- #include job_tables
-- #include nullable_event_columns
-- #include capture
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
INSERT INTO @schema@.event
       (id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, available_at,
        done, last_error)
       OVERRIDING SYSTEM VALUE
SELECT id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, available_at,
       done, last_error
  FROM pg_temp.pgevents_pending_v5;
INSERT INTO @schema@.dead_letter
       (id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, done, error, failed_at)
SELECT id, op, schema_name, table_name, pk, old, new, changed, txid, created_at, attempts, done, error, failed_at
  FROM pg_temp.pgevents_dead_letter_v5;
SELECT setval(pg_get_serial_sequence(quote_ident(@schema_name@) || '.event', 'id')::regclass,
              (SELECT id FROM pg_temp.pgevents_last_id_v5));
COMMENT ON FUNCTION @capture@() IS @artifact_4@;
