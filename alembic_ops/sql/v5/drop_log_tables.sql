DROP TABLE @schema@.dead_letter;
DROP TABLE @schema@.retry;
DROP TABLE @schema@.group_cursor;
DROP TABLE @schema@.consumer_group;
DROP TABLE @schema@.rotation;
DROP TABLE @schema@.event;
DROP SEQUENCE @schema@.generation;
DROP SEQUENCE @schema@.event_id;
