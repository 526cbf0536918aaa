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

