-- pgevents-migrate artifact 5 -> 6: writers read one sequence per statement
-- instead of two. flags (generation * 2 + sleeping) is the sleeping sequence
-- renamed, so it keeps its grants (SELECT for every role, UPDATE for
-- workers); generation goes. The locks keep rotate() from moving the
-- generation and workers from setting the sleeper flag meanwhile; writers
-- reading generation hold up its DROP until they finish.
-- #include expect
LOCK TABLE @schema@.rotation IN EXCLUSIVE MODE;
LOCK TABLE @schema@.sleeper IN SHARE ROW EXCLUSIVE MODE;
ALTER SEQUENCE @schema@.sleeping RENAME TO flags;
ALTER SEQUENCE @schema@.flags MAXVALUE 7;
SELECT setval(@flags@, pg_sequence_last_value(@generation@) * 2 + pg_sequence_last_value(@flags@));
DROP SEQUENCE @schema@.generation;
-- #include log_functions
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_6@;
