-- pgevents-migrate artifact 3 -> 4: adds the sleeper flag sequence, drops the
-- NOT NULL checks of event, and re-creates every trigger so that generated
-- capture functions read the flag; tables and events stay.
-- #include expect
-- #include sleeping
-- #include nullable_event_columns
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_4@;
