-- Broadcast payloads and trigger creation, shared by the generated capture
-- functions, create_triggers.sql and the version changes.

-- Sends a statement's keys (each a JSON object, as text) to listeners, in
-- payloads of at most 7500 bytes; nothing is persisted.
CREATE @or_replace@FUNCTION @schema@.broadcast(op text, table_schema text, table_name text, items text[])
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    header text := '{"op":' || to_json(op)::text
        || ',"schema":' || to_json(table_schema)::text
        || ',"table":' || to_json(table_name)::text || ',"pks":';
    budget integer := 7500 - octet_length(header) - octet_length('[]}');
    payload text := array_to_string(items, ',');
    longest integer;
    overflow boolean := false;
    per_chunk integer;
    first integer := 1;
BEGIN
    IF octet_length(payload) <= budget THEN
        IF payload <> '' THEN
            PERFORM pg_notify(@broadcast_channel@, header || '[' || payload || ']}');
        END IF;
        RETURN;
    END IF;
    SELECT max(octet_length(item)) INTO longest FROM unnest(items) AS u(item);
    IF longest > budget THEN
        -- Keys too large for any payload: send the others, then tell
        -- listeners that the table changed.
        items := ARRAY(SELECT item FROM unnest(items) WITH ORDINALITY AS u(item, ord)
                        WHERE octet_length(item) <= budget ORDER BY ord);
        SELECT max(octet_length(item)) INTO longest FROM unnest(items) AS u(item);
        overflow := true;
    END IF;
    -- Chunks of a fixed number of keys, with room for the longest key in
    -- every place: k keys and k - 1 commas never exceed budget.
    per_chunk := (budget + 1) / (longest + 1);
    WHILE first <= cardinality(items) LOOP
        PERFORM pg_notify(@broadcast_channel@,
                          header || '[' || array_to_string(items[first:first + per_chunk - 1], ',') || ']}');
        first := first + per_chunk;
    END LOOP;
    IF overflow THEN
        PERFORM pg_notify(@broadcast_channel@, header || 'null,"overflow":true}');
    END IF;
END
$pgevents$;

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
END
$pgevents$;

-- Drops the generated capture functions that no trigger uses any more (their
-- trigger was dropped, or their table); with unused_only false, all of them,
-- failing on the first one a trigger still uses.
CREATE @or_replace@FUNCTION @schema@.drop_capture_functions(unused_only boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    unused regprocedure;
BEGIN
    FOR unused IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace = to_regnamespace(quote_ident(@schema_name@))
           AND starts_with(obj_description(p.oid, 'pg_proc'), @generated_marker@)
           AND NOT (unused_only AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgfoid = p.oid))
    LOOP
        EXECUTE 'DROP FUNCTION ' || unused::text;
    END LOOP;
END
$pgevents$;

-- Re-creates every pgevents trigger of this schema with its arguments, with
-- or without capture functions of their own (version changes).
CREATE @or_replace@FUNCTION @schema@.recreate_triggers(specialize boolean)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    existing record;
    arguments text[];
    rest bytea;
    cut integer;
BEGIN
    FOR existing IN
        SELECT t.tgrelid::regclass AS target, t.tgname::text AS name, t.tgargs AS raw
          FROM pg_trigger t
          JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE p.pronamespace = to_regnamespace(quote_ident(@schema_name@))
           AND ((p.proname = @capture_name@ AND p.pronargs = 0)
                OR starts_with(obj_description(p.oid, 'pg_proc'), @generated_marker@))
           AND NOT t.tgisinternal AND t.tgparentid = 0
           AND t.tgname IN (@trigger_names@)
    LOOP
        -- tgargs: each argument followed by a NUL byte, in the server encoding.
        arguments := '{}';
        rest := existing.raw;
        WHILE length(rest) > 0 LOOP
            cut := position(decode('00', 'hex') IN rest);
            arguments := arguments || convert_from(substr(rest, 1, cut - 1), getdatabaseencoding());
            rest := substr(rest, cut + 1);
        END LOOP;
        EXECUTE 'DROP TRIGGER ' || quote_ident(existing.name) || ' ON ' || existing.target::text;
        PERFORM @schema@.drop_capture_functions();
        PERFORM @schema@.create_trigger(existing.target, substr(existing.name, @event_start@), arguments, specialize);
    END LOOP;
END
$pgevents$;
