-- Reading the log through a group's cursor (docs/design/event-log.md, 3.2).
-- A window (done_snapshot, window_snapshot] holds the events of the
-- transactions finished in the second snapshot and not in the first; windows
-- are read one after another, each in id order, so a transaction that commits
-- late lands in the first window taken after its commit, whatever ids were
-- delivered before it.

-- Registers a group of lane_count lanes whose cursors start now (refusing a
-- name already registered). Transactions open now, this one included, count
-- as not finished: the group gets all their events. Their ids have no known
-- floor (0): the first window reads the retained log once.
CREATE @or_replace@FUNCTION @schema@.create_group(new_group text, lane_count integer DEFAULT 1)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    own xid8 := pg_current_xact_id();
    now_snapshot pg_snapshot := pg_current_snapshot();
    done pg_snapshot := now_snapshot;
BEGIN
    -- A snapshot never lists the transaction that takes it: add this one.
    IF own < pg_snapshot_xmax(now_snapshot) THEN
        done := (least(pg_snapshot_xmin(now_snapshot), own)::text || ':' || pg_snapshot_xmax(now_snapshot)::text
                 || ':' || array_to_string(ARRAY(SELECT x FROM pg_snapshot_xip(now_snapshot) AS x
                                                  UNION SELECT own ORDER BY 1), ','))::pg_snapshot;
    END IF;
    INSERT INTO @schema@.consumer_group (name, lanes) VALUES (new_group, lane_count) ON CONFLICT (name) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: consumer group ' || quote_literal(new_group) || ' is already registered',
            HINT = 'A group is registered once: leave this registration out, or drop the group first.';
    END IF;
    INSERT INTO @schema@.group_cursor (group_name, lane, lanes, done_snapshot, done_id, open_xids, open_floors)
    SELECT new_group, l, lane_count, done, 0, open_now.xids, open_now.floors
      FROM generate_series(0, lane_count - 1) AS l,
           (SELECT coalesce(array_agg(x ORDER BY x), '{}') AS xids, coalesce(array_agg(0::bigint), '{}') AS floors
              FROM pg_snapshot_xip(done) AS x) AS open_now;
END
$pgevents$;

-- Removes a group with its cursor, retries and dead letters (refusing a name
-- not registered).
CREATE @or_replace@FUNCTION @schema@.drop_group(old_group text)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
BEGIN
    DELETE FROM @schema@.consumer_group WHERE name = old_group;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: consumer group ' || quote_literal(old_group) || ' is not registered',
            HINT = 'Nothing to drop: the registered groups are the rows of consumer_group.';
    END IF;
END
$pgevents$;

-- Whether the cursor c has handled (or copied to retry) the event (txid, id).
CREATE @or_replace@FUNCTION @schema@.handled(c @schema@.group_cursor, event_txid xid8, event_id bigint)
RETURNS boolean
LANGUAGE sql
STABLE
AS $pgevents$
SELECT pg_visible_in_snapshot(event_txid, c.done_snapshot)
    OR (c.window_snapshot IS NOT NULL AND pg_visible_in_snapshot(event_txid, c.window_snapshot)
        AND event_id <= c.last_id);
$pgevents$;

-- The lane of a row's events among lanes: every event of one row has the same.
CREATE @or_replace@FUNCTION @schema@.lane_of(schema_name text, table_name text, pk jsonb, lanes integer)
RETURNS integer
LANGUAGE sql
IMMUTABLE
AS $pgevents$
SELECT CASE WHEN lanes <= 1 THEN 0
            ELSE (hashtext(schema_name || '.' || table_name || ' ' || pk::text) & 2147483647) % lanes END;
$pgevents$;

-- #include window_events

-- Closes a lane's window at closing_snapshot: what it holds is handled.
-- closing_id was read before an xid that closing_snapshot sees finished;
-- floor_id, the next one, before this transaction took an xid (then fresh).
CREATE @or_replace@FUNCTION @schema@.advance(
    target_group text, target_lane integer, closing_snapshot pg_snapshot, closing_id bigint, floor_id bigint,
    fresh boolean, lease_epoch bigint)
