-- The wake-up flag that generated capture functions read: 1 while a row of
-- sleeper says a listener waits, else 0. Workers recompute it from sleeper
-- under a lock on that table whenever they add or remove a row; reading a
-- sequence costs writers a tenth of scanning the table.
CREATE SEQUENCE @schema@.sleeping MINVALUE 0 MAXVALUE 1 START 0;
-- Every role that writes to a captured table reads it: the value says only
-- whether a listener sleeps (SELECT does not allow nextval or setval).
GRANT SELECT ON SEQUENCE @schema@.sleeping TO PUBLIC;
-- Workers set it: roles that may delete sleeper rows (what workers run as)
-- may update it too, so an upgrade needs no new grant for them either.
DO $pgevents$
DECLARE
    worker text;
BEGIN
    FOR worker IN
        SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
          FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid = to_regclass(quote_ident(@schema_name@) || '.sleeper')
           AND a.privilege_type = 'DELETE' AND a.grantee <> c.relowner
    LOOP
        EXECUTE 'GRANT UPDATE ON SEQUENCE @schema@.sleeping TO ' || worker;
    END LOOP;
END
$pgevents$;
SELECT setval(@sleeping@, (EXISTS (SELECT FROM @schema@.sleeper))::integer);
