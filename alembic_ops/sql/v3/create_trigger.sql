-- Creates the trigger pgevents_<event> on target with the given capture
-- arguments (delivery, 'images' or 'keys', key count, key columns, filter
-- columns). With specialize, a trigger that carries a single-column key (one
-- the table still has), no row images and no update filter gets a capture
-- function of its own that names the key column in static SQL: no row is read
-- as jsonb and nothing is decided per statement. Every other trigger calls
-- the generic capture().
CREATE @or_replace@FUNCTION @schema@.create_trigger(
    target regclass, event text, arguments text[], specialize boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    key text := arguments[4];
    rows_table text := CASE event WHEN 'delete' THEN @old_table_name@ ELSE @new_table_name@ END;
    base text;
    function_name text := @capture_name@;
    suffix integer := 1;
    body text;
    key_type regtype;
BEGIN
    -- A key column renamed since (drift, under an older artifact) keeps the
    -- generic function, which records its value as null instead of failing.
    SELECT a.atttypid INTO key_type
      FROM pg_attribute a
     WHERE a.attrelid = target AND a.attname = key AND a.attnum > 0 AND NOT a.attisdropped;
    IF specialize AND arguments[2] = 'keys' AND arguments[3] = '1' AND cardinality(arguments) = 4
       AND key_type IS NOT NULL THEN
        -- A readable, unused name: capture_<table>_<event>[_<n>].
        SELECT c.relname INTO base FROM pg_class c WHERE c.oid = target;
        WHILE octet_length(base) > 40 LOOP
            base := left(base, -1);
        END LOOP;
        base := @generated_prefix@ || base || '_' || event;
        function_name := base;
        WHILE to_regprocedure(quote_ident(@schema_name@) || '.' || quote_ident(function_name) || '()') IS NOT NULL LOOP
            suffix := suffix + 1;
            function_name := base || '_' || suffix;
        END LOOP;
        IF arguments[1] = 'broadcast' THEN
            -- Integer, text and uuid keys go through to_json: the same text as
            -- to_jsonb without building jsonb (which turns integers into
            -- numeric first), a third cheaper per row. Other types (floats
            -- print differently) keep to_jsonb.
            body := format($body$BEGIN
    IF current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    PERFORM @schema@.broadcast(%1$L, TG_TABLE_SCHEMA, TG_TABLE_NAME,
                                ARRAY(SELECT %2$L || %5$s(r.%3$I)::text || '}' FROM %4$I r));
    RETURN NULL;
END$body$, event, '{' || to_json(key)::text || ': ', key, rows_table,
               CASE WHEN key_type IN ('int2', 'int4', 'int8', 'text', 'varchar', 'uuid')
                    THEN 'to_json' ELSE 'to_jsonb' END);
        ELSE
            body := format($body$BEGIN
    IF current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    INSERT INTO @schema@.event (op, schema_name, table_name, pk)
    SELECT %1$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, jsonb_build_object(%2$L, r.%2$I) FROM %3$I r;
    -- A wake-up only while a listener sleeps. Constant payload: PostgreSQL
    -- folds repeats into one per transaction.
-- #include wakeup_check
        PERFORM pg_notify(@wakeup_channel@, '');
    END IF;
    RETURN NULL;
END$body$, event, key, rows_table);
        END IF;
        EXECUTE 'CREATE FUNCTION @schema@.' || quote_ident(function_name)
            || '() RETURNS trigger LANGUAGE plpgsql AS ' || quote_literal(body);
        EXECUTE 'COMMENT ON FUNCTION @schema@.' || quote_ident(function_name) || '() IS '
            || quote_literal(@generated_marker@ || target::text || ' ' || event);
    END IF;
-- #include attach_trigger
END
$pgevents$;

