"""The root of every error amlwatch raises on purpose.

Each error also keeps the builtin base it had before there was a root
(`ConfigError(AmlwatchError, ValueError)`, `TopicError(AmlwatchError,
RuntimeError)`), so callers that catch `ValueError` keep working, while the
CLI catches this one class and prints one line naming the offending field.
This module imports nothing of amlwatch: every layer may use it.
"""

from __future__ import annotations


class AmlwatchError(Exception):
    """An error amlwatch raises on purpose; `field` names what was wrong (a config key, an event field,
    a topic, a model metadata key) when one thing is to blame."""

    field: str | None = None

    def describe(self) -> str:
        """One line for a user: the field (when known and not already said), then the message."""
        message = str(self) or type(self).__name__
        field = getattr(self, "field", None)
        if field and not message.startswith(f"{field}:") and field not in message:
            return f"{field}: {message}"
        return message
