"""One typed configuration for every detector threshold and window.

Defaults live here; a TOML file overrides any subset. The hash of the
effective configuration goes into every alert's `versions.config` so an
analyst can tell which thresholds raised it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson

from amlwatch.errors import AmlwatchError
from amlwatch.reportconfig import (
    LargeValueConfig,
    PaymentKindConfig,
    RiskConfig,
    SuspiciousReportConfig,
    WatchlistConfig,
)

DAY = 86_400.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HOUR = 3_600.0


class ConfigError(AmlwatchError, ValueError):
    """A configuration value is invalid; `key` is its dotted name."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config {key}: {message}")
        self.key = self.field = key


@dataclass(frozen=True)
class WashConfig:
    window_days: float = 30.0
    cycle_max_length: int = 4
    """Longest ownership cycle looked for (A->B->C->D->A is 4 legs)."""
    pair_repeat_min: int = 3
    """Paid trades between one pair in one collection within the window."""
    pair_min_each_way: int = 1
    """Trades each direction of the pair must carry (A to B, and B to A)."""
    pair_min_balance: float = 0.25
    """The smaller direction's share of the pair's trades: a bulk sweep with one trade back is one-way."""
    pair_min_share: float = 0.25
    """The pair's share of each account's paid trades in the collection: a market maker's many
    counterparties are each a small share of its trading."""
    rebuy_min: int = 3
    """Times one account buys the same token within the window."""
    max_trades_per_token: int = 64
    """Bound on the ownership history kept per token."""
    symmetric_within: float = 0.15
    """Prices within this fraction of each other count as one price moved round (full symmetry signal)."""
    asymmetric_at: float = 0.6
    """Prices this far apart (max/min - 1) carry no symmetry signal: a buy-back in a moving market."""
    fast_hours: float = 24.0
    """A cycle completed within this many hours carries the full speed signal..."""
    slow_days: float = 7.0
    """...and one taking this many days none: a buy-back a week later is a collector's."""
    young_days: float = 7.0
    """Accounts younger than this at the trade add to the score (1 when new that day)."""
    dealer_share: float = 0.02
    dealer_min_trades: int = 20
    """An account in at least this share of a collection's paid trades in the window, and at least this
    many, is a dealer there: tokens come back to it by chance (round trip, repeat buyer)."""
    round_trip_base: float = 0.2
    round_trip_weights: tuple[float, ...] = (0.3, 0.3, 0.3, 0.1, 0.05)
    """Weights of price symmetry, speed (both scaled by the ring's isolation), links, young accounts and
    a third party in the ring."""
    round_trip_min_score: float = 0.52
    """Cycles scoring under this raise nothing: a cycle alone (base) is not an alert, nor a buy-back a
    week later at one price between accounts that trade only with each other (0.5)."""
    """Cycles scoring under this raise nothing: a cycle alone (base) is not an alert."""
    pair_base: float = 0.4
    pair_weights: tuple[float, ...] = (0.15, 0.2, 0.1, 0.1, 0.1)
    """Weights of direction balance, concentration, further repeats, price symmetry and young accounts."""
    rebuy_base: float = 0.7
    rebuy_weights: tuple[float, ...] = (0.15, 0.1)
    """Weights of further buys and price symmetry."""


@dataclass(frozen=True)
class LinkConfig:
    """How strongly a shared attribute ties buyer and seller to one person.

    A shared public IP is deliberately absent: campus NAT and households share
    them honestly.
    """

    same_national_id: float = 1.0
    seller_funds_buyer: float = 0.95
    shared_bank_card: float = 0.9
    shared_phone: float = 0.85
    shared_device: float = 0.6


