-- Resolves the table's primary key now and passes it to the capture function
-- as trigger arguments, so nothing is looked up when a row changes.
-- #include create_triggers_begin
        EXECUTE 'CREATE TRIGGER ' || quote_ident(@trigger_prefix@ || event)
            || ' AFTER ' || upper(event) || ' ON ' || target::text
            || CASE event
                   WHEN 'insert' THEN @referencing_insert@
                   WHEN 'delete' THEN @referencing_delete@
                   ELSE @referencing_update@
               END
            || ' FOR EACH STATEMENT EXECUTE FUNCTION @capture@('
            || array_to_string(ARRAY(
                   SELECT quote_literal(argument)
                     FROM unnest(@trigger_arguments@
                                 @filter_arguments@) AS argument
               ), ', ')
            || ')';
    END LOOP;
END
$pgevents$;
