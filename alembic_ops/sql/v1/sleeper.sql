-- One row per listener connection that is about to sleep; writers send a
-- wake-up NOTIFY only while a row exists, so busy workers cost writers nothing.
CREATE UNLOGGED TABLE @schema@.sleeper (
    backend_pid integer PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);

