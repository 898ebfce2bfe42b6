"""Typed configuration of the reporting duties: payment kinds, large-value and suspicious reports,
customer risk rating and watchlists (docs/REPORTING.md).

Sections of `amlwatch.config.Config`: `[payment_kind]`, `[lvtr]`, `[str_report]`, `[risk]`,
`[watchlist]`. The amounts and codes are drafts taken from secondary sources; a compliance officer
is expected to check and override them. Plain settings beside `amlwatch.config`, in the bottom
import layer (DEVELOPERS.md): the config and the detectors read them, so they cannot live in
`amlwatch.reporting`, which builds on both (`amlwatch.reporting.settings` re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

MAINLAND_OUTSIDE_REGIONS = ("CN-HK", "CN-MO", "CN-TW", "CN-91", "CN-92", "CN-71")
"""ISO 3166-2:CN codes of Hong Kong, Macao and Taiwan (new and old spellings): outside the mainland
for cross-border purposes, though they start with `CN-`."""


def _with_defaults(obj, name: str) -> None:
    """A partial table in TOML overrides only the keys it names; the other defaults stay."""
    default = type(obj).__dataclass_fields__[name].default_factory()
    object.__setattr__(obj, name, {**default, **getattr(obj, name)})


def _config_error(key: str, message: str):
    from amlwatch.config import ConfigError

    return ConfigError(key, message)


@dataclass(frozen=True)
class PaymentKindConfig:
    """How a trade's payment fields map to the four large-value kinds (amlwatch/paymentkind.py)."""

    cash_methods: tuple[str, ...] = ("digital_rmb",)
    """Methods treated as cash: e-CNY is central-bank money, the PBOC's cash equivalent."""
    organisation_accounts: tuple[str, ...] = ()
    """Accounts of organisations (the contract carries no customer-type field)."""
    organisation_prefixes: tuple[str, ...] = ()
    """Account-id prefixes a platform reserves for organisations, e.g. "org-"."""
    home_country: str = "CN"
    outside_regions: tuple[str, ...] = MAINLAND_OUTSIDE_REGIONS
    """Regions that start with the home country's code yet count as cross-border."""


@dataclass(frozen=True)
class LargeValueConfig:
    """Large-value transaction report lines, per customer, per event-time day, per direction."""

    cash_threshold: Decimal = Decimal("50000")
    organisation_threshold: Decimal = Decimal("2000000")
    individual_domestic_threshold: Decimal = Decimal("500000")
    individual_cross_border_threshold: Decimal = Decimal("200000")
    day_offset: str = "+08:00"
    """UTC offset of the reporting day (Asia/Shanghai has kept +08:00 without DST since 1991)."""
    close_after_minutes: float = 10.0
    """A day closes once the watermark is this far past its end (the registry grace, by default)."""
    late_days: float = 7.0
    """How long a closed day's totals are kept to assess late trades (supplements)."""
    trait_codes: dict[str, str] = field(default_factory=lambda: {
        "cash": "0501", "organisation": "0502", "individual_domestic": "0503",
        "individual_cross_border": "0504"})
    """Large-value trait codes per kind, as the third-party copy of the interface spec lists them."""
    institution_name: str = ""
    institution_code: str = ""
    """The reporting institution's name and code in the XML header (the platform fills them in)."""
    topic: str = "aml.reports"
    """Kafka topic of the report records (the worker's wiring, docs/REPORTING.md)."""

    def __post_init__(self):
        _with_defaults(self, "trait_codes")
        if parse_offset(self.day_offset) is None:
            raise _config_error("lvtr.day_offset", f"expected +HH:MM or -HH:MM, got {self.day_offset!r}")

    def threshold(self, kind: str) -> Decimal:
        return {"cash": self.cash_threshold, "organisation": self.organisation_threshold,
                "individual_domestic": self.individual_domestic_threshold,
                "individual_cross_border": self.individual_cross_border_threshold}[kind]

    @property
    def offset_seconds(self) -> int:
        return parse_offset(self.day_offset)


