-- pgevents-migrate artifact 3: the tables and generic capture function of
-- artifact 2, plus capture functions generated per trigger for single-column
-- keys without row images or an update filter.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @wakeup_channel@ and
-- @broadcast_channel@ (literals). Released: never edit; add a new version instead.
-- #include tables
-- #include capture
-- #include trigger_functions
COMMENT ON FUNCTION @capture@() IS @artifact_3@;
