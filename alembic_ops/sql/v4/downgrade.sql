-- pgevents-migrate artifact 4 -> 3: generated capture functions go back to
-- scanning sleeper, event gets its NOT NULL checks back, the flag goes.
-- #include expect
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
ALTER TABLE @schema@.event
    ALTER COLUMN op SET NOT NULL,
    ALTER COLUMN schema_name SET NOT NULL,
    ALTER COLUMN table_name SET NOT NULL,
    ALTER COLUMN pk SET NOT NULL,
    ALTER COLUMN txid SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN attempts SET NOT NULL,
    ALTER COLUMN done SET NOT NULL;
DROP SEQUENCE @schema@.sleeping;
COMMENT ON FUNCTION @capture@() IS @artifact_3@;