def parse_offset(text: str) -> int | None:
    """Seconds east of UTC of "+08:00"; None when not of that form."""
    if not isinstance(text, str) or len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    hours, minutes = text[1:3], text[4:6]
    if not (hours.isdigit() and minutes.isdigit()) or int(hours) > 14 or int(minutes) > 59:
        return None
    seconds = int(hours) * 3600 + int(minutes) * 60
    return seconds if text[0] == "+" else -seconds


@dataclass(frozen=True)
class SuspiciousReportConfig:
    """Suspicious transaction report drafts: codes and urgency mapped from typologies."""

    offence_codes: dict[str, str] = field(default_factory=lambda: {
        "wash_trading": "money_laundering", "structuring": "money_laundering",
        "prohibited_settlement": "illegal_fund_raising_or_forex", "prohibited_asset": "illegal_financial_business",
        "speculation": "market_manipulation", "identity_mismatch": "identity_fraud", "anomaly": "other"})
    """Suspected offence per typology (free text codes until counsel confirms the code list)."""
    trait_codes: dict[str, str] = field(default_factory=lambda: {
        "wash_trading": "ST-WASH", "structuring": "ST-SPLIT", "prohibited_settlement": "ST-CRYPTO",
        "prohibited_asset": "ST-FINASSET", "speculation": "ST-SPEC", "identity_mismatch": "ST-IDENT",
        "anomaly": "ST-OTHER"})
    """Suspicious-trait code per typology; replace with the platform's regulator-issued codes."""
    urgent_typologies: tuple[str, ...] = ("prohibited_settlement",)
    """A report listing an alert of these typologies (or a watchlist block hit) is urgent."""
    urgent_severity: str = "critical"
    """A report with an alert of this severity or above is urgent."""
    institution_name: str = ""
    institution_code: str = ""

    def __post_init__(self):
        _with_defaults(self, "offence_codes")
        _with_defaults(self, "trait_codes")


@dataclass(frozen=True)
class RiskConfig:
    """Customer risk rating ruleset; `version` goes into every rating."""

    version: str = "2026.1"
    medium_at: float = 25.0
    high_at: float = 60.0
    kyc_unverified: float = 20.0
    """KYC level below 2 (no real-name verification)."""
    kyc_basic: float = 5.0
    """KYC level 2 (no bank card or face match)."""
    alert_points: dict[str, float] = field(default_factory=lambda: {
        "wash_trading": 12.0, "speculation": 5.0, "identity_mismatch": 10.0, "prohibited_settlement": 25.0,
        "prohibited_asset": 10.0, "structuring": 15.0, "anomaly": 5.0})
    max_alerts_per_typology: int = 3
    """Alerts of one typology beyond this add nothing (one noisy detector cannot make a customer high)."""
    confirmed_multiplier: float = 2.0
    """An alert an analyst confirmed (labels file) weighs this much more; a dismissed one nothing."""
    linked_high: float = 25.0
    linked_medium: float = 10.0
    """Another account on the same national ID rated high / medium (on its own risk, without links)."""
    peer_multiple: float = 10.0
    peer_points: float = 15.0
    """Paid volume over `activity_days` above `peer_multiple` times the median active account's."""
    activity_days: float = 30.0
    peer_min_accounts: int = 20
    watchlist_block: float = 100.0
    watchlist_watch: float = 30.0
    topic: str = "aml.ratings"
    """Kafka topic of the ratings (the worker's wiring, docs/REPORTING.md); empty: the worker rates nothing."""
    labels: str = ""
    """The worker's analysts' dispositions: a labels file as `replay --labels` reads (read when a rating
    stage partition is loaded); empty: every alert open (weight 1)."""

    def __post_init__(self):
        _with_defaults(self, "alert_points")
        if not 0 < self.medium_at < self.high_at:
            raise _config_error("risk.medium_at", "must be above 0 and below risk.high_at")


@dataclass(frozen=True)
class WatchlistConfig:
    """Block and watch lists (change-log files, docs/REPORTING.md)."""

    files: tuple[str, ...] = ()
    """Watchlist change logs (JSON Lines); empty: no lists, the detector raises nothing."""
    topic: str = ""
    """A compacted topic of entry states (on `[kafka] bootstrap`), read with the files; empty: none."""
    reload_check_seconds: float = 30.0
    """Live: how often (wall clock) the files' mtimes are checked; replay loads them once."""
