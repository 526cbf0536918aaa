CREATE TRIGGER @trigger@ AFTER @event@ ON @table@ REFERENCING @transition@ FOR EACH STATEMENT EXECUTE FUNCTION @schema@.capture(@arguments@);