@dataclass(frozen=True)
class SpeculationConfig:
    median_window_days: float = 7.0
    """How far back a collection's market level, floor and top are taken from."""
    median_min_samples: int = 5
    median_max_samples: int = 200
    spike_quantile: float = 0.95
    """The collection's top level: rare tokens sell up to here honestly."""
    floor_quantile: float = 0.1
    spike_over_reference: float = 3.0
    """A spike is priced this many times over the larger of the top level and the token's last price."""
    spike_over_unseen: float = 10.0
    """A token without a price in the ledger's history: this many times the collection's highest
    recent price (heavy-tailed collections sell a rarer token than any seen that week honestly)."""
    spike_unseen_over_floor: float = 100.0
    """...and this many times the collection's floor: a thin week's highest price understates the
    tail, and the rarest tokens of a heavy-tailed collection fetch tens of times the floor honestly."""
    spike_over_issue: float = 10.0
    """Used only while the collection has too few recent trades for a market level."""
    spike_base: float = 0.55
    spike_weights: tuple[float, ...] = (0.3, 0.1, 0.05)
    """Weights of the excess over the reference, the multiple of the floor, and young accounts."""
    pump_window_hours: float = 3.0
    pump_min_trades: int = 5
    pump_max_trades: int = 48
    """Bound on the trades per collection a pump is looked for among."""
    pump_min_trend: float = 0.8
    """Kendall's tau of the run's prices against time: 1 when every trade is above every earlier one."""
    pump_level_rise: float = 1.5
    """The run's level (median of three trades) rises this many times from its start to now."""
    pump_floor_trades: int = 4
    """The run's floor now, when its last trades are tokens' first resales: the cheapest of its last this
    many trades must sell at `pump_level_rise` times the cheapest of its first three (three when the
    tokens' own last resale prices show the rise). A few rare tokens' first resales in a row lift a
    median; only the whole market's rise lifts the floor of several trades."""
    pump_baseline_quantile: float = 0.9
    """In a collection with a market before the pump window (`median_min_samples` trades over
    `median_window_days`), the run's floor must also rise `pump_level_rise` times over this quantile of
    that market: in a heavy-tailed market a run of rare tokens above the floor is common, a run above
    where its rarest tenth traded is not."""
    pump_unseen_min_trades: int = 6
    """A run of first resales (no own prices to compare) needs this many trades, not `pump_min_trades`."""
    pump_total_rise: float = 2.0
    """The run's last three trades sell at a median of this many times their tokens' own last prices."""
    pump_base: float = 0.6
    pump_weights: tuple[float, ...] = (0.15, 0.1, 0.1, 0.05)
    """Weights of the rise, the trend, the run's length and few accounts trading it."""
    flip_window_hours: float = 6.0
    flip_markup: float = 0.5
    """Resale within the flip window at >= 50% above the acquisition price."""
    flip_markup_over_mint: float = 0.7
    """The markup over a primary (mint) price while the collection has no market yet: a drop's first
    resales open above the flat issue price as the floor forms, so 50% over it is not yet a flip."""
    flip_over_market: float = 1.1
    """...and above this multiple of the collection's median, once it has a market: buying under the
    market and reselling at it is arbitrage."""
    flip_base: float = 0.6
    flip_weights: tuple[float, ...] = (0.15, 0.1, 0.1, 0.05)
    """Weights of the markup, speed, the excess over the market and young accounts."""
    young_days: float = 7.0


@dataclass(frozen=True)
class IdentityConfig:
    min_kyc_level: int = 2
    adult_age: int = 18
    max_accounts_per_national_id: int = 1
    registry_grace_minutes: float = 10.0
    """How long (event time) a trade waits for its parties' late registry events."""


@dataclass(frozen=True)
class SettlementConfig:
    allowed_currencies: tuple[str, ...] = ("CNY",)
    prohibited_methods: tuple[str, ...] = ("crypto",)


@dataclass(frozen=True)
class AssetConfig:
    financial_classes: tuple[str, ...] = (
        "security",
        "insurance",
        "loan",
        "precious_metal",
        "fund_share",
    )


