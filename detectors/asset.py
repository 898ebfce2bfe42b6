"""Prohibited assets: collectibles that carry financial assets or are split into shares."""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.config import AssetConfig
from amlwatch.events import AccountEvent, CollectionEvent

from .base import Detector, TradeView
from .registry import CollectionState, Registry


class FinancialAssetDetector(Detector):
    name = "asset.financial"
    typology = "prohibited_asset"
    needs_registry = True

    def __init__(self, config: AssetConfig):
        self.financial = frozenset(config.financial_classes)

    def _violations(self, collection: CollectionState) -> list[str]:
        found = []
        if collection.asset_class in self.financial:
            found.append(f"asset class {collection.asset_class}")
        if collection.fractional:
            found.append("fractional shares")
        return found

    def observe(self, view: TradeView) -> list[Alert]:
        collection = view.collection
        if collection is None:
            return []
        found = self._violations(collection)
        if not found:
            return []
        trade = view.trade
        reason = (
            f"Trade {trade.trade_id} is in collection {collection.collection_id}, which is prohibited: "
            f"{' and '.join(found)}."
        )
        evidence = {"asset_class": collection.asset_class, "fractional": collection.fractional}
        return [self.alert(trade, 0.95, reason, evidence)]

    def observe_registry(self, event: AccountEvent | CollectionEvent, registry: Registry) -> list[Alert]:
        if not isinstance(event, CollectionEvent) or event.action != "launch":
            return []
        found = self._violations(registry.collections[event.collection_id])
        if not found:
            return []
        reason = f"Collection {event.collection_id} launched as a prohibited asset: {' and '.join(found)}."
        evidence = {"asset_class": event.asset_class, "fractional": event.fractional}
        accounts = [event.issuer_id] if event.issuer_id else []
        return [self.registry_alert(event, 0.95, reason, evidence, accounts=accounts,
                                    collection_id=event.collection_id, key="launch")]


class UnregisteredCollectionDetector(Detector):
    """A traded collection still unknown when the grace for late data ran out."""

    name = "asset.unregistered_collection"
    typology = "prohibited_asset"
    needs_registry = True
    only_incomplete = True

    def observe(self, view: TradeView) -> list[Alert]:
        if view.collection is not None:
            return []
        trade = view.trade
        reason = (
            f"Trade {trade.trade_id} is in collection {trade.collection_id}, which has no issuance "
            f"record; its asset class cannot be checked."
        )
        return [self.alert(trade, 0.3, reason, {"collection_id": trade.collection_id})]
