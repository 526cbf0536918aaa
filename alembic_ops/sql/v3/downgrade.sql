-- pgevents-migrate artifact 3 -> 2: points every trigger back at the generic
-- capture function and drops the generated ones.
-- #include v2/expect.sql
SELECT @schema@.recreate_triggers(false);
SELECT @schema@.drop_capture_functions();
DROP FUNCTION @schema@.recreate_triggers(boolean);
DROP FUNCTION @schema@.drop_capture_functions(boolean);
DROP FUNCTION @schema@.create_trigger(regclass, text, text[], boolean);
DROP FUNCTION @schema@.broadcast(text, text, text, text[]);
COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 2';
