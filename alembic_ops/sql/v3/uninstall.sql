-- pgevents-migrate artifact 3: removes what install.sql created.
-- Fails while any pgevents trigger still uses a capture function: drop those first.
SELECT @schema@.drop_capture_functions(false);
-- #include drop_trigger_functions
-- #include uninstall_tables
