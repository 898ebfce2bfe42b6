"""Configuration: defaults, TOML overrides, validation naming the key, hash, env overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest

from amlwatch.config import Config, ConfigError, load_config


def _toml(tmp_path, text: str):
    path = tmp_path / "amlwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path, text: str, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(_toml(tmp_path, text), env={})
    assert info.value.key == key, info.value
    assert key in str(info.value)
    return info.value


def test_defaults_match_the_documented_thresholds():
    config = load_config(None, env={})
    assert config == Config()
    assert config.wash.window_days == 30.0 and config.wash.cycle_max_length == 4
    assert config.wash.pair_repeat_min == 3 and config.wash.rebuy_min == 3
    assert config.wash.pair_min_each_way == 1 and config.wash.pair_min_balance == 0.25
    assert config.wash.pair_min_share == 0.25 and config.wash.round_trip_min_score == 0.52
    assert config.links.same_national_id == 1.0 and config.links.seller_funds_buyer == 0.95
    assert config.links.shared_bank_card == 0.9 and config.links.shared_phone == 0.85
    assert config.links.shared_device == 0.6
    assert config.speculation.spike_over_reference == 3.0 and config.speculation.median_window_days == 7.0
    assert config.speculation.spike_over_unseen == 10.0 and config.speculation.spike_quantile == 0.95
    assert config.speculation.median_min_samples == 5 and config.speculation.spike_over_issue == 10.0
    assert config.speculation.pump_min_trades == 5 and config.speculation.pump_min_trend == 0.8
    assert config.speculation.pump_window_hours == 3.0 and config.speculation.pump_total_rise == 2.0
    assert config.speculation.pump_level_rise == 1.5 and config.speculation.flip_over_market == 1.1
    assert config.speculation.flip_window_hours == 6.0 and config.speculation.flip_markup == 0.5
    assert config.identity.min_kyc_level == 2 and config.identity.adult_age == 18
    assert config.identity.max_accounts_per_national_id == 1
    assert config.identity.registry_grace_minutes == 10.0
    assert config.settlement.allowed_currencies == ("CNY",)
    assert config.settlement.prohibited_methods == ("crypto",)
    assert set(config.asset.financial_classes) == {"security", "insurance", "loan", "precious_metal", "fund_share"}
    assert config.structuring.reporting_threshold == Decimal("50000")
    assert config.structuring.domestic_transfer_threshold == Decimal("500000")
    assert config.structuring.cross_border_threshold == Decimal("200000")
    assert config.structuring.organisation_threshold == Decimal("2000000")
    assert config.structuring.near_fraction == Decimal("0.8")
    assert config.structuring.window_hours == 24.0 and config.structuring.min_trades == 2
    assert config.monitor.dedupe_window_hours == 48.0


def test_toml_overrides_a_subset(tmp_path):
    config = load_config(_toml(tmp_path, """
[wash]
window_days = 14
rebuy_min = 4

[structuring]
reporting_threshold = "20000.00"
near_fraction = 0.9

[settlement]
allowed_currencies = ["CNY", "HKD"]

