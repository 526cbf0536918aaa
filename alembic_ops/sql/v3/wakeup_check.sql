    IF FOUND AND EXISTS (SELECT FROM @schema@.sleeper) THEN
