-- The capture function of artifact 5 is only its marker (the comment the
-- install sets): create_trigger gives every trigger a function of its own, so
-- no trigger calls this one. One pointed at it by hand fails its writes,
-- saying what to do, instead of writing events where no reader looks.
CREATE @or_replace@FUNCTION @capture@() RETURNS trigger
LANGUAGE plpgsql
AS $pgevents$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = format('pgevents: trigger %s on %s.%s calls capture(), which captures nothing from artifact 5 on',
                         TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME),
        HINT = 'Re-create the trigger in a migration: drop_pgevent_trigger, then create_pgevent_trigger.';
END
$pgevents$;
