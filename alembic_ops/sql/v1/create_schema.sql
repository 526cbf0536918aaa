DO $pgevents$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = @schema_name@) THEN
        EXECUTE 'CREATE SCHEMA ' || quote_ident(@schema_name@);
        EXECUTE 'COMMENT ON SCHEMA ' || quote_ident(@schema_name@) || ' IS ''created by pgevents-migrate''';
    END IF;
END
$pgevents$;

