-- Stops a version change unless the capture function carries the comment @expected@.
DO $pgevents$
DECLARE
    found text := obj_description(to_regprocedure(quote_ident(@schema_name@) || '.@capture_function@()'), 'pg_proc');
BEGIN
    IF found IS DISTINCT FROM @expected@ THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: schema ' || quote_ident(@schema_name@) || ' holds '
                || coalesce(quote_literal(found), 'no pgevents capture function') || ', expected ' || quote_literal(@expected@),
            HINT = 'The migration history does not match the database; check the from_version of this operation.';
    END IF;
END
$pgevents$;

