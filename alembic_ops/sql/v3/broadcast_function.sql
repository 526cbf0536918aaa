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

