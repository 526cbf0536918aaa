-- The event log of artifact 5: rows are only ever inserted, into the
-- partition the sequence generation names, and a partition is emptied with
-- TRUNCATE once every group's cursor has passed it (rotate()); nothing on
-- the hot path updates or deletes a row. docs/design/event-log.md explains
-- the cursors.
-- CACHE 1: an id drawn after event_id's last value was read is above it.
CREATE SEQUENCE @schema@.event_id CACHE 1;
-- #include generation_sequence
-- No NOT NULL checks: only capture functions write rows (see artifact 4).
-- Readers select from event; its rows are those of event_0 ... event_3 (the
-- partitions, one per generation), which capture functions insert into by
-- name and rotate() empties with TRUNCATE. Plain inheritance, not PARTITION BY:
-- on PostgreSQL 15 an insert through a partitioned table sets up tuple
-- routing, and one into a partition checks its constraint, either about 8 us
-- per statement, which put artifact 5's writers behind artifact 4's
-- (docs/benchmarks.md). event itself holds no row: an INSERT naming it fails
-- instead of writing rows no TRUNCATE would reclaim.
CREATE TABLE @schema@.event (
    id bigint DEFAULT nextval(@event_id@),
    gen smallint,
    op text,
    schema_name text,
    table_name text,
    pk jsonb,
    old jsonb,
    new jsonb,
    changed text[],
    txid xid8 DEFAULT pg_current_xact_id(),
    created_at timestamptz DEFAULT now(),
    CONSTRAINT event_holds_no_rows CHECK (false) NO INHERIT
);
CREATE TABLE @schema@.event_0 () INHERITS (@schema@.event);
CREATE TABLE @schema@.event_1 () INHERITS (@schema@.event);
CREATE TABLE @schema@.event_2 () INHERITS (@schema@.event);
CREATE TABLE @schema@.event_3 () INHERITS (@schema@.event);
CREATE INDEX event_0_id_idx ON @schema@.event_0 (id);
CREATE INDEX event_1_id_idx ON @schema@.event_1 (id);
CREATE INDEX event_2_id_idx ON @schema@.event_2 (id);
CREATE INDEX event_3_id_idx ON @schema@.event_3 (id);

-- Each partition's turn: 'current' (writers append), 'left' (every
-- transaction that can have written it has an xid below writers_below),
-- 'empty' (truncated, next in turn).
CREATE TABLE @schema@.rotation (
    gen smallint PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('current', 'left', 'empty')),
    first_id bigint,
    since timestamptz,
    writers_below xid8
);
INSERT INTO @schema@.rotation (gen, state, first_id, since)
VALUES (0, 'current', 0, now()), (1, 'empty', NULL, NULL), (2, 'empty', NULL, NULL), (3, 'empty', NULL, NULL);

-- A consumer group gets every event written after it was registered, unless
-- it lagged beyond rotate()'s max_lag: skipped_at says when it skipped. Its
-- events are split into lanes by row (lane_of): one reader per lane, so the
-- lanes are how many workers read the group's log at once. wanted_at: when
-- a worker last found no lane to take (holders of more than their share
-- then give one up).
CREATE TABLE @schema@.consumer_group (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    lanes smallint NOT NULL DEFAULT 1 CHECK (lanes BETWEEN 1 AND 256),
    skipped_at timestamptz,
    wanted_at timestamptz
);

-- A lane's position in its group's log (one row per lane; lanes repeats the
-- group's count): everything finished in done_snapshot is
-- handled; events of a transaction started later have ids above done_id; the
-- events of each transaction open_xids[i] have ids above open_floors[i]. While
-- a window is open, the events finished in window_snapshot but not in
-- done_snapshot are handled up to last_id. next_id was read before next_xid
-- took its xid: the floor of transactions not yet started when a snapshot that
-- sees next_xid finished was taken. owner and epoch are the reader's lease.
CREATE TABLE @schema@.group_cursor (
    group_name text NOT NULL REFERENCES @schema@.consumer_group ON DELETE CASCADE,
    lane smallint NOT NULL DEFAULT 0,
    lanes smallint NOT NULL DEFAULT 1,
    done_snapshot pg_snapshot NOT NULL,
    done_id bigint NOT NULL,
    open_xids xid8[] NOT NULL,
    open_floors bigint[] NOT NULL,
    window_snapshot pg_snapshot,
    window_id bigint,
    last_id bigint NOT NULL DEFAULT 0,
    next_id bigint,
    next_xid xid8,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    lease_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, lane)
);

-- Failed events, copied out of the log so that the cursor moves on. An
-- ordered event (a listener of it has ordered=True) waits behind the group's
-- earlier ordered retries of its row: only a row's first is claimed.
CREATE TABLE @schema@.retry (
    group_name text NOT NULL REFERENCES @schema@.consumer_group ON DELETE CASCADE,
    id bigint NOT NULL,
    op text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    pk jsonb NOT NULL,
    old jsonb,
    new jsonb,
    changed text[],
    txid xid8 NOT NULL,
    created_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz,
    done text[] NOT NULL DEFAULT '{}',
    last_error text,
    ordered boolean NOT NULL DEFAULT false,
    PRIMARY KEY (group_name, id)
);
CREATE INDEX retry_available_idx ON @schema@.retry (group_name, available_at);
CREATE INDEX retry_row_idx ON @schema@.retry (group_name, table_name, pk) WHERE ordered;

CREATE TABLE @schema@.dead_letter (
    group_name text NOT NULL REFERENCES @schema@.consumer_group ON DELETE CASCADE,
    id bigint NOT NULL,
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
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, id)
);
