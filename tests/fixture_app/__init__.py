"""A small app whose ``migrations/`` folder was written by the real ``flask db`` commands.

``flask db init`` and ``flask db migrate`` wrote the first revision when this
module declared only ``customer`` and ``order_line``; the second revision came
from the module as it is now (``billing.invoice`` and the listeners added),
and the later ones are what ``flask db migrate`` wrote after the library
moved to artifact versions 2, 3, 4 and 5 (``op.upgrade_pgevents``). The files are
committed as generated.

Alembic does not create schemas: like a DBA-provisioned database, the
``billing`` schema must exist before ``flask db upgrade``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from pgevents_migrate import Event, PGEvents

MIGRATIONS = Path(__file__).parent / "migrations"
#: Created outside the migrations, before the first upgrade.
PROVISIONED_SCHEMAS = ("billing",)

db = SQLAlchemy()
migrate = Migrate(directory=str(MIGRATIONS), include_schemas=True)
pgevents = PGEvents()


class Customer(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "customer"
    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(200), nullable=False)
    name = sa.Column(sa.String(200))


class OrderLine(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "order_line"
    order_id = sa.Column(sa.Integer, primary_key=True)
    line_no = sa.Column(sa.Integer, primary_key=True)
    sku = sa.Column(sa.String(50), nullable=False)
    quantity = sa.Column(sa.Integer, nullable=False)


class Invoice(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "invoice"
    __table_args__ = ({"schema": "billing"},)
    id = sa.Column(sa.Integer, primary_key=True)
    customer_id = sa.Column(sa.Integer, nullable=False)
    total_cents = sa.Column(sa.Integer, nullable=False)


@pgevents.listens_for(Customer, ["insert", "update"], columns=["email"])
def customer_changed(event: Event) -> None:
    """Queued: new customers and email changes."""


@pgevents.listens_for(OrderLine, ["insert", "delete"], delivery="broadcast")
def order_line_changed(event: Event) -> None:
    """Broadcast: order lines added or removed (composite key)."""


@pgevents.listens_for(Invoice, "insert")
def invoice_created(event: Event) -> None:
    """Queued: invoices in the ``billing`` schema."""


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    pgevents.init_app(app, db)
    migrate.init_app(app, db)
    return app
