    EXECUTE 'CREATE TRIGGER ' || quote_ident(@trigger_prefix@ || event)
        || ' AFTER ' || upper(event) || ' ON ' || target::text
        || CASE event
               WHEN 'insert' THEN @referencing_insert@
               WHEN 'delete' THEN @referencing_delete@
               ELSE @referencing_update@
           END
        || ' FOR EACH STATEMENT EXECUTE FUNCTION @schema@.' || quote_ident(function_name) || '('
        || array_to_string(ARRAY(SELECT quote_literal(argument) FROM unnest(arguments) AS argument), ', ')
        || ')';
