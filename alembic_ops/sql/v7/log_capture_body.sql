        -- One branch per value of flags (generation * 2 + sleeping), those
        -- with no listener sleeping first: a statement reads flags once and
        -- tests it against constants, and only the branches of a sleeping
        -- listener send a wake-up (a constant payload: PostgreSQL folds
        -- repeats into one per transaction). Events that carry only a
        -- single-column key go in statement rows (statement_rows.sql) when the
        -- statement wrote more than one row, the key values in the order the
        -- transition table gives them: one row for up to 1024, else one per
        -- 1024 (numbering and grouping cost more). A single row keeps a row of
        -- its own: counted in instructions, building the array costs it a
        -- third more.
        FOR branch IN 0..7 LOOP
            inserts := inserts || format($insert$    %1$sIF flags = %2$s THEN
        INSERT INTO @schema@.%3$I (gen, op, schema_name, table_name, pk, old, new, changed)
        SELECT %4$s, %5$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, %6$s
          FROM %7$s%8$s;
%9$s%10$s$insert$, CASE WHEN branch > 0 THEN 'ELS' ELSE '' END, branch % 4 * 2 + branch / 4,
                'event_' || branch % 4, branch % 4, event,
-- #include event_columns
                rows_from,
                -- (The test for statement rows, here and below: a single-column key, no images, no filter.)
                CASE WHEN cardinality(key_columns) = 1 AND key_columns[1] = ANY(present) AND NOT images
                          AND NOT conditional AND cardinality(filter_columns) = 0
                     THEN format(E'\n         WHERE NOT EXISTS (SELECT FROM %s OFFSET 1)', rows_from)
                     ELSE filter END,
                CASE WHEN cardinality(key_columns) = 1 AND key_columns[1] = ANY(present) AND NOT images
                          AND NOT conditional AND cardinality(filter_columns) = 0
                     THEN format($rows$        IF NOT FOUND THEN
            INSERT INTO @schema@.%1$I (gen, op, schema_name, table_name, keyed_by, pk, events)
            SELECT %2$s, %3$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, %4$L, to_jsonb(k.keys), cardinality(k.keys)
              FROM (SELECT ARRAY(SELECT %5$s.%4$I FROM %6$s) AS keys) AS k
             WHERE cardinality(k.keys) BETWEEN 2 AND 1024;
            IF NOT FOUND THEN
                INSERT INTO @schema@.%1$I (gen, op, schema_name, table_name, keyed_by, pk, events)
                SELECT %2$s, %3$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, %4$L, to_jsonb(array_agg(k.key ORDER BY k.n)),
                       count(*)
                  FROM (SELECT %5$s.%4$I AS key, row_number() OVER () AS n FROM %6$s) AS k
                 GROUP BY (k.n - 1) / 1024;
            END IF;
        END IF;
$rows$, 'event_' || branch % 4, branch % 4, event, key_columns[1], side, rows_from)
                     ELSE '' END,
                CASE WHEN branch >= 4
                     THEN format(E'        IF FOUND THEN\n            PERFORM pg_notify(%L, \'\');\n        END IF;\n',
                                 @wakeup_channel@)
                     ELSE '' END);
        END LOOP;
-- #include capture_function_body
