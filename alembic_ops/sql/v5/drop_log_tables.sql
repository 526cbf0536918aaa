DROP TABLE @schema@.dead_letter;
DROP TABLE @schema@.retry;
DROP TABLE @schema@.group_cursor;
DROP TABLE @schema@.consumer_group;
DROP TABLE @schema@.rotation;
DROP TABLE @schema@.event_0, @schema@.event_1, @schema@.event_2, @schema@.event_3, @schema@.event;
-- #include drop_generation_sequence
DROP SEQUENCE @schema@.event_id;
