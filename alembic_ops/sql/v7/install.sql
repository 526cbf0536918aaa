-- pgevents-migrate artifact 7: artifact 6's log, where a capture function
-- whose events carry only a single-column key writes one row per statement
-- (per 1024 rows of it) holding the key values, instead of one per row.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @flags@, @event_id@,
-- @default_group@, @wakeup_channel@ and @broadcast_channel@ (literals).
-- #include create_schema
-- #include log_tables
-- #include statement_rows
-- #include sleeper
-- #include capture
-- #include trigger_functions
-- #include log_functions
SELECT @schema@.create_group(@default_group@);
COMMENT ON FUNCTION @capture@() IS @artifact_7@;
