"""Watchlist screening: registry facts and trades against block and watch lists (docs/REPORTING.md).

Checked at registration and on every KYC update (account events `register`, `verify`, `update`)
and on every trade (both parties' registry facts, the paying instrument and the devices used).
A hit needs only the registry and the trade, so the detector is collection-scoped and runs in the
registry stage. The lists are a shared `Watchlist` whose entries apply from their effective event
time, so a reload between events never changes what an earlier event was judged against. The
detector reads no files: `amlwatch.engine.build_monitor` loads `[watchlist]` and installs the lists.

Alerts keep the contract's typologies: a list hit is `identity_mismatch` (a known-bad identity),
`critical` for the block list and `medium` for the watch list.
"""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.events import AccountEvent, CollectionEvent
from .base import Detector, TradeView
from .registry import Registry
from .watchlist_index import WatchlistIndex

SCREENED_ACTIONS = frozenset({"register", "verify", "update"})
BLOCK_SCORE, WATCH_SCORE = 0.95, 0.6


class WatchlistDetector(Detector):
    name = "watchlist.hit"
    typology = "identity_mismatch"
    needs_registry = True
    scope = "collection"

    def __init__(self, watchlist: WatchlistIndex | None = None):
        """No lists: an idle detector (until the engine installs the configured ones)."""
        self.watchlist = watchlist if watchlist is not None else WatchlistIndex()

    def observe(self, view: TradeView) -> list[Alert]:
        if not self.watchlist.index:
            return []
        trade, t = view.trade, view.trade.t
        hits = []
        for role, account_id, state, device in (("buyer", trade.buyer_id, view.buyer, trade.buyer_device_id),
                                                ("seller", trade.seller_id, view.seller, trade.seller_device_id)):
            hits.extend(self._account_hits(role, account_id, state, t))
            hits.extend(self._hits(role, "device", device, "trade device", t, account_id))
        hits.extend(self._hits("buyer", "card", trade.instrument_hash, "payment.instrument_hash", t, trade.buyer_id))
        if not hits:
            return []
        hits = _unique_hits(hits)
        score, lists = _score(hits)
        accounts = list(dict.fromkeys(h["account"] for h in hits))
        reason = (f"Trade {trade.trade_id} involves {_describe(hits)} on the {' and '.join(lists)} list"
                  f"{'s' if len(lists) > 1 else ''}.")
        return [self.alert(trade, score, reason, {"hits": hits, "watchlist_version": self.watchlist.version},
                           key="trade", accounts=accounts + [trade.buyer_id, trade.seller_id])]

    def observe_registry(self, event: AccountEvent | CollectionEvent, registry: Registry) -> list[Alert]:
        if not self.watchlist.index or not isinstance(event, AccountEvent) or event.action not in SCREENED_ACTIONS:
            return []
        state = registry.accounts.get(event.account_id)
        hits = self._account_hits("account", event.account_id, state, event.t)
        hits.extend(self._hits("account", "device", event.device_id, "device_id", event.t, event.account_id))
        if not hits:
            return []
        hits = _unique_hits(hits)
        score, lists = _score(hits)
        reason = (f"Account {event.account_id} ({event.action}) matches {_describe(hits)} on the "
                  f"{' and '.join(lists)} list{'s' if len(lists) > 1 else ''}.")
        alert = self.registry_alert(event, score, reason, {"hits": hits, "action": event.action,
                                                           "watchlist_version": self.watchlist.version},
                                    accounts=[event.account_id], key=event.action)
        return [alert]

    def _account_hits(self, role: str, account_id: str, state, t: float) -> list[dict]:
        hits = self._hits(role, "account", account_id, "account_id", t, account_id)
        if state is None:
            return hits
        hits.extend(self._hits(role, "id", state.id_hash, "id_hash", t, account_id))
        hits.extend(self._hits(role, "phone", state.phone_hash, "phone_hash", t, account_id))
        for card in sorted(state.cards):
            hits.extend(self._hits(role, "card", card, "bank_card_hashes", t, account_id))
        for device in state.devices:
            hits.extend(self._hits(role, "device", device, "devices", t, account_id))
        return hits

    def _hits(self, role: str, kind: str, value: str | None, field: str, t: float,
              account: str | None = None) -> list[dict]:
        return [{"list": e.list, "kind": kind, "value": value, "role": role, "field": field,
                 "account": account or "", "reason": e.reason, "listed_by": e.by}
                for e in self.watchlist.lookup(kind, value, t)]


def _unique_hits(hits: list[dict]) -> list[dict]:
    seen, out = set(), []
    for hit in hits:
        key = (hit["list"], hit["kind"], hit["value"], hit["role"])
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


def _score(hits: list[dict]) -> tuple[float, list[str]]:
    lists = sorted({h["list"] for h in hits})
    return (BLOCK_SCORE if "block" in lists else WATCH_SCORE), lists


def _describe(hits: list[dict]) -> str:
    parts = [f"the {h['role']}'s {h['kind']} {h['value'][:12]}" for h in hits[:3]]
    more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
    return ", ".join(parts) + more
