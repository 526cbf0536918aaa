"""signup_notifier: the pgevents-migrate example app.

``create_app()`` reads ``DATABASE_URL``. Try it with
``python -m examples.signup_notifier`` (see ``demo.py``), or as any Flask app:
``flask --app examples.signup_notifier db upgrade`` then
``flask --app examples.signup_notifier pgevents run``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate

from .listeners import pgevents
from .models import db
from .web import web

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)
    url = database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL, or run `python -m examples.signup_notifier` for the demo")
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["PGEVENTS_POLL_INTERVAL"] = 2.0
    db.init_app(app)
    Migrate(app, db, directory=str(MIGRATIONS))
    pgevents.init_app(app)
    app.register_blueprint(web)
    return app
