-- pgevents-migrate artifact 5: the log, its groups and the capture function.
DROP FUNCTION @capture@();
-- #include drop_log_functions
DROP TABLE @schema@.sleeper;
-- #include drop_log_tables
-- #include drop_schema
