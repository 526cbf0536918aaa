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

