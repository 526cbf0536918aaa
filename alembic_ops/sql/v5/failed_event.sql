      FROM @schema@.event e, lease
     WHERE e.id = failed_id AND lease.held
