"""The shared core: what a trigger captures (``TriggerSpec``), the names and
argument layout the SQL and Python agree on, identifier checks and quoting,
the catalog reader, and the errors. Imported by the Alembic plugin
(``alembic_ops``) and the Flask runtime (``pgevents_migrate``); imports neither.
"""
