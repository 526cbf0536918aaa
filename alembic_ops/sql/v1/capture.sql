-- Trigger arguments: delivery ('queue' or 'broadcast'), 'images' or 'keys',
-- the number of primary-key columns, those columns, then the update filter
-- columns. All SQL below is static, so PL/pgSQL caches its plans per table;
-- rows are read as jsonb once (OFFSET 0 keeps the planner from recomputing it).
CREATE @or_replace@FUNCTION @capture@() RETURNS trigger
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    delivery text := TG_ARGV[0];
    images boolean := TG_ARGV[1] = 'images';
    key_count integer := TG_ARGV[2]::integer;
    key_columns text[] := TG_ARGV[3:2 + key_count];
    filter_columns text[];
    broadcast boolean := TG_ARGV[0] = 'broadcast';
    keys jsonb[];
    header text;
    buffer text := '';
    item text;
    overflow boolean := false;
BEGIN
    IF coalesce(current_setting('pgevents.suppress', true), '') IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    IF TG_NARGS > 3 + key_count THEN
        filter_columns := TG_ARGV[3 + key_count:];
    END IF;

    IF TG_OP = 'UPDATE' AND (images OR filter_columns IS NOT NULL) THEN
        -- Old and new rows paired by key: row images, changed columns, the filter.
        IF broadcast THEN
            keys := ARRAY(
                SELECT n.pk
                  FROM (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s) n
                  LEFT JOIN (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s) o
                    ON o.pk = n.pk
                 WHERE filter_columns IS NULL OR EXISTS (
                       SELECT 1 FROM unnest(filter_columns) f WHERE o.j IS NULL OR o.j -> f IS DISTINCT FROM n.j -> f));
        ELSE
            INSERT INTO @schema@.event (op, schema_name, table_name, pk, old, new, changed)
            SELECT 'update', TG_TABLE_SCHEMA, TG_TABLE_NAME, n.pk,
                   CASE WHEN images THEN o.j END, CASE WHEN images THEN n.j END,
                   ARRAY(SELECT e.key FROM jsonb_each(n.j) e
                          WHERE o.j IS NULL OR o.j -> e.key IS DISTINCT FROM e.value ORDER BY e.key)
              FROM (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s) n
              LEFT JOIN (SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END AS pk, s.j FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s) o
                ON o.pk = n.pk
             WHERE filter_columns IS NULL OR EXISTS (
                   SELECT 1 FROM unnest(filter_columns) f WHERE o.j IS NULL OR o.j -> f IS DISTINCT FROM n.j -> f);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF broadcast THEN
            keys := ARRAY(SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s);
        ELSE
            INSERT INTO @schema@.event (op, schema_name, table_name, pk, old)
            SELECT 'delete', TG_TABLE_SCHEMA, TG_TABLE_NAME, CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END, CASE WHEN images THEN s.j END
              FROM (SELECT to_jsonb(r) AS j FROM @old_table@ r OFFSET 0) s;
        END IF;
    ELSE
        -- Inserts, and updates that need neither images nor a filter: new rows only.
        IF broadcast THEN
            keys := ARRAY(SELECT CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s);
        ELSE
            INSERT INTO @schema@.event (op, schema_name, table_name, pk, new)
            SELECT lower(TG_OP), TG_TABLE_SCHEMA, TG_TABLE_NAME, CASE WHEN key_count = 1 THEN jsonb_build_object(key_columns[1], s.j -> key_columns[1]) ELSE (SELECT jsonb_object_agg(c, s.j -> c) FROM unnest(key_columns) c) END,
                   CASE WHEN images THEN s.j END
              FROM (SELECT to_jsonb(r) AS j FROM @new_table@ r OFFSET 0) s;
        END IF;
    END IF;

    IF broadcast THEN
        -- Notify-only: primary keys in chunks that stay well under the
        -- 8000-byte payload limit; nothing is persisted.
        header := '{"op":' || to_json(lower(TG_OP))::text
            || ',"schema":' || to_json(TG_TABLE_SCHEMA::text)::text
            || ',"table":' || to_json(TG_TABLE_NAME::text)::text;
        FOREACH item IN ARRAY keys::text[] LOOP
            IF octet_length(header) + octet_length(item) > 7500 THEN
                overflow := true;
                CONTINUE;
            END IF;
            IF octet_length(header) + octet_length(buffer) + octet_length(item) > 7500 THEN
                PERFORM pg_notify(@broadcast_channel@, header || ',"pks":[' || buffer || ']}');
                buffer := '';
            END IF;
            buffer := buffer || CASE WHEN buffer = '' THEN '' ELSE ',' END || item;
        END LOOP;
        IF buffer <> '' THEN
            PERFORM pg_notify(@broadcast_channel@, header || ',"pks":[' || buffer || ']}');
        END IF;
        IF overflow THEN
            -- A key too large for a payload: tell listeners the table changed.
            PERFORM pg_notify(@broadcast_channel@, header || ',"pks":null,"overflow":true}');
        END IF;
        RETURN NULL;
    END IF;

    -- FOUND: the INSERT above wrote at least one event.
    IF FOUND THEN
        PERFORM 1 FROM @schema@.sleeper LIMIT 1;
        IF FOUND THEN
            -- Constant payload: PostgreSQL folds repeats into one per transaction.
            PERFORM pg_notify(@wakeup_channel@, '');
        END IF;
    END IF;
    RETURN NULL;
END
$pgevents$;

COMMENT ON FUNCTION @capture@() IS @artifact_1@;