@dataclass(frozen=True)
class StructuringConfig:
    """Large-value reporting lines per payment kind (PBOC Order 2016 No. 3, Art. 5; docs/DETECTORS.md).

    Structuring is splitting to stay under the line that applies, so each
    payment is held against the line of its kind (amlwatch/paymentkind.py).
    """

    reporting_threshold: Decimal = Decimal("50000")
    """The cash line: cash and digital RMB payments of one customer in a day."""
    domestic_transfer_threshold: Decimal = Decimal("500000")
    """An individual's domestic transfers (card, Alipay, WeChat Pay) in a day."""
    cross_border_threshold: Decimal = Decimal("200000")
    """An individual's cross-border transfers in a day."""
    organisation_threshold: Decimal = Decimal("2000000")
    """An organisation's transfers in a day."""
    near_fraction: Decimal = Decimal("0.8")
    """A trade counts as 'just under' from near_fraction * line up to the line."""
    window_hours: float = 24.0
    min_trades: int = 2
    tight_fraction: Decimal = Decimal("0.95")
    """Amounts all at or above tight_fraction * line are packed against it: evidence on their own."""
    busy_trades: int = 12
    """An account with more paid trades than this in the role (buying, or selling) within the window is
    trading, not splitting one sum: only packed amounts count as splitting for it."""
    base: float = 0.45
    weights: tuple[float, ...] = (0.2, 0.15, 0.2, 0.1)
    """Weights of packing against the line, spread over collections, repeated counterparties, more legs."""

    def line(self, kind: str) -> Decimal:
        return {"cash": self.reporting_threshold, "individual_domestic": self.domestic_transfer_threshold,
                "individual_cross_border": self.cross_border_threshold,
                "organisation": self.organisation_threshold}[kind]


@dataclass(frozen=True)
class AnomalyConfig:
    enabled: bool = True
    model_dir: str = ""
    """Empty: the default model shipped in amlwatch.models."""
    threshold: float | None = None
    """Override of the model's calibrated score floor: no trade scoring under it alerts."""
    budget: float = 0.002
    """The alert budget: at most this share of a collection's scored trades alert (0.2%)."""
    warmup_trades: int = 500
    """Scored trades a collection must have seen before its first anomaly alert."""
    quantile_half_life_days: float = 14.0
    """Event-time half-life of the score distribution the threshold follows."""
    burst: float = 3.0
    """Unspent allowance a collection may save up: the most alerts one quiet spell can release at once."""


@dataclass(frozen=True)
class MonitorConfig:
    dedupe_window_hours: float = 48.0
    """Event ids (and a fingerprint of their content) remembered to drop redelivered duplicates; an event
    further than this behind the event-time watermark cannot be told from a redelivery and is dead-lettered."""
    max_skew_hours: float = 1080.0
    """45 days. An event more than this ahead of the watermark (a mistyped year, a clock set to 2100) does not
    move it, so one such event cannot evict every window: a trade that far ahead is dead-lettered
    (`event_time_skew`), a registry event is applied without moving event time; a second event near the
    first confirms a real jump. Shorter gaps are legitimate in sparse streams (docs/STREAMING.md)."""
    holding_horizon_days: float = 200.0
    """How long a token's last transfer is kept: must exceed the longest transfer lock checked."""
    longest_transfer_lock_days: int = 180
    """The longest `transfer_lock_days` the platform's collections use; a longer holding horizon is enforced."""


@dataclass(frozen=True)
class RetentionConfig:
    """How long the record archive keeps each kind of record, in days (docs/RECORDS.md); 0 = forever."""

    events_days: int = 3650
    """Input events: transaction and identity records (PRC AML Law as revised: at least 10 years)."""
    alerts_days: int = 3650
    audit_days: int = 0
    """Hold and purge records: they prove what was removed and why, so kept forever by default."""
    identity_until_closed: bool = True
    """Account (identity) events are kept until events_days after the account's `close` event."""


@dataclass(frozen=True)
class ArchiveConfig:
    dir: str = "./records"
    """Record archive directory; the AMLWATCH_ARCHIVE_DIR variable overrides it."""
    commit_every: int = 10_000
    """File replay commits (fsyncs) the archive every this many records, and at the end."""
    segment_max_mb: int = 256
    """An open segment is sealed and a new one begun past this size, even within one day."""


