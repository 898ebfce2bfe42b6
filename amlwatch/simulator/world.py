"""The simulated world: people, collections with their market paths, tokens, and the trade ledger.

`World` holds everything the honest market and the scenarios share: the
random source, the population, the collections, the event list and the
labels. It reads the monitor's configuration for the values a scenario must
sit on the right side of (registry grace, the structuring band, the pump
window), so a changed threshold moves the scenarios with it instead of
leaving a stale copy here.

Everything derives from `random.Random(seed)` and integer milliseconds of
event time, never the wall clock or `hash()`, so one seed gives the same bytes.
Trades are kept as compact tuples and rendered only when written.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from datetime import datetime, timedelta, timezone

from amlwatch.config import Config

CST = timezone(timedelta(hours=8))
START = datetime(2026, 3, 1, tzinfo=CST)
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FOREVER = 2**62
"""End of a taint that lasts: trades of short streams can fall after the nominal end."""

ART_CLASSES = ("art", "art", "art", "music", "video", "ticket", "game_item", "ip_license", "cultural_relic")
FINANCIAL_CLASSES = ("security", "insurance", "loan", "precious_metal", "fund_share")
ISSUE_PRICE_RANGE = (9.9, 999.0)
"""Issue prices in CNY, log-uniform, each ending in .90."""
LOCK_DAYS = (0, 0, 0, 0, 7, 7, 14, 30, 90, 180)
PAY_METHODS = ("alipay", "alipay", "wechat_pay", "wechat_pay", "bank_card", "digital_rmb")
REGIONS = ("CN-11", "CN-31", "CN-44", "CN-32", "CN-33", "CN-51", "CN-42", "CN-37", "CN-61", "CN-12")
FLOOR_NOISE = (0.96, 1.06)
"""A floor token sells within a few percent of the collection's floor."""
RARE_SHARE = 0.4
"""Share of tokens with a rarity premium; the rest sit on the floor."""
RARITY_TAIL = 1.6
"""Pareto exponent of the rarity premium: heavy-tailed, as NFT prices are (most rare tokens sell
under 2x the floor, one in a hundred above 15x)."""
RARITY_CAP = 60.0
RARE_NOISE = 0.18
"""Log-normal spread of a rare token's price around its premium: rare tokens have no fixed price."""
REGIME_DRIFTS = (-0.06, -0.03, -0.01, 0.0, 0.0, 0.01, 0.03, 0.06)
"""Daily log drift of a collection's floor in one regime: falling, flat and rising markets."""
REGIME_DAYS = (3, 12)
PREMIUM_MIN = 4
"""High-value collections, enough for a structuring scenario to spread four legs over four of them."""
DAILY_VOLATILITY = 0.03


class Account:
    """One person's account: the identity attributes its registry events carry."""

    __slots__ = ("idx", "account_id", "name_hash", "id_hash", "phone_hash", "cards", "wallet", "device",
                 "ip", "region", "birth_year", "kyc", "ready_ms", "taint")

    def __init__(self, idx: int, account_id: str):
        self.idx = idx
        self.account_id = account_id
        self.name_hash = ""
        self.id_hash = ""
        self.phone_hash = ""
        self.cards: list[str] = []
        self.wallet = ""
        self.device = ""
        self.ip = ""
        self.region = ""
        self.birth_year = 1990
        self.kyc = 3
        self.ready_ms = 0
        self.taint: tuple | None = None
        """(scenario, kind, from_ms, until_ms) for accounts whose trades break real-name rules."""


class Collection:
    """A collection with its market price path and the tokens scenarios may still buy from the issuer."""

    __slots__ = ("collection_id", "issuer", "asset_class", "fractional", "issue", "supply", "lock_days",
                 "launch_ms", "role", "points", "tokens", "unsold", "odd_ms", "secondary")

    def __init__(self, collection_id: str, issuer: Account, role: str):
        self.collection_id = collection_id
        self.issuer = issuer
        self.role = role
        self.asset_class = "art"
        self.fractional = False
        self.issue = 9900
        self.supply = 100
        self.lock_days = 0
        self.launch_ms = 0
        self.points: list[float] = []
        self.tokens: list[Token] = []
        """Tokens the honest market trades."""
        self.unsold: list[str] = []
        """Token ids still with the issuer, for scenarios to buy at the issue price."""
        self.odd_ms: list[int] = []
        self.secondary: list[tuple[int, int]] = []
        """(ms, cents) of paid secondary trades, for the medians scenarios aim at."""

    def market(self, ms: int) -> float:
        """Market price in cents: daily points, linear in between."""
        day = (ms - self.launch_ms) / DAY
        if day <= 0:
            return self.points[0]
        index = int(day)
        if index + 1 >= len(self.points):
            return self.points[-1]
        low, high = self.points[index], self.points[index + 1]
        return low + (high - low) * (day - index)

    def prohibited(self) -> bool:
        return self.asset_class in FINANCIAL_CLASSES or self.fractional


