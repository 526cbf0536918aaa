-- pgevents-migrate artifact 1: event log, dead letters, sleeper flags and the capture function.
-- Tokens: @schema@ (quoted identifier); @schema_name@, @wakeup_channel@ and
-- @broadcast_channel@ (literals). Released: never edit; add a new version instead.
DO $pgevents$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = @schema_name@) THEN
        EXECUTE 'CREATE SCHEMA ' || quote_ident(@schema_name@);
        EXECUTE 'COMMENT ON SCHEMA ' || quote_ident(@schema_name@) || ' IS ''created by pgevents-migrate''';
    END IF;
END
$pgevents$;

CREATE TABLE @schema@.event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    pk jsonb NOT NULL,
    old jsonb,
    new jsonb,
    changed text[],
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz,
    done text[] NOT NULL DEFAULT '{}',
    last_error text
);

CREATE TABLE @schema@.dead_letter (
    id bigint PRIMARY KEY,
    op text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    pk jsonb NOT NULL,
    old jsonb,
    new jsonb,
    changed text[],
    txid xid8 NOT NULL,
    created_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    done text[] NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);

-- Handled events, kept only when the worker is configured with a retention.
CREATE TABLE @schema@.processed (
    id bigint PRIMARY KEY,
    op text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    pk jsonb NOT NULL,
    old jsonb,
    new jsonb,
    changed text[],
    txid xid8 NOT NULL,
    created_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_processed_at_idx ON @schema@.processed (processed_at);

-- One row per listener connection that is about to sleep; writers send a
-- wake-up NOTIFY only while a row exists, so busy workers cost writers nothing.
CREATE UNLOGGED TABLE @schema@.sleeper (
    backend_pid integer PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION @schema@.capture() RETURNS trigger
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    delivery text := TG_ARGV[0];
    images boolean := TG_ARGV[1] = 'images';
    filter_columns text[];
    op text := lower(TG_OP);
    pk_columns text[];
    pk_expr text;
    source_sql text;
    inserted bigint;
    header text;
    buffer text := '';
    item text;
    overflow boolean := false;
BEGIN
    IF coalesce(current_setting('pgevents.suppress', true), '') IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    IF TG_NARGS > 2 THEN
        filter_columns := TG_ARGV[2:];
    END IF;

    SELECT array_agg(a.attname::text ORDER BY k.ord)
      INTO pk_columns
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = TG_RELID AND i.indisprimary;
    IF pk_columns IS NULL THEN
        -- The primary key was dropped after the trigger was installed: keep
        -- the write working and identify the row by its full image.
        pk_expr := 'to_jsonb(r)';
    ELSE
        SELECT 'jsonb_build_object(' || string_agg(quote_literal(c) || ', r.' || quote_ident(c), ', ') || ')'
          INTO pk_expr
          FROM unnest(pk_columns) AS c;
    END IF;

    -- source_sql yields one row per captured change: (pk, old, new, changed).
    IF TG_OP = 'INSERT' THEN
        source_sql := 'SELECT ' || pk_expr || ' AS pk, NULL::jsonb AS old, '
            || CASE WHEN images THEN 'to_jsonb(r)' ELSE 'NULL::jsonb' END
            || ' AS new, NULL::text[] AS changed FROM pgevents_new r';
    ELSIF TG_OP = 'DELETE' THEN
        source_sql := 'SELECT ' || pk_expr || ' AS pk, '
            || CASE WHEN images THEN 'to_jsonb(r)' ELSE 'NULL::jsonb' END
            || ' AS old, NULL::jsonb AS new, NULL::text[] AS changed FROM pgevents_old r';
    ELSE
        source_sql := 'SELECT n.pk, '
            || CASE WHEN images THEN 'o.j AS old, n.j AS new' ELSE 'NULL::jsonb AS old, NULL::jsonb AS new' END
            || ', coalesce((SELECT array_agg(e.key ORDER BY e.key) FROM jsonb_each(n.j) e'
            || ' WHERE o.j IS NULL OR o.j -> e.key IS DISTINCT FROM e.value), ''{}'') AS changed'
            || ' FROM (SELECT ' || pk_expr || ' AS pk, to_jsonb(r) AS j FROM pgevents_new r) n'
            || ' LEFT JOIN (SELECT ' || pk_expr || ' AS pk, to_jsonb(r) AS j FROM pgevents_old r) o'
            || ' ON o.pk = n.pk'
            || ' WHERE $1 IS NULL OR EXISTS (SELECT 1 FROM unnest($1) f'
            || ' WHERE o.j IS NULL OR o.j -> f IS DISTINCT FROM n.j -> f)';
    END IF;

    IF delivery = 'broadcast' THEN
        -- Notify-only: primary keys in chunks that stay well under the
        -- 8000-byte payload limit; nothing is persisted.
        header := '{"op":' || to_json(op)::text
            || ',"schema":' || to_json(TG_TABLE_SCHEMA::text)::text
            || ',"table":' || to_json(TG_TABLE_NAME::text)::text;
        FOR item IN EXECUTE 'SELECT s.pk::text FROM (' || source_sql || ') s' USING filter_columns LOOP
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

    EXECUTE 'INSERT INTO @schema@.event (op, schema_name, table_name, pk, old, new, changed)'
        || ' SELECT $2, $3, $4, s.pk, s.old, s.new, s.changed FROM (' || source_sql || ') s'
        USING filter_columns, op, TG_TABLE_SCHEMA::text, TG_TABLE_NAME::text;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted > 0 THEN
        PERFORM 1 FROM @schema@.sleeper LIMIT 1;
        IF FOUND THEN
            -- Constant payload: PostgreSQL folds repeats into one per transaction.
            PERFORM pg_notify(@wakeup_channel@, '');
        END IF;
    END IF;
    RETURN NULL;
END
$pgevents$;

COMMENT ON FUNCTION @schema@.capture() IS 'pgevents-migrate artifact 1';
