-- Drops the generated capture functions that no trigger uses any more (their
-- trigger was dropped, or their table); with unused_only false, all of them,
-- failing on the first one a trigger still uses.
CREATE @or_replace@FUNCTION @schema@.drop_capture_functions(unused_only boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    unused regprocedure;
BEGIN
    FOR unused IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace = to_regnamespace(quote_ident(@schema_name@))
           AND starts_with(obj_description(p.oid, 'pg_proc'), @generated_marker@)
           AND NOT (unused_only AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgfoid = p.oid))
    LOOP
        EXECUTE 'DROP FUNCTION ' || unused::text;
    END LOOP;
END
$pgevents$;

-- Re-creates every pgevents trigger of this schema with its arguments, with
-- or without capture functions of their own (version changes).
CREATE @or_replace@FUNCTION @schema@.recreate_triggers(specialize boolean)
RETURNS void
LANGUAGE plpgsql
AS $pgevents$
DECLARE
    existing record;
    arguments text[];
    rest bytea;
    cut integer;
BEGIN
    FOR existing IN
        SELECT t.tgrelid::regclass AS target, t.tgname::text AS name, t.tgargs AS raw
          FROM pg_trigger t
          JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE p.pronamespace = to_regnamespace(quote_ident(@schema_name@))
           AND ((p.proname = @capture_name@ AND p.pronargs = 0)
                OR starts_with(obj_description(p.oid, 'pg_proc'), @generated_marker@))
           AND NOT t.tgisinternal AND t.tgparentid = 0
           AND t.tgname IN (@trigger_names@)
    LOOP
        -- tgargs: each argument followed by a NUL byte, in the server encoding.
        arguments := '{}';
        rest := existing.raw;
        WHILE length(rest) > 0 LOOP
            cut := position(decode('00', 'hex') IN rest);
            arguments := arguments || convert_from(substr(rest, 1, cut - 1), getdatabaseencoding());
            rest := substr(rest, cut + 1);
        END LOOP;
        EXECUTE 'DROP TRIGGER ' || quote_ident(existing.name) || ' ON ' || existing.target::text;
        PERFORM @schema@.drop_capture_functions();
        PERFORM @schema@.create_trigger(existing.target, substr(existing.name, @event_start@), arguments, specialize);
    END LOOP;
END
$pgevents$;