class Token:
    """A token's owner and acquisition, every earlier owner (so only a deliberate buy-back sends it
    back), and its rarity premium over the collection's floor."""

    __slots__ = ("token_id", "collection", "owner", "acquired_ms", "acquired_cents", "owners", "rarity")

    def __init__(self, token_id: str, collection: Collection, owner: Account, ms: int, cents: int):
        self.token_id = token_id
        self.collection = collection
        self.owner = owner
        self.acquired_ms = ms
        self.acquired_cents = cents
        self.owners = [collection.issuer.idx]
        self.rarity = 1.0



def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


class World:
    """The whole stream's state: population, collections, events and labels, and the primitives
    (accounts, collections, trades) that the honest market and the scenarios are built from."""

    def __init__(self, seed: int, days: int, accounts: int, config: Config | None = None):
        config = config or Config()
        self.config = config
        self.grace_ms = round(config.identity.registry_grace_minutes * MINUTE)
        """How long the monitor waits for late registry events."""
        self.odd_spacing = round(config.speculation.pump_window_hours * HOUR) + 30 * MINUTE
        """Off-market prices in one collection are kept this far apart: longer than the pump window."""
        line = config.structuring.reporting_threshold
        self.near_band = (int(line * config.structuring.near_fraction * 100), int(line * 100))
        """Structuring band in cents, paid in cash or digital RMB (the cash line): near_fraction x the
        reporting threshold up to just below it."""
        self.pay_methods = PAY_METHODS
        self.rng = random.Random(seed)
        self.seed = seed
        self.days = days
        self.end = days * DAY
        self.size = accounts
        self.scale = accounts / 2000 * days / 30
        self.accounts: list[Account] = []
        self.collections: list[Collection] = []
        self.events: list[tuple] = []
        """(ms, seq, kind, payload): kind 0 account dict, 1 collection dict, 2 trade tuple."""
        self.seq = 0
        self.trades = 0
        self.labels: list[tuple[str, str, str]] = []
        self.negatives: list[tuple[str, str]] = []
        self.pairs: set[int] = set()
        self.pool: list[Account] = []
        self.pool_ready: list[int] = []
        self.ip_counter = 0

    # --- scaling -------------------------------------------------------------------------------

    def count(self, base: float) -> int:
        """Instances of a scenario: `base` at the default size (2,000 accounts, 30 days), at least one."""
        return max(1, round(base * self.scale))

    def instant(self, lead_days: float, span_days: float) -> int:
        """A scenario start leaving `lead_days` before it and `span_days` after it inside the stream."""
        low = int(lead_days * DAY)
        return self.rng.randrange(low, max(low + HOUR, int(self.end - span_days * DAY)))

    # --- identities ------------------------------------------------------------------------------

    def digest(self, kind: str, value) -> str:
        return hashlib.sha256(f"{self.seed}:{kind}:{value}".encode()).hexdigest()

    def new_ip(self) -> str:
        self.ip_counter += 1
        n = self.ip_counter * 2654435761 % (1 << 24)
        return f"{36 + self.ip_counter % 80}.{n >> 16 & 255}.{n >> 8 & 255}.{(n & 255) or 1}"

    def new_account(self, ready_ms: int, *, kyc: int | None = None, birth_year: int | None = None,
                    ip: str | None = None, emit: bool = True, prefix: str = "acc") -> Account:
        """A real person with their own name, ID, phone, card and device, verified by `ready_ms`."""
        rng = self.rng
        idx = len(self.accounts)
        account = Account(idx, f"{prefix}-{idx:06d}")
        account.name_hash = self.digest("name", idx)
        account.id_hash = self.digest("national-id", idx)
        account.phone_hash = self.digest("phone", idx)
        account.cards = [self.digest("card", idx)] + ([self.digest("card2", idx)] if rng.random() < 0.3 else [])
        account.wallet = self.digest("wallet", idx)
        account.device = f"dev-{self.digest('device', idx)[:16]}"
        account.ip = ip or self.new_ip()
        account.region = rng.choice(REGIONS)
        account.birth_year = birth_year or rng.randint(1960, 2006)
        account.kyc = kyc if kyc is not None else (3 if rng.random() < 0.8 else 2)
        account.ready_ms = max(0, ready_ms)
        self.accounts.append(account)
        if emit:
            self.register(account, account.ready_ms)
        return account

    def register(self, account: Account, ready_ms: int, gap_ms: int | None = None) -> None:
        """Register (phone level), then verify to the account's KYC level so it is ready at `ready_ms`."""
        gap = gap_ms if gap_ms is not None else self.rng.randint(20 * SECOND, 2 * HOUR)
        registered = max(0, ready_ms - gap)
        self.add_account_event(registered, account, "register", kyc_level=1, phone_hash=account.phone_hash,
                               device_id=account.device, ip=account.ip, region=account.region)
        if account.kyc >= 2:
            self.verify(account, max(registered, ready_ms))

    def verify(self, account: Account, ms: int) -> None:
        fields = {"kyc_level": account.kyc, "name_hash": account.name_hash, "id_hash": account.id_hash,
                  "birth_year": account.birth_year, "device_id": account.device, "ip": account.ip}
        if account.kyc >= 3:
            fields["bank_card_hashes"] = list(account.cards)
        self.add_account_event(ms, account, "verify", **fields)

    def add_account_event(self, ms: int, account: Account, action: str, **fields) -> None:
        record = {"type": "account", "account_id": account.account_id, "action": action}
        record.update(fields)
        self.push(ms, 0, record)

    def push(self, ms: int, kind: int, payload) -> None:
        self.seq += 1
        self.events.append((ms, self.seq, kind, payload))

    def honest_buyer(self, ms: int, avoid: Account | None = None, owners: list[int] | None = None) -> Account | None:
        """A random honest account verified before `ms` that has never traded with `avoid` nor owned the token."""
        ready = bisect_right(self.pool_ready, ms - MINUTE)
        if ready == 0:
            return None
        rng, pool, pairs = self.rng, self.pool, self.pairs
        for _ in range(8):
            buyer = pool[rng.randrange(ready)]
            if buyer is avoid or (owners and buyer.idx in owners):
                continue
            if avoid is not None and _pair(buyer, avoid) in pairs:
                continue
            return buyer
        return None

    # --- collections and trades ------------------------------------------------------------------

    def new_collection(self, role: str, launch_ms: int, *, issuer: Account | None = None, lock_days: int | None = None,
                       issue: int | None = None, supply: int | None = None, asset_class: str | None = None,
                       fractional: bool = False, runup: bool = False, emit: bool = True) -> Collection:
        rng = self.rng
        if issuer is None:
            issuer = rng.choice(self.issuers)
        collection = Collection(f"col-{len(self.collections):05d}", issuer, role)
        collection.asset_class = asset_class or rng.choice(ART_CLASSES)
        collection.fractional = fractional
        collection.issue = issue or self.issue_price()
        collection.supply = supply or rng.choice((50, 100, 150, 200, 300, 500))
        collection.lock_days = rng.choice(LOCK_DAYS) if lock_days is None else lock_days
        collection.launch_ms = launch_ms
        collection.points = self.floor_path(collection.issue, runup)
        self.collections.append(collection)
        if emit:
            self.push(launch_ms, 1, {
                "type": "collection", "collection_id": collection.collection_id, "action": "launch",
                "issuer_id": issuer.account_id, "asset_class": collection.asset_class,
                "fractional": collection.fractional, "issue_price": _cents(collection.issue), "currency": "CNY",
                "supply": collection.supply, "transfer_lock_days": collection.lock_days})
        return collection

    def floor_path(self, issue: int, runup: bool) -> list[float]:
        """Daily floor prices in cents: regimes of rising, flat and falling markets with daily noise.

        A run-up collection climbs 5-7% a day for one to two weeks first (the gradual run-up hard negative)."""
        rng = self.rng
        price = issue * rng.uniform(1.0, 1.5)
        points = [price]
        runup_days = rng.randint(8, 14) if runup else 0
        drift, regime_left = 0.0, 0
        for day in range(self.days + 2):
            if day < runup_days:
                price *= rng.uniform(1.05, 1.07)
            else:
                if regime_left <= 0:
                    drift, regime_left = rng.choice(REGIME_DRIFTS), rng.randint(*REGIME_DAYS)
                regime_left -= 1
                price *= math.exp(drift + rng.gauss(0.0, DAILY_VOLATILITY))
            points.append(max(price, 100.0))
        return points

    def rarity(self) -> float:
        """A token's price premium over the floor: 1 for most, Pareto-tailed for the rest."""
        rng = self.rng
        if rng.random() >= RARE_SHARE:
            return 1.0
        return min(rng.paretovariate(RARITY_TAIL), RARITY_CAP)

    def issue_price(self) -> int:
        low, high = ISSUE_PRICE_RANGE
        return int(math.exp(self.rng.uniform(math.log(low + 0.1), math.log(high + 0.1)))) * 100 - 10

    def trade(self, ms: int, collection: Collection, token: Token | str, kind: str, seller: Account,
              buyer: Account, cents: int, *, currency: str = "CNY", method: str | None = None,
              payer: str | None = "buyer", instrument: str | None = None, buyer_device: str | None = None,
              buyer_ip: str | None = None) -> str:
        """Record one trade, move the token, and label what the real-name, currency and asset rules flag."""
        self.trades += 1
        trade_id = f"tr-{self.trades:08d}"
        paid = kind != "gift" and cents > 0
        if kind == "gift":
            method, payer_hash, instrument = "none", None, None
        else:
            method = method or self.rng.choice(PAY_METHODS)
            payer_hash = buyer.name_hash if payer == "buyer" else payer
            if instrument is None:
                instrument = buyer.cards[0] if buyer.kyc >= 3 else buyer.wallet
        if isinstance(token, Token):
            token_id = token.token_id
            token.owners.append(seller.idx)
            token.owner = buyer
            token.acquired_ms = ms
            token.acquired_cents = cents if paid else 0
        else:
            token_id = token
        if paid:
            self.pairs.add(_pair(seller, buyer))
            if kind == "secondary" and collection is not None:
                collection.secondary.append((ms, cents))
        price = _cents(cents) if paid else "0"
        self.push(ms, 2, (trade_id, collection.collection_id if collection else token_id.rsplit("-", 1)[0],
                          token_id, kind, seller.account_id, buyer.account_id, price, currency, method,
                          payer_hash, instrument, buyer_device or buyer.device, buyer_ip or buyer.ip,
                          seller.device, seller.ip))
        for role, party in (("buyer", buyer), ("seller", seller)):
            scenario = _identity_breach(party, role, ms)
            if scenario:
                self.label(trade_id, "identity_mismatch", scenario)
                break
        if currency != "CNY" or method == "crypto":
            self.label(trade_id, "prohibited_settlement", "crypto_method" if currency == "CNY" else f"{currency.lower()}_priced")
        if collection is not None and collection.prohibited():
            self.label(trade_id, "prohibited_asset", "fractional" if collection.fractional else "financial_class")
        return trade_id

    def label(self, trade_id: str, typology: str, scenario: str) -> None:
        self.labels.append((trade_id, typology, scenario))

    def negative(self, trade_id: str, scenario: str) -> None:
        self.negatives.append((trade_id, scenario))

    def market_cents(self, collection: Collection, ms: int) -> int:
        """A floor token's price at `ms`: the floor within a few percent."""
        return max(1, round(collection.market(ms) * self.rng.uniform(*FLOOR_NOISE)))

    def token_cents(self, token: Token, ms: int) -> int:
        """What an honest buyer pays for this token: the floor times its rarity premium, noisy for rare ones."""
        if token.rarity == 1.0:
            return self.market_cents(token.collection, ms)
        premium = token.rarity * math.exp(self.rng.gauss(0.0, RARE_NOISE))
        return max(1, round(token.collection.market(ms) * max(premium, 1.0)))

    def claim_odd(self, collection: Collection, ms: int) -> bool:
        """Reserve an off-market price at `ms` in the collection if no other is within the pump window."""
        if any(abs(ms - other) < self.odd_spacing for other in collection.odd_ms):
            return False
        collection.odd_ms.append(ms)
        return True

    def odd_moment(self, lead_days: float, span_days: float, delay: tuple[int, int] = (0, 0),
                   **pick) -> tuple[int, int, Collection]:
        """A start, an off-market moment `delay` after it, and a collection with no other off-market
        price near that moment (retried, so every scenario instance happens)."""
        for _ in range(100):
            start = self.instant(lead_days, span_days)
            collection = self.pick_collection(start, **pick)
            moment = start + self.rng.randint(*delay)
            if self.claim_odd(collection, moment):
                return start, moment, collection
        raise RuntimeError("no collection is free of off-market prices; the stream is too small")

    def buy_unsold(self, collection: Collection, buyer: Account, ms: int, **payment) -> tuple[Token, str]:
        """A primary purchase of one of the issuer's unsold tokens, held outside the honest market."""
        token = Token(collection.unsold.pop(), collection, buyer, ms, collection.issue)
        trade_id = self.trade(ms, collection, token, "primary", collection.issuer, buyer, collection.issue, **payment)
        return token, trade_id

    def pick_collection(self, ms: int, *, roles=("honest",), locked: bool | None = False, needed: int = 1,
                        lead: int = DAY, max_lock: int = 14) -> Collection:
        """A collection launched `lead` before `ms` with `needed` unsold tokens and a lock of at most
        `max_lock` days (locked: a lock above 0; False: none; None: either)."""
        rng = self.rng

        def fits(c: Collection) -> bool:
            return (c.role in roles and c.launch_ms + lead <= ms and len(c.unsold) >= needed
                    and c.lock_days <= max_lock and (locked is None or (c.lock_days > 0) == locked))

        collections = self.collections
        for _ in range(40):
            collection = collections[rng.randrange(len(collections))]
            if fits(collection):
                return collection
        candidates = [c for c in collections if fits(c)]
        if candidates:
            return rng.choice(candidates)
        collection = self.new_collection(roles[0], max(0, ms - lead - HOUR), lock_days=min(7, max_lock) if locked else 0,
                                         supply=200)
        collection.unsold = [f"{collection.collection_id}-{n:05d}" for n in range(collection.supply, 0, -1)]
        return collection


    def near_threshold(self) -> int:
        low, high = self.near_band
        return self.rng.randint(low + (high - low) // 50, high - (high - low) // 100)

    def build_population(self) -> None:
        rng = self.rng
        self.issuers = [self.new_account(rng.randint(0, 2 * HOUR), kyc=3, prefix="iss")
                        for _ in range(max(4, self.size // 100))]
        honest = []
        for _ in range(self.size):
            early = rng.random() < 0.7
            ready = rng.randint(0, DAY) if early else rng.randint(DAY, self.end - DAY)
            honest.append(self.new_account(ready))
        honest.sort(key=lambda a: a.ready_ms)
        self.pool = honest
        self.pool_ready = [a.ready_ms for a in honest]

    def build_collections(self) -> None:
        rng = self.rng
        count = max(24, self.size // 8)
        for n in range(count):
            launch = rng.randint(2 * HOUR, DAY) if n < count // 3 else rng.randint(DAY, max(DAY + HOUR, self.end - 3 * DAY))
            role = "sellout" if rng.random() < 0.12 else "honest"
            self.new_collection(role, launch, supply=rng.choice((50, 100, 200)) if role == "sellout" else None)
        for _ in range(self.count(3)):
            self.new_collection("runup", rng.randint(2 * HOUR, max(3 * HOUR, self.end - 12 * DAY)), lock_days=0,
                                runup=True)
        for _ in range(self.count(2)):
            self.new_collection("prohibited", rng.randint(2 * HOUR, max(3 * HOUR, self.end - 5 * DAY)), supply=30,
                                asset_class=rng.choice(FINANCIAL_CLASSES), lock_days=0)
        self.new_collection("prohibited", rng.randint(2 * HOUR, max(3 * HOUR, self.end - 5 * DAY)), supply=30, fractional=True,
                            lock_days=0)
        for _ in range(self.count(6)):
            self.new_collection("reserved", rng.randint(2 * HOUR, max(3 * HOUR, self.end - 6 * DAY)), lock_days=0,
                                issue=rng.choice((990, 1990, 4900, 9900)), supply=200)
        self.premium = [self.new_collection("premium", rng.randint(HOUR, 3 * HOUR), lock_days=0,
                                            issue=rng.choice((18_800_00, 26_800_00, 32_800_00, 36_000_00)),
                                            supply=2000, asset_class="cultural_relic")
                        for _ in range(max(PREMIUM_MIN, self.count(3)))]


def _pair(a: Account, b: Account) -> int:
    return a.idx * 10_000_000 + b.idx if a.idx < b.idx else b.idx * 10_000_000 + a.idx


def _identity_breach(account: Account, role: str, ms: int) -> str | None:
    """The scenario whose real-name breach the monitor reports for this party at `ms`, if any."""
    taint = account.taint
    if taint is None:
        return None
    scenario, applies_to, since, until = taint
    if applies_to not in ("always", role) or not since <= ms < until:
        return None
    return scenario