-- pgevents-migrate artifact 3: the tables and generic capture function of
-- artifact 2, plus capture functions generated per trigger for single-column
-- keys without row images or an update filter.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @wakeup_channel@ and
-- @broadcast_channel@ (literals). Released: never edit; add a new version instead.
-- #include v1/tables.sql
-- #include v2/capture.sql
-- #include v3/trigger_functions.sql
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 3';
