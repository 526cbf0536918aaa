-- Trigger arguments (as in artifact 1): delivery ('queue' or 'broadcast'),
-- 'images' or 'keys', the number of primary-key columns, those columns, then
-- the update filter columns.
--
-- What changed from artifact 1, measured in docs/benchmarks.md: reading a row
-- as jsonb to pick its key costs about 3 us a row, so statements of 50 rows or
-- more with a single-column key (and no row images) name the key column in a
-- dynamic statement instead (planned once per statement, about 0.15 ms); the
-- pg_attribute probe keeps artifact 1's behaviour ({"id": null}) when that
-- column was renamed after the trigger was created. Smaller statements run
-- static SQL, which PL/pgSQL plans once per table. Broadcast payloads are built
-- as text and cut into chunks in one set-based query.
CREATE @or_replace@FUNCTION @capture@() RETURNS trigger
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    key_count integer;
    k text;                 -- the first key column (the only one unless composite)
    key_columns text[];     -- all key columns, for composite keys
    filter_columns text[];
    rows_table text := CASE WHEN TG_OP = 'DELETE' THEN @old_table_name@ ELSE @new_table_name@ END;
    named_key boolean := false;
    items text[];
    header text;
    budget integer;
    payload text;
    wrote boolean;
BEGIN
    -- NULL (never set) IN (...) is NULL, which IF treats as false.
    IF current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    key_count := TG_ARGV[2];
    k := TG_ARGV[3];
    IF key_count > 1 THEN
        key_columns := TG_ARGV[3:2 + key_count];
    END IF;
    IF TG_NARGS > 3 + key_count THEN
        filter_columns := TG_ARGV[3 + key_count:];
    END IF;

    IF key_count = 1 AND (TG_ARGV[0] = 'broadcast' OR TG_ARGV[1] = 'keys')
       AND NOT (TG_OP = 'UPDATE' AND filter_columns IS NOT NULL) THEN
        IF TG_OP = 'DELETE' THEN
            named_key := EXISTS (SELECT FROM @old_table@ OFFSET 49);
        ELSE
            named_key := EXISTS (SELECT FROM @new_table@ OFFSET 49);
        END IF;
        IF named_key THEN
            named_key := EXISTS (SELECT FROM pg_attribute
                                  WHERE attrelid = TG_RELID AND attname = k AND attnum > 0 AND NOT attisdropped);
        END IF;
    END IF;

    IF TG_ARGV[0] = 'broadcast' THEN
        -- Each key as the text of its jsonb object: {"id": 5}.
        IF TG_OP = 'UPDATE' AND filter_columns IS NOT NULL THEN
            -- Old and new rows paired by key, for the filter.
            items := ARRAY(
                SELECT n.pk::text
                  FROM (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s) n
                  LEFT JOIN (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s) o
                    ON o.pk = n.pk
                 WHERE EXISTS (SELECT 1 FROM unnest(filter_columns) f WHERE o.j IS NULL OR o.j -> f IS DISTINCT FROM n.j -> f));
        ELSIF named_key THEN
            EXECUTE format('SELECT ARRAY(SELECT %L || to_jsonb(r.%I)::text || ''}'' FROM %I r)',
                           '{' || to_json(k)::text || ': ', k, rows_table) INTO items;
        ELSIF TG_OP = 'DELETE' THEN
            items := ARRAY(SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END::text
                             FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s);
        ELSE
            items := ARRAY(SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END::text
                             FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s);
        END IF;

        -- Notify-only: keys in payloads of at most 7500 bytes; nothing is persisted.
        header := '{"op":' || to_json(lower(TG_OP))::text
            || ',"schema":' || to_json(TG_TABLE_SCHEMA::text)::text
            || ',"table":' || to_json(TG_TABLE_NAME::text)::text;
        budget := 7500 - octet_length(header) - octet_length(',"pks":[]}');
        payload := array_to_string(items, ',');
        IF octet_length(payload) <= budget THEN
            IF payload <> '' THEN
                PERFORM pg_notify(@broadcast_channel@, header || ',"pks":[' || payload || ']}');
            END IF;
        ELSE
            -- Chunk number = a key's start offset (keys and commas before it) divided
            -- by a step that leaves room for the longest key: no chunk exceeds budget.
            PERFORM pg_notify(@broadcast_channel@, header || ',"pks":[' || chunk.keys || ']}')
               FROM (SELECT string_agg(item, ',' ORDER BY ord) AS keys
                       FROM (SELECT item, ord,
                                    (sum(octet_length(item) + 1) OVER (ORDER BY ord ROWS UNBOUNDED PRECEDING)
                                     - octet_length(item) - 1)
                                    / (budget + 1 - max(octet_length(item)) OVER ()) AS n
                               FROM unnest(items) WITH ORDINALITY AS u(item, ord)
                              WHERE octet_length(item) <= budget) numbered
                      GROUP BY n
                      ORDER BY n) chunk;
            IF EXISTS (SELECT FROM unnest(items) AS u(item) WHERE octet_length(item) > budget) THEN
                -- A key too large for a payload: tell listeners the table changed.
                PERFORM pg_notify(@broadcast_channel@, header || ',"pks":null,"overflow":true}');
            END IF;
        END IF;
        RETURN NULL;
    END IF;

    IF TG_OP = 'UPDATE' AND (TG_ARGV[1] = 'images' OR filter_columns IS NOT NULL) THEN
        -- Old and new rows paired by key: row images, changed columns, the filter.
        INSERT INTO @schema@.event (op, schema_name, table_name, pk, old, new, changed)
        SELECT 'update', TG_TABLE_SCHEMA, TG_TABLE_NAME, n.pk,
               CASE WHEN TG_ARGV[1] = 'images' THEN o.j END, CASE WHEN TG_ARGV[1] = 'images' THEN n.j END,
               ARRAY(SELECT e.key FROM jsonb_each(n.j) e
                      WHERE o.j IS NULL OR o.j -> e.key IS DISTINCT FROM e.value ORDER BY e.key)
          FROM (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s) n
          LEFT JOIN (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s) o
            ON o.pk = n.pk
         WHERE filter_columns IS NULL OR EXISTS (
               SELECT 1 FROM unnest(filter_columns) f WHERE o.j IS NULL OR o.j -> f IS DISTINCT FROM n.j -> f);
        wrote := FOUND;
    ELSIF named_key THEN
        -- Keys only: inserts, deletes, and updates without images or a filter.
        EXECUTE format('INSERT INTO @schema@.event (op, schema_name, table_name, pk)'
                       ' SELECT $1, $2, $3, jsonb_build_object(%L, r.%I) FROM %I r', k, k, rows_table)
          USING lower(TG_OP), TG_TABLE_SCHEMA::text, TG_TABLE_NAME::text;
        wrote := true;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO @schema@.event (op, schema_name, table_name, pk, old)
        SELECT 'delete', TG_TABLE_SCHEMA, TG_TABLE_NAME,
               CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END,
               CASE WHEN TG_ARGV[1] = 'images' THEN s.j END
          FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s;
        wrote := FOUND;
    ELSIF key_count = 1 AND TG_ARGV[1] = 'keys' THEN
        INSERT INTO @schema@.event (op, schema_name, table_name, pk)
        SELECT lower(TG_OP), TG_TABLE_SCHEMA, TG_TABLE_NAME, jsonb_build_object(k, to_jsonb(r) -> k)
          FROM @new_table@ r;
        wrote := FOUND;
    ELSE
        INSERT INTO @schema@.event (op, schema_name, table_name, pk, new)
        SELECT lower(TG_OP), TG_TABLE_SCHEMA, TG_TABLE_NAME,
               CASE WHEN key_count = 1 THEN jsonb_build_object(k, s.j -> k) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END,
               CASE WHEN TG_ARGV[1] = 'images' THEN s.j END
          FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s;
        wrote := FOUND;
    END IF;

    -- A wake-up only while a listener sleeps. Constant payload: PostgreSQL
    -- folds repeats into one per transaction.
    IF wrote AND EXISTS (SELECT FROM @schema@.sleeper) THEN
        PERFORM pg_notify(@wakeup_channel@, '');
    END IF;
    RETURN NULL;
END
$pgevents$;

COMMENT ON FUNCTION @capture@() IS @artifact_2@;
