        -- One branch per value of flags (generation * 2 + sleeping), those
        -- with no listener sleeping first: a statement reads flags once and
        -- tests it against constants, and only the branches of a sleeping
        -- listener send a wake-up (a constant payload: PostgreSQL folds
        -- repeats into one per transaction). Measured in instructions, each
        -- expression a statement evaluates costs about as much as a sequence
        -- read, and so does a bigint to smallint assignment (docs/benchmarks.md).
        FOR branch IN 0..7 LOOP
            inserts := inserts || format($insert$    %1$sIF flags = %2$s THEN
        INSERT INTO @schema@.%3$I (gen, op, schema_name, table_name, pk, old, new, changed)
        SELECT %4$s, %5$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, %6$s
          FROM %7$s%8$s;
%9$s$insert$, CASE WHEN branch > 0 THEN 'ELS' ELSE '' END, branch % 4 * 2 + branch / 4,
                'event_' || branch % 4, branch % 4, event,
-- #include event_columns
                rows_from, filter,
                CASE WHEN branch >= 4
                     THEN format(E'        IF FOUND THEN\n            PERFORM pg_notify(%L, \'\');\n        END IF;\n',
                                 @wakeup_channel@)
                     ELSE '' END);
        END LOOP;
-- #include capture_function_body