@dataclass(frozen=True)
class KafkaConfig:
    """Where the streaming workers read and write (docs/STREAMING.md); AMLWATCH_KAFKA_BOOTSTRAP overrides `bootstrap`."""

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "amlwatch"
    """Consumer group and prefix of the internal (changelog) topics."""
    accounts_topic: str = "marketplace.accounts"
    collections_topic: str = "marketplace.collections"
    trades_topic: str = "marketplace.trades"
    alerts_topic: str = "aml.alerts"
    deadletter_topic: str = "aml.deadletter"
    work_topic: str = "aml.work"
    """Internal: events re-keyed by collection, registry events on every partition."""
    keyed_topic: str = "aml.work.accounts"
    """Internal: paid trades re-keyed by account, for account- and pair-scoped detectors."""
    rating_topic: str = "aml.work.ratings"
    """Internal, one partition: the rating facts stages 1 and 2 send the rating stage (docs/REPORTING.md);
    unused when `[risk] topic` is empty."""
    partitions: int = 6
    """Partitions of every topic amlwatch creates; the work topics' partitions bound the worker count."""
    replication: int = 1
    min_insync_replicas: int = 1
    retention_hours: float = 168.0
    """retention.ms of the input, alert, dead-letter and work topics."""
    snapshot_seconds: float = 1.0
    """At most this often each partition's detector state is written to its changelog (offsets follow)."""
    snapshot_budget: float = 0.1
    """Share of a worker's time snapshots may take: a large state is snapshotted less often, one
    partition at a time, so the pauses stay short and rare (a failover then replays a little more)."""
    marker_ms: int = 100
    """How often routers tell every work partition how far each input partition has got."""
    idle_ms: int = 1000
    """An input partition caught up this long stops holding back event time (docs/STREAMING.md)."""


@dataclass(frozen=True)
class ServiceConfig:
    """How one worker process runs (deploy/README.md); nothing here changes which alerts are raised."""

    worker_id: str = ""
    """Names the worker in logs and metrics; empty: the host name (the pod name in Kubernetes)."""
    metrics_host: str = "127.0.0.1"
    """Address /metrics, /healthz and /readyz bind to. Loopback by default: the endpoint has no
    authentication. Containers set "0.0.0.0" (deploy/config.toml) so Prometheus and the kubelet reach
    the pod; keep that port inside the cluster network (docs/RECORDS.md, "Personal data by output")."""
    metrics_port: int = 9464
    """Serves /metrics, /healthz and /readyz; 0 turns the endpoint off."""
    data_dir: str = "./data"
    """The worker's local table state; losing it only costs a rebuild from the changelog topics."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING, ERROR or CRITICAL; logs are JSON lines on stderr."""


OPERATIONAL_SECTIONS = frozenset({"retention", "archive", "kafka", "service", "lvtr", "str_report", "risk"})
"""Sections that change where and how long things run or are kept, never which alerts are raised."""


