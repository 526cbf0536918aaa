-- pgevents-migrate artifact 4 -> 5: the job table becomes the log. Pending
-- events (claimed or not) wait in retry for the default group with their
-- attempts; dead letters become the default group's; events kept in
-- processed go into the log as already handled, for replay. Writers wait for
-- the lock below, so no event is written to the old table after the copy.
-- #include expect
LOCK TABLE @schema@.event IN ACCESS EXCLUSIVE MODE;
-- Copies, so that the new tables get the old names of constraints too.
CREATE TEMPORARY TABLE pgevents_event_v4 ON COMMIT DROP AS SELECT * FROM @schema@.event;
CREATE TEMPORARY TABLE pgevents_dead_letter_v4 ON COMMIT DROP AS SELECT * FROM @schema@.dead_letter;
CREATE TEMPORARY TABLE pgevents_processed_v4 ON COMMIT DROP AS SELECT * FROM @schema@.processed;
CREATE TEMPORARY TABLE pgevents_last_id_v4 ON COMMIT DROP AS
SELECT pg_sequence_last_value(pg_get_serial_sequence(quote_ident(@schema_name@) || '.event', 'id')::regclass) AS id;
DROP TABLE @schema@.event;
DROP TABLE @schema@.dead_letter;
DROP TABLE @schema@.processed;
-- #include log_tables
-- #include capture
-- #include trigger_functions
-- #include log_functions
SELECT @schema@.recreate_triggers(true);
SELECT @schema@.create_group(@default_group@);
INSERT INTO @schema@.retry
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, available_at, done, last_error)
SELECT @default_group@, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
       attempts, available_at, done, last_error
  FROM pg_temp.pgevents_event_v4;
INSERT INTO @schema@.dead_letter
       (group_name, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
        attempts, done, error, failed_at)
SELECT @default_group@, id, op, schema_name, table_name, pk, old, new, changed, txid, created_at,
       attempts, done, error, failed_at
  FROM pg_temp.pgevents_dead_letter_v4;
INSERT INTO @schema@.event_0 (id, gen, op, schema_name, table_name, pk, old, new, changed, txid, created_at)
SELECT id, 0, op, schema_name, table_name, pk, old, new, changed, txid, created_at
  FROM pg_temp.pgevents_processed_v4;
-- New ids stay above every id carried over.
SELECT setval(@event_id@, greatest(
    (SELECT max(id) FROM pg_temp.pgevents_event_v4), (SELECT max(id) FROM pg_temp.pgevents_dead_letter_v4),
    (SELECT max(id) FROM pg_temp.pgevents_processed_v4), (SELECT id FROM pg_temp.pgevents_last_id_v4), 1));
COMMENT ON FUNCTION @capture@() IS @artifact_5@;
