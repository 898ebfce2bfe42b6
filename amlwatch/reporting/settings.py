"""The reporting sections of the configuration, where the reporting code has always imported them from.

They are defined in `amlwatch.reportconfig`, in the bottom import layer beside `amlwatch.config`
(DEVELOPERS.md), which reads them.
"""

from amlwatch.reportconfig import (
    MAINLAND_OUTSIDE_REGIONS,
    LargeValueConfig,
    PaymentKindConfig,
    RiskConfig,
    SuspiciousReportConfig,
    WatchlistConfig,
    parse_offset,
)

__all__ = ["MAINLAND_OUTSIDE_REGIONS", "LargeValueConfig", "PaymentKindConfig", "RiskConfig",
           "SuspiciousReportConfig", "WatchlistConfig", "parse_offset"]
