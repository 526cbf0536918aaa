DO $pgevents$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = @table_literal@::regclass AND indisprimary) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: table ' || @table_literal@ || ' has no primary key',
            HINT = 'Events identify rows by their primary key; add one before installing a pgevents trigger.';
    END IF;
END
$pgevents$;
