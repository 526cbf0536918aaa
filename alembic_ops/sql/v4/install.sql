-- pgevents-migrate artifact 4: artifact 3 with a cheaper wake-up check (a
-- sequence as the sleeper flag) and no NOT NULL checks on new event rows.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @sleeping@,
-- @wakeup_channel@ and @broadcast_channel@ (literals). Released: never edit;
-- add a new version instead.
-- #include v1/tables.sql
-- #include v4/sleeping.sql
-- #include v2/capture.sql
-- #include v3/trigger_functions.sql
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 4';
