"""Alembic environment. Online runs get their connection from ``storage.migrations.upgrade``."""

from alembic import context
from sqlalchemy import Connection

from storage.tables import metadata


def _online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _offline(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
else:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run keybot migrations through storage.migrations.upgrade(engine)")
    _online(connection)
