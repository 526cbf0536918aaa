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
