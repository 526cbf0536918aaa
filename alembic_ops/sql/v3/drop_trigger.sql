DROP TRIGGER @trigger@ ON @table@;
SELECT @schema@.drop_capture_functions();
