-- Statement rows (artifact 7, docs/design/bulk-capture.md): a row of the log
-- takes nextval(event_id) * 1024 as its id and stands for one event, or, when
-- keyed_by names a key column, for one event per key value in pk (events of
-- them, at most 1024), key i (from 1) with id id + i - 1. Ids stay unique and ordered as the
-- sequence is drawn, so cursors, acknowledgements and retries keep their
-- meaning. pk is stored uncompressed: pglz on a large array of keys costs the
-- writer more than it saves.
ALTER TABLE @schema@.event ADD COLUMN keyed_by text, ADD COLUMN events smallint;
ALTER TABLE @schema@.event ALTER COLUMN pk SET STORAGE EXTERNAL;
ALTER TABLE @schema@.event ALTER COLUMN id SET DEFAULT nextval(@event_id@) * 1024;
