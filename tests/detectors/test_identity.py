"""identity_mismatch: unverified parties, payer mismatch, minors, shared national IDs (docs/DETECTORS.md)."""

from __future__ import annotations

from support.events import (
    account,
    at,
    card_of,
    id_of,
    name_of,
    none_of,
    one,
    primary,
    run,
    trade,
    world,
)

from amlwatch.config import Config

UNVERIFIED = "identity.unverified_party"
PAYER = "identity.payer_mismatch"
MINOR = "identity.minor_buyer"
SHARED_ID = "identity.shared_national_id"
UNREGISTERED = "identity.unregistered_party"


# --- identity.unverified_party -------------------------------------------------------------------


def test_buyer_below_real_name_level_is_flagged():
    events = world("acc-s") + [account("acc-b", at(hours=-1), kyc_level=1)]
    sale = trade("acc-s", "acc-b", at(minutes=1), price="88.00")
    alert = one(run(events + [sale]), UNVERIFIED)
    assert alert.typology == "identity_mismatch"
    assert alert.severity == "high"
    assert alert.trade_ids == [sale["trade_id"]]
    assert "buyer acc-b is KYC level 1" in alert.reason and "level 2 needed" in alert.reason
    assert alert.evidence["buyer"] == {"account": "acc-b", "status": "KYC level 1"}
    assert "seller" not in alert.evidence


def test_kyc_level_0_seller_is_flagged():
    events = world("acc-b") + [account("acc-s", at(hours=-1), kyc_level=0)]
    sale = trade("acc-s", "acc-b", at(minutes=1))
    alert = one(run(events + [sale]), UNVERIFIED)
    assert "seller acc-s is KYC level 0" in alert.reason


def test_frozen_seller_is_critical():
    events = world("acc-s", "acc-b") + [account("acc-s", at(minutes=-5), action="freeze")]
    sale = trade("acc-s", "acc-b", at(minutes=1))
    alert = one(run(events + [sale]), UNVERIFIED)
    assert alert.severity == "critical"
    assert "seller acc-s is frozen" in alert.reason


def test_closed_buyer_is_flagged_and_unfreeze_clears():
    events = world("acc-s", "acc-b") + [
        account("acc-b", at(minutes=-5), action="close"),
        account("acc-s", at(minutes=-4), action="freeze"),
        account("acc-s", at(minutes=-3), action="unfreeze"),
    ]
    sale = trade("acc-s", "acc-b", at(minutes=1))
    alert = one(run(events + [sale]), UNVERIFIED)
    assert "buyer acc-b is closed" in alert.reason and "acc-s" not in alert.evidence.get("seller", {}).values()
    assert set(alert.evidence) == {"buyer", "min_kyc_level"}


def test_kyc_level_2_parties_are_verified_enough():
    events = world() + [account("acc-s", at(hours=-1), kyc_level=2),
                        account("acc-b", at(hours=-1), kyc_level=2)]
    sale = trade("acc-s", "acc-b", at(minutes=1))
    assert run(events + [sale]) == []


# --- identity.payer_mismatch ---------------------------------------------------------------------


def test_paying_with_someone_elses_unbound_instrument():
    sale = trade("acc-s", "acc-b", at(minutes=1), price="300.00",
                 payer_name_hash=name_of("acc-stranger"), instrument_hash=card_of("acc-stranger"))
    alert = one(run(world("acc-s", "acc-b") + [sale]), PAYER)
    assert alert.typology == "identity_mismatch"
    assert alert.severity == "high"
    assert alert.trade_ids == [sale["trade_id"]]
    assert "acc-b" in alert.reason and "tok-1" in alert.reason
    assert alert.evidence["payer_name_hash"] == name_of("acc-stranger")
    assert alert.evidence["buyer_name_hash"] == name_of("acc-b")
    none_of(run(world("acc-s", "acc-b") + [sale]), "wash")


def test_payer_mismatch_with_instrument_bound_to_buyer_is_fine():
    events = world("acc-s") + [account("acc-b", at(hours=-1),
                                       bank_card_hashes=[card_of("acc-b"), card_of("acc-mum")])]
    sale = trade("acc-s", "acc-b", at(minutes=1), price="300.00",
                 payer_name_hash=name_of("acc-mum"), instrument_hash=card_of("acc-mum"))
    assert run(events + [sale]) == []


def test_gift_has_no_payer_to_mismatch():
    from support.events import gift

    present = gift("acc-s", "acc-b", at(minutes=1), payment={"method": "none",
                                                             "payer_name_hash": name_of("acc-x")})
    none_of(run(world("acc-s", "acc-b") + [present]), PAYER)


# --- identity.minor_buyer ------------------------------------------------------------------------


