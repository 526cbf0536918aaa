-- pgevents-migrate artifact 4: removes what install.sql created.
-- Fails while any pgevents trigger still uses a capture function: drop those first.
DROP SEQUENCE @schema@.sleeping;
-- #include uninstall_functions
