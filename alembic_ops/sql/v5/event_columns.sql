                concat_ws(', ', pk,
                          CASE WHEN images AND event = 'delete' THEN 'to_jsonb(old.*)'
                               WHEN images AND event = 'update'
                               THEN format('CASE WHEN %s THEN NULL ELSE to_jsonb(old.*) END', unpaired)
                               ELSE 'NULL' END,
                          CASE WHEN images AND event <> 'delete' THEN 'to_jsonb(new.*)' ELSE 'NULL' END,
                          CASE WHEN event = 'update' AND (images OR cardinality(filter_columns) > 0)
                               THEN format('ARRAY(SELECT e.key FROM jsonb_each(to_jsonb(new.*)) AS e WHERE %s'
                                           ' OR to_jsonb(old.*) -> e.key IS DISTINCT FROM e.value ORDER BY e.key)',
                                           unpaired)
                               ELSE 'NULL' END),
