-- What writers read once per statement: generation * 2 + sleeping, where
-- generation names the partition they append to (rotate() moves it) and
-- sleeping is 1 while a row of sleeper says a listener waits. Both parts
-- change only under a SHARE ROW EXCLUSIVE lock on sleeper, each computed
-- from the value read under it, since setval is not transactional. SELECT
-- lets every writer read it; workers need UPDATE to set it.
CREATE SEQUENCE @schema@.flags MINVALUE 0 MAXVALUE 7 START 0;
GRANT SELECT ON SEQUENCE @schema@.flags TO PUBLIC;
SELECT setval(@flags@, 0, true);
