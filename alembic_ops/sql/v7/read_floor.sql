    -- The highest id of a row drawn so far (rows take nextval * 1024).
    floor_id bigint := (coalesce(pg_sequence_last_value(@event_id@), 0) + 1) * 1024 - 1;
