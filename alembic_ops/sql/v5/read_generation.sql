    current_gen := pg_sequence_last_value(@generation@);
