"""Persistence: one SQLAlchemy Core schema for SQLite and PostgreSQL, Alembic migrations, units of work."""
