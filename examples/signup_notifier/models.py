"""The example's tables: users (integer key) and subscriptions (composite text key)."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]


class Subscription(db.Model):  # type: ignore[name-defined,misc]
    """Who follows which topic; the primary key is (topic, email)."""

    __tablename__ = "subscription"

    topic: Mapped[str] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(primary_key=True)
