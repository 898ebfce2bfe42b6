"""The reporting sections of the config: defaults, overrides, typed errors naming the key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from amlwatch.config import Config, ConfigError


def test_defaults_are_the_documented_lines():
    lvtr = Config().lvtr
    assert (lvtr.cash_threshold, lvtr.organisation_threshold, lvtr.individual_domestic_threshold,
            lvtr.individual_cross_border_threshold) == (Decimal(50000), Decimal(2000000), Decimal(500000), Decimal(200000))
    assert lvtr.day_offset == "+08:00" and lvtr.offset_seconds == 8 * 3600
    assert Config().payment_kind.cash_methods == ("digital_rmb",)


@pytest.mark.parametrize("data, key", [
    ({"lvtr": {"day_offset": "+8"}}, "lvtr.day_offset"),
    ({"lvtr": {"trait_codes": "0501"}}, "lvtr.trait_codes"),
    ({"lvtr": {"cash_threshold": "-1"}}, "lvtr.cash_threshold"),
    ({"risk": {"medium_at": 70}}, "risk.medium_at"),
    ({"risk": {"alert_points": {"structuring": "many"}}}, "risk.alert_points.structuring"),
    ({"watchlist": {"files": "lists.jsonl"}}, "watchlist.files")])
def test_bad_values_name_their_key(data, key):
    with pytest.raises(ConfigError) as error:
        Config.from_mapping(data)
    assert error.value.key == key


def test_reporting_sections_leave_the_alert_config_hash_alone_but_watchlists_do_not():
    default = Config().hash
    assert Config.from_mapping({"lvtr": {"cash_threshold": "1"}, "risk": {"version": "x"}}).hash == default
    assert Config.from_mapping({"watchlist": {"files": ["a.jsonl"]}}).hash != default
    assert Config.from_mapping({"payment_kind": {"organisation_prefixes": ["org-"]}}).hash != default
