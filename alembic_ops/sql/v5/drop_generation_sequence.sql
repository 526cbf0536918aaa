DROP SEQUENCE @schema@.generation;
