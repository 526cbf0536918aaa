-- Only capture functions and the worker write these columns; a NOT NULL
-- check reads back every new event row (about 1.4k instructions a row).
ALTER TABLE @schema@.event
    ALTER COLUMN op DROP NOT NULL,
    ALTER COLUMN schema_name DROP NOT NULL,
    ALTER COLUMN table_name DROP NOT NULL,
    ALTER COLUMN pk DROP NOT NULL,
    ALTER COLUMN txid DROP NOT NULL,
    ALTER COLUMN created_at DROP NOT NULL,
    ALTER COLUMN attempts DROP NOT NULL,
    ALTER COLUMN done DROP NOT NULL;
