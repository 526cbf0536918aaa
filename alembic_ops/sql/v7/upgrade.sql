-- pgevents-migrate artifact 6 -> 7: statement rows (statement_rows.sql).
-- The rows already in the log are rows of one event, with ids below every id
-- drawn from now on (nextval * 1024), and read as before; floors and ids the
-- cursors hold stay valid (lower than every new id). Altering event takes
-- its lock, so writers wait until the migration commits.
-- #include expect
LOCK TABLE @schema@.rotation IN EXCLUSIVE MODE;
-- #include statement_rows
-- #include log_functions
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_7@;
