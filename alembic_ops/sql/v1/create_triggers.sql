-- Resolves the table's primary key now and passes it to the capture function
-- as trigger arguments, so nothing is looked up when a row changes.
-- #include v1/create_triggers_begin.sql
        EXECUTE 'CREATE TRIGGER ' || quote_ident('pgevents_' || event)
            || ' AFTER ' || upper(event) || ' ON ' || target::text
            || CASE event
                   WHEN 'insert' THEN ' REFERENCING NEW TABLE AS pgevents_new'
                   WHEN 'delete' THEN ' REFERENCING OLD TABLE AS pgevents_old'
                   ELSE ' REFERENCING OLD TABLE AS pgevents_old NEW TABLE AS pgevents_new'
               END
            || ' FOR EACH STATEMENT EXECUTE FUNCTION @schema@.capture('
            || array_to_string(ARRAY(
                   SELECT quote_literal(argument)
                     FROM unnest(ARRAY[@delivery@, @images@, cardinality(key_columns)::text] || key_columns
                                 || CASE WHEN event = 'update' THEN @filter_columns@::text[] ELSE '{}' END) AS argument
               ), ', ')
            || ')';
    END LOOP;
END
$pgevents$;
