-- Resolves the table's primary key now and passes it to the capture function
-- as trigger arguments, so nothing is looked up when a row changes;
-- create_trigger() decides whether the trigger gets a capture function of its own.
DO $pgevents$
DECLARE
    target regclass := @table_literal@::regclass;
    key_columns text[];
    event text;
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.ord)
      INTO key_columns
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = target AND i.indisprimary;
    IF key_columns IS NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: table ' || @table_literal@ || ' has no primary key',
            HINT = 'Events identify rows by their primary key; add one before installing a pgevents trigger.';
    END IF;
    FOREACH event IN ARRAY @events@::text[] LOOP
        PERFORM @schema@.create_trigger(
            target, event,
            ARRAY[@delivery@, @images@, cardinality(key_columns)::text] || key_columns
                || CASE WHEN event = 'update' THEN @filter_columns@::text[] ELSE '{}' END);
    END LOOP;
END
$pgevents$;
