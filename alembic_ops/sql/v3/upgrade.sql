-- pgevents-migrate artifact 2 -> 3: adds the trigger functions and gives every
-- trigger that qualifies a capture function of its own; tables and events stay.
-- #include expect
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_3@;
