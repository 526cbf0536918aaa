-- pgevents-migrate artifact 6 -> 5: flags splits into generation and
-- sleeping again (the sleeping sequence is flags renamed back, with its
-- grants). Roles that may set flags (workers) may move generation.
-- #include expect
LOCK TABLE @schema@.rotation IN EXCLUSIVE MODE;
LOCK TABLE @schema@.sleeper IN SHARE ROW EXCLUSIVE MODE;
-- #include generation_sequence
SELECT setval(@generation@, pg_sequence_last_value(@flags@) / 2, true);
DO $pgevents$
DECLARE
    worker text;
BEGIN
    FOR worker IN
        SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
          FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid = @flags@::regclass AND a.privilege_type = 'UPDATE' AND a.grantee <> c.relowner
    LOOP
        EXECUTE 'GRANT UPDATE ON SEQUENCE @schema@.generation TO ' || worker;
    END LOOP;
END
$pgevents$;
SELECT setval(@flags@, pg_sequence_last_value(@flags@) % 2);
ALTER SEQUENCE @schema@.flags MAXVALUE 1;
ALTER SEQUENCE @schema@.flags RENAME TO sleeping;
-- #include log_functions
-- #include trigger_functions
SELECT @schema@.recreate_triggers(true);
COMMENT ON FUNCTION @capture@() IS @artifact_5@;
