"""Who holds each token, and the token's recent transfers, in event time."""

from __future__ import annotations

from amlwatch.events import TradeEvent

from .windows import CountWindow, KeyedWindow


class TokenLedger:
    """Recent transfers per token (for cycles), the last transfer (for holding checks), and how
    much each account trades in each collection (to tell a dealer from a pair of accounts).

    The last transfer is kept for `holding_horizon` seconds: long enough for the
    longest transfer lock checked, then forgotten like everything else. Activity
    counts paid trades per (collection, account) and per collection over the
    history horizon: what one collection's trades show, so it is the same in
    replay and in the streaming stage keyed by collection.
    """

    __slots__ = ("transfers", "last_transfer", "activity")

    def __init__(self, history_horizon: float, holding_horizon: float, max_per_token: int):
        self.transfers: KeyedWindow[TradeEvent] = KeyedWindow(history_horizon, max_per_token)
        self.last_transfer: KeyedWindow[TradeEvent] = KeyedWindow(holding_horizon, 1)
        self.activity = CountWindow(history_horizon)

    def acquisition(self, trade: TradeEvent) -> TradeEvent | None:
        """The transfer by which this trade's seller got the token, if known."""
        last = self.last_transfer.recent(trade.token_id, trade.t)
        if last and last[-1][1].buyer_id == trade.seller_id:
            return last[-1][1]
        return None

    def history(self, token_id: str, now: float):
        return self.transfers.recent(token_id, now)

    def record(self, trade: TradeEvent) -> None:
        self.transfers.add(trade.token_id, trade.t, trade)
        self.last_transfer.add(trade.token_id, trade.t, trade)
        if trade.paid:
            self.activity.add(trade.collection_id, trade.t)
            self.activity.add((trade.collection_id, trade.buyer_id), trade.t)
            if trade.seller_id != trade.buyer_id:
                self.activity.add((trade.collection_id, trade.seller_id), trade.t)

    def share(self, collection_id: str, account_id: str, now: float) -> tuple[int, float]:
        """The account's paid trades in the collection within the horizon, and their share of all."""
        mine = self.activity.count((collection_id, account_id), now)
        total = self.activity.count(collection_id, now)
        return mine, (mine / total if total else 0.0)

    def evict(self, now: float) -> None:
        self.transfers.evict(now)
        self.last_transfer.evict(now)
        self.activity.evict(now)
