-- Resolves the table's primary key now and passes it to the capture function
-- as trigger arguments, so nothing is looked up when a row changes;
-- create_trigger() decides whether the trigger gets a capture function of its own.
-- #include create_triggers_begin
        PERFORM @schema@.create_trigger(
            target, event,
            @trigger_arguments@
                @filter_arguments@);
    END LOOP;
END
$pgevents$;