[anomaly]
threshold = 0.62
"""), env={})
    assert config.wash.window_days == 14.0 and isinstance(config.wash.window_days, float)
    assert config.wash.rebuy_min == 4
    assert config.wash.cycle_max_length == 4  # untouched
    assert config.structuring.reporting_threshold == Decimal("20000.00")
    assert isinstance(config.structuring.near_fraction, Decimal)
    assert config.structuring.near_fraction == Decimal("0.9")
    assert config.structuring.window_hours == 24.0
    assert config.settlement.allowed_currencies == ("CNY", "HKD")
    assert config.anomaly.threshold == 0.62
    assert config.speculation == Config().speculation
    assert config.identity == Config().identity


def test_empty_toml_is_the_defaults(tmp_path):
    assert load_config(_toml(tmp_path, ""), env={}) == Config()


def test_unknown_key_is_rejected_with_its_dotted_name(tmp_path):
    _error(tmp_path, "[wash]\nwindow_dayz = 10\n", "wash.window_dayz")
    _error(tmp_path, "[speculation]\nspike_over_median = 5.0\nspike = 3\n", "speculation.spike")


def test_unknown_section_is_rejected(tmp_path):
    _error(tmp_path, "[washing]\nwindow_days = 10\n", "washing")


def test_section_that_is_not_a_table_is_rejected(tmp_path):
    _error(tmp_path, "wash = 3\n", "wash")


@pytest.mark.parametrize("text,key", [
    ('[wash]\nwindow_days = "thirty"\n', "wash.window_days"),
    ("[wash]\nrebuy_min = 3.5\n", "wash.rebuy_min"),
    ("[wash]\nrebuy_min = true\n", "wash.rebuy_min"),
    ("[identity]\nregistry_grace_minutes = false\n", "identity.registry_grace_minutes"),
    ('[anomaly]\nenabled = "yes"\n', "anomaly.enabled"),
    ("[anomaly]\nmodel_dir = 5\n", "anomaly.model_dir"),
    ('[settlement]\nallowed_currencies = "CNY"\n', "settlement.allowed_currencies"),
    ("[settlement]\nprohibited_methods = [1, 2]\n", "settlement.prohibited_methods"),
    ('[structuring]\nreporting_threshold = "fifty thousand"\n', "structuring.reporting_threshold"),
    ('[structuring]\nreporting_threshold = "inf"\n', "structuring.reporting_threshold"),
    ("[structuring]\nreporting_threshold = true\n", "structuring.reporting_threshold"),
    ('[anomaly]\nthreshold = "high"\n', "anomaly.threshold"),
])
def test_wrong_type_is_rejected_naming_the_key(tmp_path, text, key):
    _error(tmp_path, text, key)


@pytest.mark.parametrize("text,key", [
    ("[wash]\nwindow_days = -1\n", "wash.window_days"),
    ("[speculation]\npump_min_trades = -5\n", "speculation.pump_min_trades"),
    ('[structuring]\nreporting_threshold = "-100"\n', "structuring.reporting_threshold"),
    ("[links]\nshared_device = -0.1\n", "links.shared_device"),
    ("[anomaly]\nthreshold = -0.5\n", "anomaly.threshold"),
])
def test_negative_is_rejected(tmp_path, text, key):
    error = _error(tmp_path, text, key)
    assert "negative" in str(error)


def test_other_range_checks(tmp_path):
    _error(tmp_path, "[structuring]\nnear_fraction = 1.0\n", "structuring.near_fraction")
    _error(tmp_path, "[structuring]\nnear_fraction = 0\n", "structuring.near_fraction")
    _error(tmp_path, "[wash]\ncycle_max_length = 1\n", "wash.cycle_max_length")


def test_invalid_toml_is_a_config_error(tmp_path):
    path = _toml(tmp_path, "[wash\nwindow_days = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.key == str(path)


def test_hash_is_stable_and_changes_with_a_detection_value(tmp_path):
    default = Config().hash
    assert default.startswith("sha256:") and len(default) == len("sha256:") + 16
    assert Config().hash == default
    assert load_config(None, env={}).hash == default
    # Restating the defaults, in any spelling, is the same configuration.
    same = load_config(_toml(tmp_path, "[wash]\nwindow_days = 30\n[structuring]\nwindow_hours = 24.0\n"
                                       'reporting_threshold = "50000"\n'), env={})
    assert same == Config() and same.hash == default
    changed = Config.from_mapping({"wash": {"window_days": 29.0}})
    assert changed.hash != default
    assert Config.from_mapping({"wash": {"window_days": 29}}).hash == changed.hash
    assert Config.from_mapping({"structuring": {"reporting_threshold": "40000"}}).hash != default
    assert Config.from_mapping({"settlement": {"allowed_currencies": ["CNY", "HKD"]}}).hash != default
    assert Config.from_mapping({"links": {"shared_device": 0.5}}).hash != default


def test_equal_decimal_values_hash_equally():
    spelled = Config.from_mapping({"structuring": {"reporting_threshold": 50000.0, "near_fraction": "0.80"}})
    assert spelled == Config()
    assert spelled.hash == Config().hash


def test_operational_sections_do_not_change_the_hash():
    default = Config().hash
    assert Config.from_mapping({"retention": {"events_days": 5000}}).hash == default
    assert Config.from_mapping({"archive": {"dir": "/elsewhere", "commit_every": 10}}).hash == default


def test_env_override_applies():
    config = load_config(None, env={"AMLWATCH_STRUCTURING__WINDOW_HOURS": "12"})
    assert config.structuring.window_hours == 12.0
    assert config.structuring.min_trades == 2
    assert config.hash != Config().hash


def test_env_override_wins_over_toml(tmp_path):
    path = _toml(tmp_path, "[structuring]\nwindow_hours = 6\nmin_trades = 3\n")
    config = load_config(path, env={"AMLWATCH_STRUCTURING__WINDOW_HOURS": "12", "HOME": "/root"})
    assert config.structuring.window_hours == 12.0
    assert config.structuring.min_trades == 3


def test_env_override_values_are_typed_like_toml():
    config = load_config(None, env={
        "AMLWATCH_ANOMALY__ENABLED": "false",
        "AMLWATCH_SETTLEMENT__ALLOWED_CURRENCIES": '["CNY", "HKD"]',
        "AMLWATCH_ANOMALY__MODEL_DIR": "/srv/models/v2",
    })
    assert config.anomaly.enabled is False
    assert config.settlement.allowed_currencies == ("CNY", "HKD")
    assert config.anomaly.model_dir == "/srv/models/v2"


def test_env_override_with_unknown_key_or_bad_value_is_rejected():
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AMLWATCH_STRUCTURING__WINDOW_HOUR": "12"})
    assert info.value.key == "structuring.window_hour"
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AMLWATCH_STRUCTURING__WINDOW_HOURS": "half a day"})
    assert info.value.key == "structuring.window_hours"


def test_unrelated_env_variables_are_ignored():
    config = load_config(None, env={"AMLWATCH_ARCHIVE_DIR": "/x", "AMLWATCH_NOPE__X": "1", "PATH": "/bin"})
    assert config == Config()


def test_service_section_is_operational_and_overridable_from_env():
    config = load_config(None, env={"AMLWATCH_SERVICE__WORKER_ID": "amlwatch-1",
                                    "AMLWATCH_SERVICE__METRICS_PORT": "9500",
                                    "AMLWATCH_SERVICE__DATA_DIR": "/var/lib/amlwatch/data",
                                    "AMLWATCH_SERVICE__LOG_LEVEL": "debug"})
    assert config.service.worker_id == "amlwatch-1" and config.service.metrics_port == 9500
    assert config.service.data_dir == "/var/lib/amlwatch/data" and config.service.log_level == "debug"
    assert config.hash == Config().hash
    assert Config().service.metrics_port == 9464


@pytest.mark.parametrize("text,key", [
    ("[service]\nmetrics_port = 65536\n", "service.metrics_port"),
    ("[service]\nmetrics_port = -1\n", "service.metrics_port"),
    ('[service]\nmetrics_port = "9464"\n', "service.metrics_port"),
    ('[service]\nlog_level = "verbose"\n', "service.log_level"),
    ("[service]\nworkers = 3\n", "service.workers"),
    ("[speculation]\nmedian_min_samples = 300\n", "speculation.median_min_samples"),
])
def test_service_and_range_values_are_checked(tmp_path, text, key):
    _error(tmp_path, text, key)


def test_holding_horizon_must_cover_the_longest_transfer_lock(tmp_path):
    error = _error(tmp_path, "[monitor]\nholding_horizon_days = 150\n", "monitor.holding_horizon_days")
    assert "longest_transfer_lock_days" in str(error)
    _error(tmp_path, "[monitor]\nlongest_transfer_lock_days = 365\n", "monitor.holding_horizon_days")
    ok = load_config(_toml(tmp_path, "[monitor]\nholding_horizon_days = 400\nlongest_transfer_lock_days = 365\n"),
                     env={})
    assert ok.monitor.holding_horizon_days == 400.0
    _error(tmp_path, "[monitor]\nholding_horizon_days = 0.1\nlongest_transfer_lock_days = 0\n",
           "monitor.holding_horizon_days")
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AMLWATCH_MONITOR__HOLDING_HORIZON_DAYS": "30"})
    assert info.value.key == "monitor.holding_horizon_days"


def test_config_file_named_by_the_environment(tmp_path):
    path = _toml(tmp_path, "[wash]\nrebuy_min = 5\n")
    assert load_config(None, env={"AMLWATCH_CONFIG": str(path)}).wash.rebuy_min == 5
    other = tmp_path / "other.toml"
    other.write_text("[wash]\nrebuy_min = 6\n")
    assert load_config(other, env={"AMLWATCH_CONFIG": str(path)}).wash.rebuy_min == 6
    with pytest.raises(FileNotFoundError):
        load_config(None, env={"AMLWATCH_CONFIG": str(tmp_path / "missing.toml")})


def test_weights_are_lists_of_numbers_of_the_documented_length(tmp_path):
    config = Config.from_mapping({"wash": {"round_trip_weights": [0.3, 0.2, 0.3, 0.1, 0.0]}})
    assert config.wash.round_trip_weights == (0.3, 0.2, 0.3, 0.1, 0.0)
    _error(tmp_path, "[wash]\nround_trip_weights = [0.3, 0.2]\n", "wash.round_trip_weights")
    _error(tmp_path, '[wash]\nround_trip_weights = ["a", 0.2, 0.3, 0.1, 0.1]\n', "wash.round_trip_weights")
    _error(tmp_path, "[structuring]\ntight_fraction = 0.5\n", "structuring.tight_fraction")
