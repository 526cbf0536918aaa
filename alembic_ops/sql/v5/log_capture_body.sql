        FOR generation IN 0..3 LOOP
            inserts := inserts || format($insert$    %1$sIF generation = %2$s THEN
        INSERT INTO @schema@.%3$I (gen, op, schema_name, table_name, pk, old, new, changed)
        SELECT %2$s, %4$L, TG_TABLE_SCHEMA, TG_TABLE_NAME, %5$s
          FROM %6$s%7$s;
$insert$, CASE WHEN generation > 0 THEN 'ELS' ELSE '' END, generation, 'event_' || generation, event,
-- #include event_columns
                rows_from, filter);
        END LOOP;
        -- Column references win over the function's variables (PL/pgSQL's own
        -- NEW and OLD among them). generation is -1 while capture is
        -- suppressed: no INSERT runs.
        body := format($body$#variable_conflict use_column
DECLARE
    generation smallint := CASE WHEN current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN -1
                                ELSE pg_sequence_last_value(@generation@) END;
BEGIN
%1$s    END IF;
    -- A wake-up only while a listener sleeps. Constant payload: PostgreSQL
    -- folds repeats into one per transaction.
-- #include wakeup_check
        PERFORM pg_notify(@wakeup_channel@, '');
    END IF;
    RETURN NULL;
END$body$, inserts);
