-- pgevents-migrate artifact 5 (draft): removes one consumer group with its
-- cursor, retries and dead letters; refuses a name not registered
-- (log_functions.sql).
-- Tokens: schema (quoted identifier), group (literal). Never write a token in
-- a comment: a literal may span lines.
SELECT @schema@.drop_group(@group@);
