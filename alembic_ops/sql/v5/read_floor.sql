    floor_id bigint := coalesce(pg_sequence_last_value(@event_id@), 0);
