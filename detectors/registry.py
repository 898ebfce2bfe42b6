"""Real-name registry state: accounts and collections as their events left them.

Later account events update earlier state; fields absent from an update keep
their previous value (docs/EVENTS.md). The registry grows with the number of
registered accounts and collections, not with trading volume.
"""

from __future__ import annotations

from decimal import Decimal

from amlwatch.events import AccountEvent, CollectionEvent

MAX_DEVICES_PER_ACCOUNT = 16


class AccountState:
    __slots__ = (
        "account_id", "kyc_level", "name_hash", "id_hash", "birth_year", "phone_hash",
        "cards", "devices", "frozen", "closed", "registered_t", "region",
    )

    def __init__(self, account_id: str, t: float):
        self.account_id = account_id
        self.kyc_level = 0
        self.name_hash: str | None = None
        self.id_hash: str | None = None
        self.birth_year: int | None = None
        self.phone_hash: str | None = None
        self.cards: frozenset[str] = frozenset()
        self.devices: tuple[str, ...] = ()
        self.frozen = False
        self.closed = False
        self.registered_t = t
        self.region: str | None = None

    def apply(self, event: AccountEvent) -> None:
        if event.kyc_level is not None:
            self.kyc_level = event.kyc_level
        if event.name_hash is not None:
            self.name_hash = event.name_hash
        if event.id_hash is not None:
            self.id_hash = event.id_hash
        if event.birth_year is not None:
            self.birth_year = event.birth_year
        if event.phone_hash is not None:
            self.phone_hash = event.phone_hash
        if event.region is not None:
            self.region = event.region
        if event.bank_card_hashes is not None:
            self.cards = frozenset(event.bank_card_hashes)
        if event.device_id is not None and event.device_id not in self.devices:
            self.devices = (self.devices + (event.device_id,))[-MAX_DEVICES_PER_ACCOUNT:]
        if event.action == "freeze":
            self.frozen = True
        elif event.action == "unfreeze":
            self.frozen = False
        elif event.action == "close":
            self.closed = True


class CollectionState:
    __slots__ = (
        "collection_id", "issuer_id", "asset_class", "fractional", "issue_price",
        "currency", "supply", "transfer_lock_days", "delisted",
    )

    def __init__(self, collection_id: str):
        self.collection_id = collection_id
        self.issuer_id: str | None = None
        self.asset_class: str | None = None
        self.fractional: bool = False
        self.issue_price: Decimal | None = None
        self.currency: str | None = None
        self.supply: int | None = None
        self.transfer_lock_days: int = 0
        self.delisted = False

    def apply(self, event: CollectionEvent) -> None:
        for name in ("issuer_id", "asset_class", "fractional", "issue_price", "currency",
                     "supply", "transfer_lock_days"):
            value = getattr(event, name)
            if value is not None:
                setattr(self, name, value)
        if event.action == "delist":
            self.delisted = True


class Registry:
    """Accounts, collections, and which accounts each national ID is verified on."""

    __slots__ = ("accounts", "collections", "accounts_by_id_hash")

    def __init__(self):
        self.accounts: dict[str, AccountState] = {}
        self.collections: dict[str, CollectionState] = {}
        self.accounts_by_id_hash: dict[str, list[str]] = {}

    def apply_account(self, event: AccountEvent) -> AccountState:
        state = self.accounts.get(event.account_id)
        if state is None:
            state = self.accounts[event.account_id] = AccountState(event.account_id, event.t)
        previous_id = state.id_hash
        state.apply(event)
        if state.id_hash is not None and state.id_hash != previous_id:
            holders = self.accounts_by_id_hash.setdefault(state.id_hash, [])
            if event.account_id not in holders:
                holders.append(event.account_id)
        return state

    def apply_collection(self, event: CollectionEvent) -> CollectionState:
        state = self.collections.get(event.collection_id)
        if state is None:
            state = self.collections[event.collection_id] = CollectionState(event.collection_id)
        state.apply(event)
        return state

    def accounts_sharing_id(self, account: AccountState) -> list[str]:
        if account.id_hash is None:
            return []
        return self.accounts_by_id_hash.get(account.id_hash, [])
