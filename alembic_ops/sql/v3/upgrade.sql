-- pgevents-migrate artifact 2 -> 3: adds the trigger functions and gives every
-- trigger that qualifies a capture function of its own; tables and events stay.
-- #include v2/expect.sql
-- #include v3/trigger_functions.sql
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 3';
