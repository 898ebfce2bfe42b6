"""Who holds each token, and the token's recent transfers, in event time."""

from __future__ import annotations

from sys import intern

from amlwatch.events import TradeEvent

from .windows import CountWindow, KeyedWindow


class Transfer:
    """What the ledger and the wash windows keep of a trade: the fields detectors read of an earlier
    trade (cycles, re-buys, acquisitions, last resale prices) and alerts cite (ids, accounts, token).

    A month of trades stays in those windows. Kept as TradeEvents, with their timestamps, hashes,
    devices and IPs, they were most of a replay's memory; a Transfer is a quarter of one, and its
    account, token and kind strings are interned, so each is held once however many trades name it.
    """

    __slots__ = ("t", "trade_id", "token_id", "seller_id", "buyer_id", "price", "kind", "paid")

    def __init__(self, t: float, trade_id: str, token_id: str, seller_id: str, buyer_id: str, price,
                 kind: str, paid: bool):
        self.t = t
        self.trade_id = trade_id
        self.token_id = token_id
        self.seller_id = seller_id
        self.buyer_id = buyer_id
        self.price = price
        self.kind = kind
        self.paid = paid

    @classmethod
    def of(cls, trade: TradeEvent) -> "Transfer":
        return cls(trade.t, trade.trade_id, intern(trade.token_id), intern(trade.seller_id),
                   intern(trade.buyer_id), trade.price, intern(trade.kind), trade.paid)

    def __reduce__(self):
        return Transfer, (self.t, self.trade_id, self.token_id, self.seller_id, self.buyer_id, self.price,
                          self.kind, self.paid)

    def __repr__(self) -> str:
        return f"Transfer({self.trade_id}, {self.token_id}: {self.seller_id} -> {self.buyer_id}, {self.price})"


class TokenLedger:
    """Recent transfers per token (for cycles), the last transfer (for holding checks), and how
    much each account trades in each collection (to tell a dealer from a pair of accounts).

    The last transfer is kept for `holding_horizon` seconds: long enough for the
    longest transfer lock checked, then forgotten like everything else. Activity
    counts paid trades per (collection, account) and per collection over the
    history horizon: what one collection's trades show, so it is the same in
    replay and in the streaming stage keyed by collection.

    Every window holding a trade holds the same `(t, Transfer)` entry (`entry`), made once per trade.
    """

    state_version = 1
    """1: windows hold `(t, Transfer)` entries (were `(t, TradeEvent)`)."""
    __slots__ = ("transfers", "last_transfer", "activity", "_entry_of", "_entry")

    def __init__(self, history_horizon: float, holding_horizon: float, max_per_token: int):
        self.transfers: KeyedWindow[Transfer] = KeyedWindow(history_horizon, max_per_token)
        self.last_transfer: KeyedWindow[Transfer] = KeyedWindow(holding_horizon, 1)
        self.activity = CountWindow(history_horizon)
        self._entry_of: TradeEvent | None = None
        self._entry: tuple[float, Transfer] | None = None

    def entry(self, trade: TradeEvent) -> tuple[float, Transfer]:
        """`(t, Transfer)` of `trade`, the entry every window keeping it shares (the detectors see a trade
        before `record`, so the entry is made by whichever asks first)."""
        entry = self._entry
        if trade is not self._entry_of or entry is None:
            self._entry_of = trade
            entry = self._entry = (trade.t, Transfer.of(trade))
        return entry

    def acquisition(self, trade: TradeEvent) -> Transfer | None:
        """The transfer by which this trade's seller got the token, if known."""
        last = self.last_transfer.recent(trade.token_id, trade.t)
        if last and last[-1][1].buyer_id == trade.seller_id:
            return last[-1][1]
        return None

    def history(self, token_id: str, now: float):
        return self.transfers.recent(token_id, now)

    def record(self, trade: TradeEvent) -> None:
        entry = self.entry(trade)
        transfer = entry[1]
        token = transfer.token_id
        self.transfers.add_entry(token, entry)
        self.last_transfer.add_entry(token, entry)
        if transfer.paid:
            collection = intern(trade.collection_id)
            self.activity.add(collection, trade.t)
            self.activity.add((collection, transfer.buyer_id), trade.t)
            if transfer.seller_id != transfer.buyer_id:
                self.activity.add((collection, transfer.seller_id), trade.t)

    def share(self, collection_id: str, account_id: str, now: float) -> tuple[int, float]:
        """The account's paid trades in the collection within the horizon, and their share of all."""
        mine = self.activity.count((collection_id, account_id), now)
        total = self.activity.count(collection_id, now)
        return mine, (mine / total if total else 0.0)

    def evict(self, now: float) -> None:
        self.transfers.evict(now)
        self.last_transfer.evict(now)
        self.activity.evict(now)
