-- pgevents-migrate artifact 6: artifact 5's log, with one sequence, flags,
-- that writers read once per statement (the partition they append to and
-- whether a listener sleeps), instead of two.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @flags@, @event_id@,
-- @default_group@, @wakeup_channel@ and @broadcast_channel@ (literals).
-- #include create_schema
-- #include log_tables
-- #include sleeper
-- #include capture
-- #include trigger_functions
-- #include log_functions
SELECT @schema@.create_group(@default_group@);
COMMENT ON FUNCTION @capture@() IS @artifact_6@;
