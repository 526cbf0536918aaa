-- pgevents-migrate artifact 5 (draft): the event log as an append-only log in
-- rotating partitions, read by consumer groups through cursors; the capture
-- functions of artifact 4, writing to the current partition.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @sleeping@,
-- @generation@, @event_id@, @default_group@, @wakeup_channel@ and
-- @broadcast_channel@ (literals).
-- #include create_schema
-- #include log_tables
-- #include sleeper
-- #include sleeping
-- #include capture
-- #include trigger_functions
-- #include log_functions
SELECT @schema@.create_group(@default_group@);
COMMENT ON FUNCTION @capture@() IS @artifact_5@;
