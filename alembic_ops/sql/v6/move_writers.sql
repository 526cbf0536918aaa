        -- Keep the sleeper bit that workers set under this lock.
        LOCK TABLE @schema@.sleeper IN SHARE ROW EXCLUSIVE MODE;
        PERFORM setval(@flags@, next_gen * 2 + pg_sequence_last_value(@flags@) % 2);
