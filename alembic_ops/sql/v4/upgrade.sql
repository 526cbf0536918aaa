-- pgevents-migrate artifact 3 -> 4: adds the sleeper flag sequence, drops the
-- NOT NULL checks of event, and re-creates every trigger so that generated
-- capture functions read the flag; tables and events stay.
-- #include v2/expect.sql
-- #include v4/sleeping.sql
-- #include v4/nullable_event_columns.sql
-- #include v3/trigger_functions.sql
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 4';
