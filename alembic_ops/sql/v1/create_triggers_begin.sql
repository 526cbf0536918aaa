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
