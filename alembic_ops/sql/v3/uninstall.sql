-- pgevents-migrate artifact 3: removes what install.sql created.
-- Fails while any pgevents trigger still uses a capture function: drop those first.
SELECT @schema@.drop_capture_functions(false);
-- #include v3/drop_trigger_functions.sql
-- #include v1/uninstall.sql
