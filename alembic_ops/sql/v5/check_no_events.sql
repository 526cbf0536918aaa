-- Runs before uninstall.sql unless the migration passes discard_events=True:
-- refuses to drop an event log that holds events some group has not handled,
-- or dead letters.
DO $pgevents$
DECLARE
    pending bigint := (SELECT coalesce(sum(@schema@.pending(g.name)), 0) FROM @schema@.consumer_group g);
    dead bigint := (SELECT count(*) FROM @schema@.dead_letter);
BEGIN
    IF pending > 0 OR dead > 0 THEN
        RAISE EXCEPTION USING
            MESSAGE = 'pgevents: schema ' || @schema_name@ || ' holds ' || pending
                || ' undelivered event(s) and ' || dead
                || ' dead letter(s), which uninstalling would delete',
            HINT = 'Let a worker deliver them and retry or purge the dead letters '
                || '(flask pgevents retry; flask pgevents purge --older-than 0s --dead-letters), '
                || 'or pass discard_events=True to op.uninstall_pgevents to delete them.';
    END IF;
END
$pgevents$;
