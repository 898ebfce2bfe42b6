"""Identity mismatch: trading outside real-name rules."""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.config import IdentityConfig
from amlwatch.events import AccountEvent, CollectionEvent

from .base import Detector, TradeView
from .registry import Registry


class UnverifiedPartyDetector(Detector):
    """A party below real-name level, frozen or closed, yet trading."""

    name = "identity.unverified_party"
    typology = "identity_mismatch"
    needs_registry = True

    def __init__(self, config: IdentityConfig):
        self.config = config

    def observe(self, view: TradeView) -> list[Alert]:
        problems = {}
        for role, state in (("buyer", view.buyer), ("seller", view.seller)):
            if state is None:
                continue
            if state.closed:
                problems[role] = (state.account_id, "closed", 0.9)
            elif state.frozen:
                problems[role] = (state.account_id, "frozen", 0.9)
            elif state.kyc_level < self.config.min_kyc_level:
                problems[role] = (state.account_id, f"KYC level {state.kyc_level}", 0.8)
        if not problems:
            return []
        trade = view.trade
        parts = "; ".join(f"{role} {account} is {what}" for role, (account, what, _) in problems.items())
        reason = (
            f"Trade {trade.trade_id} involves a party without real-name verification "
            f"(level {self.config.min_kyc_level} needed): {parts}."
        )
        evidence: dict[str, object] = {role: {"account": account, "status": what} for role, (account, what, _) in problems.items()}
        evidence["min_kyc_level"] = self.config.min_kyc_level
        score = max(score for _, _, score in problems.values())
        return [self.alert(trade, score, reason, evidence)]


class PayerMismatchDetector(Detector):
    """Paid with someone else's instrument: the payer is not the verified buyer."""

    name = "identity.payer_mismatch"
    typology = "identity_mismatch"
    needs_registry = True

    def observe(self, view: TradeView) -> list[Alert]:
        trade, buyer, seller = view.trade, view.buyer, view.seller
        payer = trade.payer_name_hash
        if not trade.paid or buyer is None or not payer or not buyer.name_hash:
            return []
        instrument = trade.instrument_hash
        if payer == buyer.name_hash or (instrument and instrument in buyer.cards):
            return []
        if seller is not None and (payer == seller.name_hash or (instrument and instrument in seller.cards)):
            return []
        reason = (
            f"Buyer {buyer.account_id} paid for {trade.token_id} with an instrument in another "
            f"person's name that is not bound to the account."
        )
        evidence = {"payer_name_hash": payer, "buyer_name_hash": buyer.name_hash,
                    "instrument_hash": instrument, "instrument_bound_to_buyer": False}
        return [self.alert(trade, 0.75, reason, evidence)]


class MinorBuyerDetector(Detector):
    """A buyer certainly under age: birth year alone leaves one year of doubt, resolved in their favour."""

    name = "identity.minor_buyer"
    typology = "identity_mismatch"
    needs_registry = True

    def __init__(self, config: IdentityConfig):
        self.config = config

    def observe(self, view: TradeView) -> list[Alert]:
        trade, buyer = view.trade, view.buyer
        if buyer is None or buyer.birth_year is None:
            return []
        oldest_possible = trade.year - buyer.birth_year
        if oldest_possible >= self.config.adult_age:
            return []
        reason = (f"Buyer {buyer.account_id} is under {self.config.adult_age} at this trade by their registered "
                  f"birth year; buyers must be {self.config.adult_age} or over.")
        evidence = {"age_band": f"under {self.config.adult_age}", "adult_age": self.config.adult_age}
        return [self.alert(trade, 0.85, reason, evidence)]


class SharedNationalIdDetector(Detector):
    """One national ID verified on several accounts: one person, many identities."""

    name = "identity.shared_national_id"
    typology = "identity_mismatch"
    needs_registry = True

    def __init__(self, config: IdentityConfig, registry: Registry):
        self.config = config
        self.registry = registry
        self._raised: set[str] = set()
        """National IDs whose registry-only alert was raised (once each, not on every later update)."""

    def observe(self, view: TradeView) -> list[Alert]:
        shared = []
        for state in (view.buyer, view.seller):
            if state is None:
                continue
            holders = self.registry.accounts_sharing_id(state)
            if len(holders) > self.config.max_accounts_per_national_id and holders not in shared:
                shared.append(holders)
        if not shared:
            return []
        trade = view.trade
        accounts = list(dict.fromkeys([trade.seller_id, trade.buyer_id] + [a for h in shared for a in h]))
        groups = "; ".join(", ".join(h) for h in shared)
        reason = f"Trade {trade.trade_id} involves accounts verified with one national ID: {groups}."
        evidence = {"accounts_per_national_id": [list(h) for h in shared],
                    "max_accounts_per_national_id": self.config.max_accounts_per_national_id}
        return [self.alert(trade, 0.9, reason, evidence, accounts=accounts)]

    def observe_registry(self, event: AccountEvent | CollectionEvent, registry: Registry) -> list[Alert]:
        if not isinstance(event, AccountEvent) or event.id_hash is None:
            return []
        holders = registry.accounts_by_id_hash.get(event.id_hash, [])
        if len(holders) != self.config.max_accounts_per_national_id + 1 or holders[-1] != event.account_id:
            return []
        if event.id_hash in self._raised:
            return []
        self._raised.add(event.id_hash)
        reason = (
            f"Account {event.account_id} was verified with a national ID already verified on "
            f"{', '.join(holders[:-1])}."
        )
        return [self.registry_alert(event, 0.9, reason, {"accounts": list(holders)},
                                    accounts=holders, key=event.account_id)]


class UnregisteredPartyDetector(Detector):
    """A party still unknown to the registry when the grace for late data ran out."""

    name = "identity.unregistered_party"
    typology = "identity_mismatch"
    needs_registry = True
    only_incomplete = True

    def __init__(self, config: IdentityConfig):
        self.config = config

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        missing = [account for account, state in ((trade.buyer_id, view.buyer), (trade.seller_id, view.seller))
                   if state is None]
        if not missing:
            return []
        reason = (
            f"Trade {trade.trade_id} involves {', '.join(missing)}, still without a real-name registry "
            f"record after the {self.config.registry_grace_minutes:g}-minute grace for late data; "
            f"the party cannot be verified."
        )
        evidence = {"unregistered": missing, "grace_minutes": self.config.registry_grace_minutes}
        return [self.alert(trade, 0.7, reason, evidence)]
