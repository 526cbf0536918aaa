      -- The event's row is the one at or below its id by less than 1024.
      FROM @schema@.event row_of CROSS JOIN LATERAL @schema@.expand(row_of) AS e, lease
     WHERE row_of.id > failed_id - 1024 AND row_of.id <= failed_id AND e.id = failed_id AND lease.held
