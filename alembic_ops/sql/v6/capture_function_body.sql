        -- Column references win over the function's variables (PL/pgSQL's own
        -- NEW and OLD among them). flags is null while capture is suppressed:
        -- no branch runs.
        body := format($body$#variable_conflict use_column
DECLARE
    flags bigint := CASE WHEN current_setting('pgevents.suppress', true) IN ('on', 'true', '1') THEN NULL
                         ELSE pg_sequence_last_value(@flags@) END;
BEGIN
%1$s    END IF;
    RETURN NULL;
END$body$, inserts);
