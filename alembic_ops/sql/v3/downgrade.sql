-- pgevents-migrate artifact 3 -> 2: points every trigger back at the generic
-- capture function and drops the generated ones.
-- #include v2/expect.sql
SELECT @schema@.recreate_triggers(false);
SELECT @schema@.drop_capture_functions();
-- #include v3/drop_trigger_functions.sql
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 2';
