-- pgevents-migrate artifact 1: removes what install.sql created.
-- Fails while any pgevents trigger still uses the capture function: drop those first.
-- The schema itself is dropped only when install.sql created it and nothing else lives in it.
DROP FUNCTION @capture@();
DROP TABLE @schema@.sleeper;
DROP TABLE @schema@.processed;
DROP TABLE @schema@.dead_letter;
DROP TABLE @schema@.event;
DO $pgevents$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_namespace n
         WHERE n.nspname = @schema_name@
           AND obj_description(n.oid, 'pg_namespace') = 'created by pgevents-migrate'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid)
    ) THEN
        EXECUTE 'DROP SCHEMA ' || quote_ident(@schema_name@);
    END IF;
END
$pgevents$;
