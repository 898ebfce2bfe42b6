"""Who holds each token, and the token's recent transfers, in event time."""

from __future__ import annotations

from amlwatch.events import TradeEvent

from .windows import KeyedWindow


class TokenLedger:
    """Recent transfers per token (for cycles) and the last transfer (for holding checks).

    The last transfer is kept for `holding_horizon` seconds: long enough for the
    longest transfer lock checked, then forgotten like everything else.
    """

    __slots__ = ("transfers", "last_transfer")

    def __init__(self, history_horizon: float, holding_horizon: float, max_per_token: int):
        self.transfers: KeyedWindow[TradeEvent] = KeyedWindow(history_horizon, max_per_token)
        self.last_transfer: KeyedWindow[TradeEvent] = KeyedWindow(holding_horizon, 1)

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

    def evict(self, now: float) -> None:
        self.transfers.evict(now)
        self.last_transfer.evict(now)
