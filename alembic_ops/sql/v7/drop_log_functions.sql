-- #include drop_cursor_functions
DROP FUNCTION @schema@.lane_events_after(@schema@.event, bigint, @schema@.group_cursor);
DROP FUNCTION @schema@.expand(@schema@.event);
