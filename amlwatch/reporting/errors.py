"""The reporting errors: typed, each naming the offending field (arch's `AmlwatchError` re-roots them)."""

from __future__ import annotations


class ReportingError(ValueError):
    """A reporting input that cannot be used; `field` names what is wrong, `source` where (file:line)."""

    def __init__(self, field: str, reason: str, source: str = ""):
        super().__init__(f"{source + ': ' if source else ''}{field}: {reason}")
        self.field = field
        self.reason = reason
        self.source = source
