    IF FOUND AND pg_sequence_last_value(@sleeping@) > 0 THEN
