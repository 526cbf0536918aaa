-- pgevents-migrate artifact 1: removes what install.sql created.
-- Fails while any pgevents trigger still uses the capture function: drop those first.
-- The schema itself is dropped only when install.sql created it and nothing else lives in it.
DROP FUNCTION @capture@();
DROP TABLE @schema@.sleeper;
DROP TABLE @schema@.processed;
DROP TABLE @schema@.dead_letter;
DROP TABLE @schema@.event;
-- #include drop_schema
