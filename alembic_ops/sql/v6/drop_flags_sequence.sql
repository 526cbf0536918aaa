DROP SEQUENCE @schema@.flags;
