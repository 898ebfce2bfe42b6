"""What every detector sees and how it words an alert."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from amlwatch.alerts import Alert, severity_for
from amlwatch.errors import AmlwatchError
from amlwatch.events import AccountEvent, CollectionEvent, TradeEvent

from .registry import AccountState, CollectionState, Registry

if TYPE_CHECKING:
    from .ledger import Transfer


class TradeView:
    """A trade with what the registry and ledger knew about it at its event time."""

    __slots__ = ("trade", "buyer", "seller", "collection", "acquisition")

    def __init__(
        self,
        trade: TradeEvent,
        buyer: AccountState | None,
        seller: AccountState | None,
        collection: CollectionState | None,
        acquisition: Transfer | None,
    ):
        self.trade = trade
        self.buyer = buyer
        self.seller = seller
        self.collection = collection
        self.acquisition = acquisition

    @property
    def complete(self) -> bool:
        return self.buyer is not None and self.seller is not None and self.collection is not None

    def refresh(self, registry: Registry) -> None:
        trade = self.trade
        self.buyer = registry.accounts.get(trade.buyer_id)
        self.seller = registry.accounts.get(trade.seller_id)
        self.collection = registry.collections.get(trade.collection_id)


SCOPES = ("collection", "account", "pair")
"""What a detector's state is keyed by (`Detector.scope`), which decides where a worker runs it."""


class Detector:
    """One typology pattern. Subclasses set `name`, `typology`, `needs_registry` and `scope`.

    `needs_registry` detectors run once the trade's parties and collection are
    known (or their grace has run out); the others run as the trade arrives.

    `scope` says what the detector's state may hold, and so which streaming stage
    runs it (docs/STREAMING.md). "collection" (the default): only what one
    collection's trades and the whole registry show, so the stage keyed by
    collection sees everything it needs. "account": an account's own trades
    across collections; "pair": the trades between two accounts. Those two run
    in the stage keyed by account, where each paid trade reaches its buyer's and
    its seller's partition, and `owner` says which one raises each alert. They must not read the token
    ledger (`view.acquisition`, token and price histories): the account-keyed stage keeps none, since it
    sees a token's trades only where its accounts trade, and `view.acquisition` is None there.
    """

    name = ""
    typology = ""
    needs_registry = False
    scope = "collection"
    only_incomplete = False
    """True for a registry check that can only alert on a trade whose buyer, seller or collection the
    registry does not know: the monitor then skips it for a trade whose parties are all known."""
    batched = False
    """True for a stream detector whose work splits into `stage` (each trade, in event order) and
    `settle` (many staged trades at once, in that order): `Monitor.observe_batch` then settles a whole
    batch in one call, with the alerts `observe` would have given, in the same places."""

    def observe(self, view: TradeView) -> list[Alert]:
        raise NotImplementedError

    def stage(self, view: TradeView) -> object | None:
        """A batched detector's per-trade work; what `settle` needs of the trade, or None: no alert."""
        raise NotImplementedError

    def settle(self, staged: list) -> list[list[Alert]]:
        """The alerts of each staged trade, decided in order; `observe` is `settle([stage(view)])`."""
        raise NotImplementedError

    def owner(self, alert: Alert, trade: TradeEvent) -> str:
        """The account (the buyer or the seller of `trade`, the trade that raised `alert`) whose
        partition of the account-keyed stage raises the alert; every other partition that sees the
        trade drops its copy. Pair scope: the pair's smaller account id. Account scope: the account
        the alert is about, listed first in `alert.accounts`. A detector that raises several alerts on one
        trade raises the buyer's before the seller's: a replay across processes, which splits these
        detectors by account too, puts the alerts back in one process's order by that rule."""
        if self.scope == "pair":
            return min(trade.buyer_id, trade.seller_id)
        if alert.accounts and alert.accounts[0] in (trade.buyer_id, trade.seller_id):
            return alert.accounts[0]
        return trade.buyer_id

    def observe_registry(self, event: AccountEvent | CollectionEvent, registry: Registry) -> list[Alert]:
        return []

    def evict(self, now: float) -> None:
        """Drop state that left this detector's windows."""

    def alert(
        self,
        trade: TradeEvent,
        score: float,
        reason: str,
        evidence: dict,
        trades: Iterable[TradeEvent | Transfer] = (),
        *,
        key: str = "",
        accounts: Iterable[str] | None = None,
        severity: str | None = None,
    ) -> Alert:
        """An alert about `trades` (the triggering trade is always included, last)."""
        evidence_trades: list[TradeEvent | Transfer] = [t for t in trades if t.trade_id != trade.trade_id]
        evidence_trades.append(trade)
        if accounts is None:
            accounts = _unique(a for t in evidence_trades for a in (t.seller_id, t.buyer_id))
        return Alert(
            detector=self.name,
            typology=self.typology,
            severity=severity or severity_for(score),
            score=score,
            ts=trade.ts,
            event_id=trade.event_id,
            accounts=_unique(accounts),
            collection_id=trade.collection_id,
            token_ids=_unique(t.token_id for t in evidence_trades),
            trade_ids=[t.trade_id for t in evidence_trades],
            reason=reason,
            evidence=evidence,
            key=key,
        )

    def registry_alert(
        self,
        event: AccountEvent | CollectionEvent,
        score: float,
        reason: str,
        evidence: dict,
        *,
        accounts: Iterable[str],
        collection_id: str | None = None,
        key: str = "",
    ) -> Alert:
        """An alert about registry facts alone (no trade yet shows the pattern)."""
        return Alert(
            detector=self.name,
            typology=self.typology,
            severity=severity_for(score),
            score=score,
            ts=event.ts,
            event_id=event.event_id,
            accounts=list(accounts),
            collection_id=collection_id,
            token_ids=[],
            trade_ids=[],
            reason=reason,
            evidence=evidence,
            key=key,
        )


class DetectorScopeError(AmlwatchError, ValueError):
    """A detector whose `scope` no streaming stage can run; `field` is the detector's name."""

    def __init__(self, detector: str, message: str):
        super().__init__(f"detector {detector}: {message}")
        self.field = detector


def check_scope(detector: Detector) -> None:
    """The account-keyed stage gets paid trades only, no registry events: a detector scoped to accounts
    or pairs cannot wait for registry facts there."""
    if detector.scope not in SCOPES:
        raise DetectorScopeError(detector.name, f"scope {detector.scope!r} is not one of {', '.join(SCOPES)}")
    if detector.scope != "collection" and detector.needs_registry:
        raise DetectorScopeError(detector.name, f"a {detector.scope}-scoped detector sees no registry events "
                                                "in the account-keyed stage: it cannot set needs_registry")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def money(amount) -> str:
    """Yuan with two decimals and thousands separators, for reasons."""
    return f"{amount:,.2f} CNY"