def test_buyer_certainly_under_18_is_flagged():
    events = world("acc-s") + [account("acc-kid", at(hours=-1), birth_year=2009)]
    sale = primary("acc-kid", at(minutes=1))
    alert = one(run(events + [sale]), MINOR)
    assert alert.typology == "identity_mismatch"
    assert alert.severity == "high"
    assert alert.trade_ids == [sale["trade_id"]]
    assert "under 18" in alert.reason and "2009" not in alert.reason and "17" not in alert.reason
    # Alerts travel to consumers beyond the KYC system: an age band, never the birth year (docs/RECORDS.md).
    assert alert.evidence == {"age_band": "under 18", "adult_age": 18}


def test_buyer_possibly_18_is_not_flagged():
    events = world("acc-s") + [account("acc-teen", at(hours=-1), birth_year=2008)]
    sale = primary("acc-teen", at(minutes=1))  # 2026 - 2008 == 18: may already be 18
    none_of(run(events + [sale]), MINOR)


def test_minor_seller_is_not_a_minor_buyer():
    events = world("acc-b") + [account("acc-kid", at(hours=-1), birth_year=2012)]
    sale = trade("acc-kid", "acc-b", at(minutes=1))
    none_of(run(events + [sale]), MINOR)


# --- identity.shared_national_id -----------------------------------------------------------------


def _two_accounts_one_id():
    """acc-p registers and verifies; acc-p2 then verifies with acc-p's national ID."""
    return world("acc-b") + [
        account("acc-p", at(hours=-1), kyc_level=1),
        account("acc-p", at(minutes=-50), action="verify"),
        account("acc-p2", at(minutes=-40), kyc_level=1),
        account("acc-p2", at(minutes=-30), action="verify", id_hash=id_of("acc-p")),
    ]


def test_second_account_verifying_with_one_national_id_raises_registry_alert():
    events = _two_accounts_one_id()
    alert = one(run(events), SHARED_ID)
    assert alert.typology == "identity_mismatch"
    assert alert.severity == "critical"
    assert alert.trade_ids == [] and alert.token_ids == []
    assert alert.accounts == ["acc-p", "acc-p2"]
    assert alert.ts == events[-1]["ts"]
    assert "acc-p2" in alert.reason and "acc-p" in alert.reason


def test_trade_by_account_sharing_a_national_id():
    sale = trade("acc-p2", "acc-b", at(minutes=5), price="120.00")
    alerts = [a for a in run(_two_accounts_one_id() + [sale]) if a.detector == SHARED_ID and a.trade_ids]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.severity == "critical"
    assert alert.trade_ids == [sale["trade_id"]]
    assert set(alert.accounts) == {"acc-p", "acc-p2", "acc-b"}
    assert "acc-p, acc-p2" in alert.reason
    assert alert.evidence["accounts_per_national_id"] == [["acc-p", "acc-p2"]]


def test_distinct_national_ids_raise_nothing():
    events = world("acc-b") + [
        account("acc-p", at(hours=-1), kyc_level=1),
        account("acc-p", at(minutes=-50), action="verify"),
        account("acc-p2", at(minutes=-40), kyc_level=1),
        account("acc-p2", at(minutes=-30), action="verify"),
    ]
    sale = trade("acc-p2", "acc-b", at(minutes=5))
    assert run(events + [sale]) == []


def test_registry_alert_raised_once_per_second_account():
    events = _two_accounts_one_id() + [
        # acc-p2 re-sends its full profile (e.g. a device change); acc-p re-verifies.
        account("acc-p2", at(minutes=-20), action="update", id_hash=id_of("acc-p"), device_id="dev-new"),
        account("acc-p", at(minutes=-10), action="verify"),
    ]
    registry_alerts = [a for a in run(events) if a.detector == SHARED_ID]
    assert len(registry_alerts) == 1, [a.reason for a in registry_alerts]


def test_more_accounts_allowed_per_national_id_by_config():
    config = Config.from_mapping({"identity": {"max_accounts_per_national_id": 2}})
    sale = trade("acc-p2", "acc-b", at(minutes=5))
    none_of(run(_two_accounts_one_id() + [sale], config), SHARED_ID)


# --- identity.unregistered_party -----------------------------------------------------------------


def test_party_with_no_registry_record_after_grace():
    sale = trade("acc-s", "acc-ghost", at(minutes=1), price="66.00")
    alert = one(run(world("acc-s") + [sale]), UNREGISTERED)
    assert alert.typology == "identity_mismatch"
    assert alert.severity == "medium"
    assert alert.trade_ids == [sale["trade_id"]]
    assert alert.evidence["unregistered"] == ["acc-ghost"]
    assert "acc-ghost" in alert.reason and "10-minute" in alert.reason


def test_party_registering_within_grace_is_judged_normally():
    sale = trade("acc-s", "acc-late", at(minutes=1))
    late = account("acc-late", at(minutes=10, seconds=59))
    assert run(world("acc-s") + [sale, late]) == []
