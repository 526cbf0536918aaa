-- The partition writers append to, read once per statement by the capture
-- functions (SELECT lets any writer read it, not move it).
CREATE SEQUENCE @schema@.generation MINVALUE 0 MAXVALUE 3 START 0 CYCLE;
GRANT SELECT ON SEQUENCE @schema@.generation TO PUBLIC;
SELECT setval(@generation@, 0, true);
