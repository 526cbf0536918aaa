DROP TRIGGER @trigger@ ON @table@;
