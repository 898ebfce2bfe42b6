"""Helpers shared by the test folders: hand-made events and streams, archives, Kafka brokers and workers.

Importable as `support` (pytest's `pythonpath` in pyproject.toml)."""