RETURNS void
LANGUAGE sql
AS $pgevents$
UPDATE @schema@.group_cursor c
   SET done_snapshot = closing_snapshot,
       done_id = closing_id,
       -- Transactions still open: the floor they had, or, if they started
       -- since the done snapshot, its done_id.
       (open_xids, open_floors) = (
           SELECT coalesce(array_agg(x ORDER BY x), '{}'), coalesce(array_agg(coalesce(f.floor, c.done_id) ORDER BY x), '{}')
             FROM pg_snapshot_xip(closing_snapshot) AS x
             LEFT JOIN unnest(c.open_xids, c.open_floors) AS f(xid, floor) ON f.xid = x),
       window_snapshot = NULL,
       window_id = NULL,
       last_id = 0,
       next_id = CASE WHEN fresh THEN floor_id ELSE c.next_id END,
       next_xid = CASE WHEN fresh THEN pg_current_xact_id() ELSE c.next_xid END,
       updated_at = clock_timestamp()
 WHERE c.group_name = target_group AND c.lane = target_lane
   -- A reader whose lease changed hands since it looked changes nothing.
   AND (lease_epoch IS NULL OR c.epoch = lease_epoch);
$pgevents$;

-- Takes one more lane of the group for new_owner, leased for lease_seconds,
-- while it holds fewer than its share (the lanes over the live owners, itself
-- counted): a free or expired lane; returns it with its new epoch. With no
-- lane to take, it records that a worker waits (wanted_at): holders of more
-- than their share then give one up (the worker's balance check).
CREATE @or_replace@FUNCTION @schema@.take_lane(target_group text, new_owner text, lease_seconds float8)
RETURNS TABLE (taken_lane integer, taken_epoch bigint)
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    lane_count integer;
    others integer;
    mine integer;
BEGIN
    SELECT g.lanes INTO lane_count FROM @schema@.consumer_group g WHERE g.name = target_group;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PE002',
            MESSAGE = 'pgevents: no consumer group ' || quote_literal(target_group);
    END IF;
    SELECT count(DISTINCT c.owner) FILTER (WHERE c.owner <> new_owner), count(*) FILTER (WHERE c.owner = new_owner)
      INTO others, mine
      FROM @schema@.group_cursor c
     WHERE c.group_name = target_group AND c.owner IS NOT NULL AND c.lease_until >= clock_timestamp();
    IF mine >= ceil(lane_count::numeric / (others + 1)) THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE @schema@.group_cursor c
       SET owner = new_owner, epoch = c.epoch + 1,
           lease_until = clock_timestamp() + make_interval(secs => lease_seconds)
     WHERE (c.group_name, c.lane) = (
           SELECT f.group_name, f.lane FROM @schema@.group_cursor f
            WHERE f.group_name = target_group AND (f.owner IS NULL OR f.lease_until < clock_timestamp())
            ORDER BY f.lane
            LIMIT 1
              FOR UPDATE SKIP LOCKED)
    RETURNING c.lane::integer, c.epoch;
    IF NOT FOUND THEN
        UPDATE @schema@.consumer_group g SET wanted_at = clock_timestamp() WHERE g.name = target_group;
    END IF;
END
$pgevents$;

-- Renews the lease of a lane held with lease_epoch; false once another reader took it.
CREATE @or_replace@FUNCTION @schema@.renew_lease(
    target_group text, target_lane integer, lease_epoch bigint, lease_seconds float8)
RETURNS boolean
LANGUAGE sql
AS $pgevents$
WITH renewed AS (
    UPDATE @schema@.group_cursor c
       SET lease_until = clock_timestamp() + make_interval(secs => lease_seconds)
     WHERE c.group_name = target_group AND c.lane = target_lane AND c.epoch = lease_epoch
    RETURNING 1)
SELECT EXISTS (SELECT FROM renewed);
$pgevents$;

-- The next page_size events of a lane for the holder of its lease lease_epoch. Reads on
-- in the open window; else takes a snapshot and opens a window if it holds
-- events. Writes nothing while there is nothing to read, except that it
-- closes an empty window at most once per idle_close (so reclaiming sees the
-- group move) and first records a floor (next_id) when the cursor has none
-- the snapshot can use. Call it alone in its transaction.
CREATE @or_replace@FUNCTION @schema@.fetch(
    target_group text, target_lane integer, lease_epoch bigint, page_size integer,
    idle_close interval DEFAULT '1 second')
RETURNS SETOF @schema@.event
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    -- Read before this transaction takes an xid (if it does): a floor of
    -- later transactions' ids.
-- #include read_floor
    fresh boolean := pg_current_xact_id_if_assigned() IS NULL;
    c @schema@.group_cursor;
    snapshot_now pg_snapshot;
BEGIN
    SELECT * INTO c FROM @schema@.group_cursor g WHERE g.group_name = target_group AND g.lane = target_lane;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PE002',
            MESSAGE = 'pgevents: no consumer group ' || quote_literal(target_group) || ' lane ' || target_lane;
    END IF;
    IF c.epoch <> lease_epoch THEN
        RAISE EXCEPTION USING ERRCODE = 'PE001',
            MESSAGE = 'pgevents: another reader took the lease of group ' || quote_literal(target_group)
                      || ' lane ' || target_lane;
    END IF;
    IF c.window_snapshot IS NOT NULL THEN
        RETURN QUERY SELECT * FROM @schema@.window_events(c, c.window_snapshot, page_size);
        IF NOT FOUND THEN
            -- The last page was full and the window is done: close it.
            PERFORM @schema@.advance(
                target_group, target_lane, c.window_snapshot, c.window_id, floor_id, fresh, lease_epoch);
        END IF;
        RETURN;
    END IF;
    snapshot_now := pg_current_snapshot();
    IF c.next_id IS NULL OR NOT pg_visible_in_snapshot(c.next_xid, snapshot_now) THEN
        IF fresh THEN
            UPDATE @schema@.group_cursor g
               SET next_id = floor_id, next_xid = pg_current_xact_id()
             WHERE g.group_name = target_group AND g.lane = target_lane AND g.epoch = lease_epoch;
        END IF;
        RETURN;
    END IF;
    c.last_id := 0;
    RETURN QUERY SELECT * FROM @schema@.window_events(c, snapshot_now, page_size);
    IF FOUND THEN
        UPDATE @schema@.group_cursor g
           SET window_snapshot = snapshot_now, window_id = c.next_id, last_id = 0
         WHERE g.group_name = target_group AND g.lane = target_lane AND g.epoch = lease_epoch;
    ELSIF fresh AND c.updated_at <= clock_timestamp() - idle_close THEN
        PERFORM @schema@.advance(target_group, target_lane, snapshot_now, c.next_id, floor_id, fresh, lease_epoch);
    END IF;
END
$pgevents$;

-- Acknowledges a lane's open window up to handled_id, or the whole window
-- with close; false if the lease was taken over (nothing changes then).
CREATE @or_replace@FUNCTION @schema@.ack(
    target_group text, target_lane integer, lease_epoch bigint, handled_id bigint, close boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $pgevents$
DECLARE
-- #include read_floor
    fresh boolean := pg_current_xact_id_if_assigned() IS NULL;
    c @schema@.group_cursor;
BEGIN
    SELECT * INTO c FROM @schema@.group_cursor g
     WHERE g.group_name = target_group AND g.lane = target_lane AND g.epoch = lease_epoch
       FOR UPDATE;
    IF NOT FOUND OR c.window_snapshot IS NULL THEN
        RETURN false;
    END IF;
    IF close THEN
        PERFORM @schema@.advance(
            target_group, target_lane, c.window_snapshot, c.window_id, floor_id, fresh, lease_epoch);
    ELSE
        UPDATE @schema@.group_cursor g SET last_id = handled_id, updated_at = clock_timestamp()
         WHERE g.group_name = target_group AND g.lane = target_lane;
    END IF;
    RETURN true;
END
$pgevents$;

-- #include retry_later

-- #include pending

-- Maintenance, by one worker at a time, alone in its transaction: records the
-- partition writers left, truncates the partitions every group has passed
-- (kept for keep after they were left), and moves writers to the next
-- partition when it is empty and the current one holds switch_events events or
-- is older than switch_after. A lock it cannot get within a second (a
-- long reader of a partition) is left for the next call. A group that has not
-- passed a partition left more than max_lag ago (a group nobody runs) is
-- moved to now: it skips what it had not read, and consumer_group records
-- when. Returns what it did.
CREATE @or_replace@FUNCTION @schema@.rotate(
    switch_events bigint DEFAULT 100000, switch_after interval DEFAULT '10 minutes', keep interval DEFAULT '0',
    max_lag interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    newest_id bigint := coalesce(pg_sequence_last_value(@event_id@), 0);
    current_gen smallint;
    next_gen smallint;
    done text[] := '{}';
    part record;
    state_now record;
    lagging record;
    now_snapshot pg_snapshot;
    session_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'pgevents: rotate() must run alone in its transaction';
    END IF;
-- #include read_generation
    -- Writers that read an older generation took their xids before it moved,
    -- so before this transaction's (taken now, after it moved).
    UPDATE @schema@.rotation
       SET state = 'left', writers_below = pg_current_xact_id(), since = clock_timestamp()
     WHERE state = 'current' AND gen <> current_gen;
    UPDATE @schema@.rotation
       SET state = 'current', first_id = newest_id, since = clock_timestamp(), writers_below = NULL
     WHERE gen = current_gen AND state <> 'current';
    IF max_lag IS NOT NULL THEN
        now_snapshot := pg_current_snapshot();
        FOR lagging IN
            SELECT c.group_name, c.lane, c.next_id, c.next_xid FROM @schema@.group_cursor c
             WHERE EXISTS (SELECT FROM @schema@.rotation r
                            WHERE r.state = 'left' AND r.since <= clock_timestamp() - max_lag
                              AND pg_snapshot_xmin(c.done_snapshot) < r.writers_below
                              -- Not when an old transaction holds the partition anyway.
                              AND pg_snapshot_xmin(now_snapshot) >= r.writers_below)
               -- Only a group no worker reads.
               AND NOT EXISTS (SELECT FROM @schema@.group_cursor l
                                WHERE l.group_name = c.group_name AND l.lease_until >= clock_timestamp())
               FOR UPDATE
        LOOP
            -- A floor read before an xid now_snapshot sees finished, else 0
            -- (correct, only slower until the group's next window closes).
            PERFORM @schema@.advance(
                lagging.group_name, lagging.lane, now_snapshot,
                CASE WHEN lagging.next_xid IS NOT NULL AND pg_visible_in_snapshot(lagging.next_xid, now_snapshot)
                     THEN lagging.next_id ELSE 0 END,
                0, false, NULL);
            UPDATE @schema@.consumer_group SET skipped_at = clock_timestamp() WHERE name = lagging.group_name;
            done := done || ('group ' || quote_literal(lagging.group_name) || ' skipped to now (lagged over '
                             || max_lag::text || ')');
        END LOOP;
    END IF;
    FOR part IN
        SELECT r.gen FROM @schema@.rotation r
         WHERE r.state = 'left' AND r.since <= clock_timestamp() - keep
           AND NOT EXISTS (SELECT FROM @schema@.group_cursor c
                            WHERE pg_snapshot_xmin(c.done_snapshot) < r.writers_below)
         ORDER BY r.gen
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '1s', true);
            EXECUTE 'TRUNCATE ' || quote_ident(@schema_name@) || '.' || quote_ident('event_' || part.gen);
            UPDATE @schema@.rotation
               SET state = 'empty', first_id = NULL, since = NULL, writers_below = NULL
             WHERE gen = part.gen;
            done := done || ('truncated event_' || part.gen);
        EXCEPTION WHEN lock_not_available THEN
            done := done || ('event_' || part.gen || ' busy');
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', session_lock_timeout, true);
    next_gen := (current_gen + 1) % 4;
    SELECT r.first_id, r.since INTO state_now FROM @schema@.rotation r WHERE r.gen = current_gen;
    IF (SELECT r.state = 'empty' FROM @schema@.rotation r WHERE r.gen = next_gen)
       AND newest_id > state_now.first_id
       AND (newest_id - state_now.first_id >= switch_events OR state_now.since <= clock_timestamp() - switch_after) THEN
-- #include move_writers
        UPDATE @schema@.rotation
           SET state = 'current', first_id = newest_id, since = clock_timestamp()
         WHERE gen = next_gen;
        done := done || ('writers moved to event_' || next_gen);
    END IF;
    RETURN array_to_string(done, '; ');
END
$pgevents$;
