DROP FUNCTION @schema@.recreate_triggers(boolean);
DROP FUNCTION @schema@.drop_capture_functions(boolean);
DROP FUNCTION @schema@.create_trigger(regclass, text, text[], boolean);
DROP FUNCTION @schema@.broadcast(text, text, text, text[]);
