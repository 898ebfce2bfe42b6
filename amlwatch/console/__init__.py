"""The analyst console: alert inbox, investigation views, cases and the audit trail, served in a browser.

A small Starlette app (`app.py`) over a SQLAlchemy store (`schema.py`, Alembic
migrations) on SQLite or PostgreSQL. Alerts and events come in through
`ingest.py` (files, the alert topic, the record archive); analysts' decisions
go back out as labels (`labels.py`). docs/CONSOLE.md describes it.
"""