@dataclass(frozen=True)
class Config:
    wash: WashConfig = field(default_factory=WashConfig)
    links: LinkConfig = field(default_factory=LinkConfig)
    speculation: SpeculationConfig = field(default_factory=SpeculationConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    settlement: SettlementConfig = field(default_factory=SettlementConfig)
    asset: AssetConfig = field(default_factory=AssetConfig)
    structuring: StructuringConfig = field(default_factory=StructuringConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    payment_kind: PaymentKindConfig = field(default_factory=PaymentKindConfig)
    lvtr: LargeValueConfig = field(default_factory=LargeValueConfig)
    str_report: SuspiciousReportConfig = field(default_factory=SuspiciousReportConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    watchlist: WatchlistConfig = field(default_factory=WatchlistConfig)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    @property
    def hash(self) -> str:
        """Content hash of what decides alerts: every section but the operational ones."""
        detection = {k: v for k, v in self.to_dict().items() if k not in OPERATIONAL_SECTIONS}
        blob = orjson.dumps(detection, option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_mapping(cls, data: dict, *, prefix: str = "") -> "Config":
        return _build(cls, data, prefix)


def load_config(path: str | os.PathLike | None = None, env: dict | None = None) -> Config:
    """Defaults, then the TOML file (`path`, else `$AMLWATCH_CONFIG`), then `AMLWATCH_<SECTION>__<KEY>` variables."""
    data: dict = {}
    path = path or (os.environ if env is None else env).get("AMLWATCH_CONFIG", "").strip() or None
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    _apply_env(data, os.environ if env is None else env)
    bootstrap = (os.environ if env is None else env).get("AMLWATCH_KAFKA_BOOTSTRAP", "").strip()
    if bootstrap:
        data.setdefault("kafka", {})["bootstrap"] = bootstrap
    return Config.from_mapping(data)


def _apply_env(data: dict, env: typing.Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith("AMLWATCH_") or "__" not in name:
            continue
        section, _, key = name[len("AMLWATCH_"):].lower().partition("__")
        if section in {f.name for f in fields(Config)}:
            data.setdefault(section, {})[key] = _env_value(value)


def _env_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "<root>", "expected a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(prefix + unknown[0], "unknown key")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        key = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key + ".")
        else:
            kwargs[name] = _coerce(key, hint, value)
    obj = cls(**kwargs)
    _validate(obj, prefix)
    return obj


def _coerce(key: str, hint, value):
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if hint is Decimal:
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ConfigError(key, f"expected a decimal amount, got {value!r}") from exc
        if not result.is_finite():
            raise ConfigError(key, f"expected a finite amount, got {value!r}")
        return result
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a table, got {value!r}")
        inner = typing.get_args(hint)[1]
        return {str(k): _coerce(f"{key}.{k}", inner, v) for k, v in value.items()}
    if origin is tuple and typing.get_args(hint)[0] is float:
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise ConfigError(key, f"expected a list of numbers, got {value!r}")
        return tuple(float(v) for v in value)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"expected a list of strings, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _coerce(key, inner, value)
    raise ConfigError(key, f"unsupported type {hint}")


def _validate(obj, prefix: str) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            continue
        if value < 0:
            raise ConfigError(prefix + f.name, f"must not be negative, got {value}")
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name.endswith("_weights") and (len(value) != len(getattr(type(obj)(), f.name))
                                            or any(w < 0 for w in value)):
            raise ConfigError(prefix + f.name, f"expected {len(getattr(type(obj)(), f.name))} "
                                               f"non-negative weights, got {list(value)}")
    if isinstance(obj, StructuringConfig) and not (0 < obj.near_fraction < 1):
        raise ConfigError(prefix + "near_fraction", "must be between 0 and 1")
    if isinstance(obj, StructuringConfig) and not (obj.near_fraction <= obj.tight_fraction < 1):
        raise ConfigError(prefix + "tight_fraction", f"must be from near_fraction ({obj.near_fraction}) to below 1")
    if isinstance(obj, AnomalyConfig):
        if not 0 < obj.budget < 0.5:
            raise ConfigError(prefix + "budget", f"must be a share of trades in (0, 0.5), got {obj.budget}")
        if obj.quantile_half_life_days <= 0:
            raise ConfigError(prefix + "quantile_half_life_days", "must be positive")
        if obj.burst < 1:
            raise ConfigError(prefix + "burst", f"must be at least 1 (one alert), got {obj.burst}")
    if isinstance(obj, WashConfig) and obj.cycle_max_length < 2:
        raise ConfigError(prefix + "cycle_max_length", "must be at least 2")
    if isinstance(obj, SpeculationConfig) and obj.median_min_samples > obj.median_max_samples:
        raise ConfigError(prefix + "median_min_samples",
                          f"must not exceed median_max_samples ({obj.median_max_samples})")
    if isinstance(obj, ServiceConfig):
        if obj.metrics_port > 65535:
            raise ConfigError(prefix + "metrics_port", f"must be a TCP port (0-65535), got {obj.metrics_port}")
        if obj.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(prefix + "log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {obj.log_level!r}")
    if isinstance(obj, MonitorConfig) and obj.max_skew_hours <= 0:
        raise ConfigError(prefix + "max_skew_hours", "must be positive (every event would be too far ahead)")
    if isinstance(obj, Config):
        monitor, speculation = obj.monitor, obj.speculation
        if monitor.holding_horizon_days < monitor.longest_transfer_lock_days:
            raise ConfigError("monitor.holding_horizon_days",
                              f"must be at least monitor.longest_transfer_lock_days "
                              f"({monitor.longest_transfer_lock_days}), got {monitor.holding_horizon_days:g}: "
                              f"resales after a longer lock would go unchecked")
        if monitor.holding_horizon_days * 24 < speculation.flip_window_hours:
            raise ConfigError("monitor.holding_horizon_days",
                              f"must cover speculation.flip_window_hours ({speculation.flip_window_hours:g} h)")


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        # One spelling per value ("50000.0" and "50000" are equal), so equal configs hash equally.
        return format(value.normalize(), "f")
    return value
