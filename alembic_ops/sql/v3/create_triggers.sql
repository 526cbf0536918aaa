-- Resolves the table's primary key now and passes it to the capture function
-- as trigger arguments, so nothing is looked up when a row changes;
-- create_trigger() decides whether the trigger gets a capture function of its own.
-- #include v1/create_triggers_begin.sql
        PERFORM @schema@.create_trigger(
            target, event,
            ARRAY[@delivery@, @images@, cardinality(key_columns)::text] || key_columns
                || CASE WHEN event = 'update' THEN @filter_columns@::text[] ELSE '{}' END);
    END LOOP;
END
$pgevents$;
