-- Runs before create_triggers.sql: refuses, with one short message, a table
-- that does not exist, has no primary key, or lacks a column the update filter
-- names (flask db migrate refuses these already; this is the backstop).
DO $pgevents$
DECLARE
    target regclass := to_regclass(@table_literal@);
    missing text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: table ' || @table_literal@ || ' does not exist',
            HINT = 'Create it in this migration or an earlier one, or fix the listener''s target.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_index WHERE indrelid = target AND indisprimary) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: table ' || @table_literal@ || ' has no primary key',
            HINT = 'Events identify rows by their primary key: add one, or remove the listener.';
    END IF;
    SELECT string_agg(quote_ident(wanted), ', ')
      INTO missing
      FROM unnest(@filter_columns@::text[]) AS wanted
     WHERE NOT EXISTS (SELECT FROM pg_attribute a
                        WHERE a.attrelid = target AND a.attname = wanted
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: table ' || @table_literal@ || ' has no column ' || missing
                || ', which the update filter names',
            HINT = 'Fix the columns= of its listeners, then run flask db migrate again.';
    END IF;
END
$pgevents$;
