-- pgevents-migrate artifact 3 -> 2: points every trigger back at the generic
-- capture function and drops the generated ones.
-- #include expect
SELECT @schema@.recreate_triggers(false);
SELECT @schema@.drop_capture_functions();
-- #include drop_trigger_functions
COMMENT ON FUNCTION @capture@() IS @artifact_2@;
