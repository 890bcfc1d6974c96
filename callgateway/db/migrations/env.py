"""Alembic environment: the URL comes from the caller (callgateway db upgrade), never a file."""

from __future__ import annotations

from alembic import context

from callgateway.db.models import Base
from callgateway.db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _migrate(connectable)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


run()
