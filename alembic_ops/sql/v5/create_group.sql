-- pgevents-migrate artifact 5 (draft): registers one consumer group with its
-- lanes; refuses a name already registered (log_functions.sql).
-- Tokens: schema (quoted identifier), group (literal), lanes (an integer).
-- Never write a token in a comment: a literal may span lines.
SELECT @schema@.create_group(@group@, @lanes@);
