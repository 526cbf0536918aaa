-- Creates the trigger pgevents_<event> on target with the given capture
-- arguments (the layout of alembic_ops/core/arguments.py), calling a capture
-- function generated for it, capture_<table>_<event>[_<n>], whose SQL names
-- the table's columns: it reads the transition table as rows named new (old
-- for deletes) and appends their events to the current partition, which it
-- names in one of four static INSERTs (no tuple routing; see log_tables.sql).
-- Row images, an update filter or a row condition pair an update's new and
-- old rows by key (the old side is all nulls when the key changed); an
-- insert's old and a delete's new are all nulls. A row condition
-- ('keys+when' or 'images+when', the condition after the key columns) is
-- tried first, so that SQL the table cannot run fails here, with the table
-- named. A key or filter column the table no longer has (renamed behind the
-- triggers' back, kept by a version change) is read from the row as jsonb,
-- so it records null as artifact 2's generic function did. specialize is
-- ignored: from artifact 5 on every trigger gets a function of its own.
CREATE @or_replace@FUNCTION @schema@.create_trigger(
    target regclass, event text, arguments text[], specialize boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    key_columns text[] := arguments[4:3 + arguments[3]::integer];
    conditional boolean := arguments[2] IN ('keys+when', 'images+when');
    images boolean := arguments[2] IN ('images', 'images+when');
    condition text := CASE WHEN conditional THEN arguments[4 + cardinality(key_columns)] END;
    filter_columns text[] := arguments[4 + cardinality(key_columns) + conditional::integer:];
    side text := CASE event WHEN 'delete' THEN 'old' ELSE 'new' END;
    paired boolean;
    qualified text;
    base text;
    function_name text;
    suffix integer := 1;
    body text;
    rows_from text;
    present text[];
    pk text;
    item text;
    unpaired text := 'true';
    filter text;
    inserts text := '';
BEGIN
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname INTO qualified, base
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF conditional THEN
        BEGIN
            EXECUTE format('SELECT FROM ONLY %1$s AS new LEFT JOIN ONLY %1$s AS old ON false WHERE (%2$s) LIMIT 0',
                           qualified, E'\n' || condition || E'\n');
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION USING
                ERRCODE = SQLSTATE,
                MESSAGE = format('pgevents: the when= condition of %s events on table %s is not valid: %s',
                                 event, target, SQLERRM),
                HINT = 'Correct the condition ' || condition || ' in its listener and in this migration.';
        END;
    END IF;

    -- A readable, unused name: capture_<table>_<event>[_<n>].
    WHILE octet_length(base) > 40 LOOP
        base := left(base, -1);
    END LOOP;
    base := @generated_prefix@ || base || '_' || event;
    function_name := base;
    WHILE to_regprocedure(quote_ident(@schema_name@) || '.' || quote_ident(function_name) || '()') IS NOT NULL LOOP
        suffix := suffix + 1;
        function_name := base || '_' || suffix;
    END LOOP;

    -- A column of the row, typed; or null, as jsonb, if the table lost it.
    present := ARRAY(SELECT a.attname::text FROM pg_attribute a
                      WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped);
    pk := 'jsonb_build_object(' || (
        SELECT string_agg(format('%L, ', k) || CASE WHEN k = ANY(present) THEN format('%s.%I', side, k)
                                                    ELSE format('to_jsonb(%s.*) -> %L', side, k) END, ', ')
          FROM unnest(key_columns) AS k) || ')';
    -- A broadcast item is the key's JSON text. Integer, text and uuid keys go
    -- through to_json: the same text as to_jsonb without building jsonb (which
    -- turns integers into numeric first), a third cheaper per row.
    SELECT format('%L || to_json(%s.%I)::text || ''}''', '{' || to_json(a.attname::text)::text || ': ',
                  side, a.attname)
      INTO item
      FROM pg_attribute a
     WHERE cardinality(key_columns) = 1 AND a.attrelid = target AND a.attname = key_columns[1]
       AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'text'::regtype,
                          'varchar'::regtype, 'uuid'::regtype);
    item := coalesce(item, pk || '::text');
    paired := event = 'update' AND (images OR cardinality(filter_columns) > 0 OR conditional);
    rows_from := format('%I AS %s', CASE event WHEN 'delete' THEN @old_table_name@ ELSE @new_table_name@ END, side);
    IF paired THEN
        IF key_columns <@ present THEN
            unpaired := format('old.%I IS NULL', key_columns[1]);
            rows_from := rows_from || format(' LEFT JOIN %I AS old ON ', @old_table_name@)
                || (SELECT string_agg(format('old.%1$I = new.%1$I', k), ' AND ') FROM unnest(key_columns) AS k);
        ELSE
            rows_from := rows_from || format(' LEFT JOIN %I AS old ON false', @old_table_name@);
        END IF;
    ELSIF conditional THEN
        rows_from := rows_from || format(' LEFT JOIN ONLY %s AS %s ON false', qualified,
                                         CASE side WHEN 'new' THEN 'old' ELSE 'new' END);
    END IF;
    IF event = 'update' AND cardinality(filter_columns) > 0 THEN
        -- As jsonb, so that types without equality (json, point) compare; a
        -- column the table lost never changes.
        filter := '(' || unpaired || coalesce((SELECT string_agg(
            format(' OR to_jsonb(new.%1$I) IS DISTINCT FROM to_jsonb(old.%1$I)', f), '')
              FROM unnest(filter_columns) AS f WHERE f = ANY(present)), '') || ')';
    END IF;
    -- On lines of its own: a condition may end with a -- comment.
    filter := concat_ws(' AND ', E'(\n' || condition || E'\n)', filter);
    IF filter <> '' THEN
        filter := E'\n         WHERE ' || filter;
    END IF;

    IF arguments[1] = 'broadcast' THEN
        body := format($body$#variable_conflict use_column
BEGIN
    IF current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    PERFORM @schema@.broadcast(%1$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, ARRAY(
        SELECT %2$s
          FROM %3$s%4$s));
    RETURN NULL;
END$body$, event, item, rows_from, filter);
    ELSE
-- #include log_capture_body
    END IF;
    EXECUTE 'CREATE FUNCTION @schema@.' || quote_ident(function_name)
        || '() RETURNS trigger LANGUAGE plpgsql AS ' || quote_literal(body);
    EXECUTE 'COMMENT ON FUNCTION @schema@.' || quote_ident(function_name) || '() IS '
        || quote_literal(@generated_marker@ || target::text || ' ' || event);
-- #include attach_trigger
END
$pgevents$;

