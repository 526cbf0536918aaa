-- pgevents-migrate artifact 3: removes what install.sql created.
-- Fails while any pgevents trigger still uses a capture function: drop those first.
SELECT @schema@.drop_capture_functions(false);
DROP FUNCTION @schema@.recreate_triggers(boolean);
DROP FUNCTION @schema@.drop_capture_functions(boolean);
DROP FUNCTION @schema@.create_trigger(regclass, text, text[], boolean);
DROP FUNCTION @schema@.broadcast(text, text, text, text[]);
-- #include v1/uninstall.sql
