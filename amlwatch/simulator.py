"""A labelled synthetic digital-collectible marketplace, for evaluation, demos and benchmarks.

Honest traffic follows every rule in docs/DETECTORS.md; hard negatives look
suspicious but are honest; injected typologies carry labels for exactly the
trades the rules should flag, evidence trades included (an alert names every
leg of a cycle, the acquisition behind a flip, every trade of a pump), so
`amlwatch.evaluation` scores recall and precision per typology.

Everything derives from `random.Random(seed)` and integer milliseconds of
event time, never the wall clock or `hash()`, so one seed gives the same bytes.
Trades are kept as compact tuples and rendered only when written, so a
million-event stream fits in memory.

Structural guarantees the scenarios rely on:
- honest secondary prices are the collection's market price times a factor in
  [0.955, 1.04], and the market moves under 0.6% in two hours, so two honest
  trades never differ by the pump step (10%); a trade priced off the market
  (spike, flip, crypto) is kept 2.5 hours from any other in its collection, so
  no honest run can reach the pump length;
- honest accounts share no identity attribute, a pair of accounts trades with
  money at most once, and a token never returns to an earlier owner;
- honest holders keep a token past its transfer lock and at least 12 hours;
- only the `premium` collections see prices from 40,000 CNY, and every account
  trading there near the reporting threshold belongs to one scenario.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import random
from bisect import bisect_right
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

CST = timezone(timedelta(hours=8))
START = datetime(2026, 3, 1, tzinfo=CST)
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FOREVER = 2**62
"""End of a taint that lasts: trades of short streams can fall after the nominal end."""
GRACE = 10 * MINUTE
"""identity.registry_grace_minutes: how long the monitor waits for late registry events."""
ODD_SPACING = 150 * MINUTE
"""Off-market prices in one collection are kept this far apart (pump window is 2 hours)."""
NEAR_THRESHOLD = (40_000_00, 50_000_00)
"""Structuring band in cents: 0.8 x the 50,000 CNY reporting threshold up to just below it."""
WRITE_CHUNK = 20_000

ART_CLASSES = ("art", "art", "art", "music", "video", "ticket", "game_item", "ip_license", "cultural_relic")
FINANCIAL_CLASSES = ("security", "insurance", "loan", "precious_metal", "fund_share")
ISSUE_PRICE_RANGE = (9.9, 999.0)
"""Issue prices in CNY, log-uniform, each ending in .90."""
LOCK_DAYS = (0, 0, 0, 0, 7, 7, 14, 30, 90, 180)
PAY_METHODS = ("alipay", "alipay", "wechat_pay", "wechat_pay", "bank_card", "digital_rmb")
REGIONS = ("CN-11", "CN-31", "CN-44", "CN-32", "CN-33", "CN-51", "CN-42", "CN-37", "CN-61", "CN-12")
HONEST_NOISE = (0.955, 1.04)


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
    """A token's owner and acquisition, and every earlier owner, so no trade sends it back."""

    __slots__ = ("token_id", "collection", "owner", "acquired_ms", "acquired_cents", "owners")

    def __init__(self, token_id: str, collection: Collection, owner: Account, ms: int, cents: int):
        self.token_id = token_id
        self.collection = collection
        self.owner = owner
        self.acquired_ms = ms
        self.acquired_cents = cents
        self.owners = [collection.issuer.idx]


def simulate(out_dir: Path, *, seed: int = 7, days: int = 30, accounts: int = 2000) -> dict:
    """Write events.jsonl.gz, labels.jsonl and negatives.jsonl into `out_dir`; return a summary."""
    if days < 4:
        raise ValueError(f"simulate needs at least 4 days, got {days}")
    if accounts < 100:
        raise ValueError(f"simulate needs at least 100 accounts, got {accounts}")
    market = _Market(seed, days, accounts)
    market.run()
    return market.write(Path(out_dir))


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


class _Market:
    """The whole month: population, collections, honest market, scenarios, then the sorted stream."""

    def __init__(self, seed: int, days: int, accounts: int):
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
        price = collection.issue * rng.uniform(1.0, 1.5)
        points = [price]
        runup_days = rng.randint(8, 14) if runup else 0
        for day in range(self.days + 2):
            if day < runup_days:
                price *= rng.uniform(1.05, 1.07)
            else:
                price *= rng.uniform(0.975, 1.03)
            points.append(price)
        collection.points = points
        self.collections.append(collection)
        if emit:
            self.push(launch_ms, 1, {
                "type": "collection", "collection_id": collection.collection_id, "action": "launch",
                "issuer_id": issuer.account_id, "asset_class": collection.asset_class,
                "fractional": collection.fractional, "issue_price": _cents(collection.issue), "currency": "CNY",
                "supply": collection.supply, "transfer_lock_days": collection.lock_days})
        return collection

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
        return max(1, round(collection.market(ms) * self.rng.uniform(*HONEST_NOISE)))

    def claim_odd(self, collection: Collection, ms: int) -> bool:
        """Reserve an off-market price at `ms` in the collection if no other is within the pump window."""
        if any(abs(ms - other) < ODD_SPACING for other in collection.odd_ms):
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

    # --- the month -------------------------------------------------------------------------------

    def run(self) -> None:
        self.build_population()
        self.build_collections()
        for collection in list(self.collections):
            self.primary_drop(collection)
        for collection in list(self.collections):
            if collection.role in ("honest", "sellout", "runup", "prohibited"):
                self.secondary_market(collection)
        self.honest_updates()
        self.hard_negatives()
        self.wash_trading()
        self.speculation()
        self.identity_mismatch()
        self.prohibited_settlement()
        self.prohibited_asset()
        self.structuring()

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
                        for _ in range(self.count(3))]

    def primary_drop(self, collection: Collection) -> None:
        """The issuer's drop: sellouts go in minutes, others sell part of the supply over hours or days."""
        rng = self.rng
        ids = [f"{collection.collection_id}-{n:05d}" for n in range(1, collection.supply + 1)]
        if collection.role in ("reserved", "premium"):
            collection.unsold = ids[::-1]
            return
        start = collection.launch_ms + rng.randint(10 * MINUTE, 2 * HOUR)
        sellout = collection.role == "sellout"
        sold = len(ids) if sellout else int(len(ids) * rng.uniform(0.55, 0.85))
        span = rng.randint(3 * MINUTE, 12 * MINUTE) if sellout else rng.randint(6 * HOUR, 3 * DAY)
        times = sorted(start + rng.randrange(span) for _ in range(sold))
        for token_id, ms in zip(ids, times):
            buyer = self.honest_buyer(ms)
            if buyer is None or ms >= self.end:
                continue
            token = Token(token_id, collection, buyer, ms, collection.issue)
            trade_id = self.trade(ms, collection, token, "primary", collection.issuer, buyer, collection.issue)
            collection.tokens.append(token)
            if sellout:
                self.negative(trade_id, "fast_sellout")
        taken = {t.token_id for t in collection.tokens}
        collection.unsold = [i for i in reversed(ids) if i not in taken]

    def secondary_market(self, collection: Collection) -> None:
        """Honest resales and gifts: after the lock, after at least 12 hours, to someone new, at market."""
        rng = self.rng
        tokens = collection.tokens
        if not tokens:
            return
        rate = len(tokens) * rng.uniform(0.16, 0.32) / DAY
        min_hold = max(collection.lock_days * DAY, 12 * HOUR)
        runup = collection.role == "runup"
        ms = tokens[-1].acquired_ms + int(rng.expovariate(rate))
        while ms < self.end:
            token = tokens[rng.randrange(len(tokens))]
            if ms - token.acquired_ms >= min_hold + rng.randrange(2 * DAY):
                seller = token.owner
                buyer = self.honest_buyer(ms, seller, token.owners)
                if buyer is not None:
                    if rng.random() < 0.08:
                        self.trade(ms, collection, token, "gift", seller, buyer, 0)
                    else:
                        trade_id = self.trade(ms, collection, token, "secondary", seller, buyer,
                                              self.market_cents(collection, ms))
                        if runup:
                            self.negative(trade_id, "gradual_runup")
            ms += max(1, int(rng.expovariate(rate)))

    def honest_updates(self) -> None:
        """Real-name accounts changing device or IP or binding another card (only new, unshared values)."""
        rng = self.rng
        for account in rng.sample(self.pool, len(self.pool) // 10):
            ms = rng.randrange(account.ready_ms + HOUR, self.end) if account.ready_ms + HOUR < self.end else None
            if ms is None:
                continue
            change = rng.random()
            if change < 0.4:
                self.add_account_event(ms, account, "update", device_id=f"dev-{self.digest('device2', account.idx)[:16]}",
                                       ip=self.new_ip())
            elif change < 0.7 or account.kyc < 3:
                self.add_account_event(ms, account, "update", ip=self.new_ip())
            else:
                account.cards = account.cards + [self.digest("card3", account.idx)]
                self.add_account_event(ms, account, "update", bank_card_hashes=list(account.cards))

    # --- hard negatives --------------------------------------------------------------------------

    def hard_negatives(self) -> None:
        rng = self.rng
        # Campus NAT: distinct people behind one public IP buying and selling among themselves.
        for _ in range(self.count(6)):
            start = self.instant(2, 4)
            ip = self.new_ip()
            group = [self.new_account(start - rng.randint(HOUR, DAY), ip=ip) for _ in range(rng.randint(3, 5))]
            collection = self.pick_collection(start, needed=len(group))
            held = [(member, self.buy_unsold(collection, member, start + rng.randrange(HOUR))[0]) for member in group]
            for n, (seller, token) in enumerate(held):
                buyer = group[(n + 1) % len(group)]
                ms = token.acquired_ms + rng.randint(DAY, 3 * DAY)
                trade_id = self.trade(ms, collection, token, "secondary", seller, buyer, self.market_cents(collection, ms),
                                      buyer_ip=ip)
                self.negative(trade_id, "shared_public_ip")
        # Households: gifts between family members on one IP, after any lock.
        for _ in range(self.count(8)):
            start = self.instant(3, 3)
            ip = self.new_ip()
            family = [self.new_account(start - rng.randint(HOUR, DAY), ip=ip) for _ in range(rng.randint(2, 4))]
            room_days = (self.end - start) // DAY - 1
            collection = self.pick_collection(start, locked=None, needed=len(family), max_lock=min(7, room_days))
            giver = family[0]
            for receiver in family[1:]:
                token, _ = self.buy_unsold(collection, giver, start + rng.randrange(HOUR))
                unlocked = token.acquired_ms + collection.lock_days * DAY
                ms = unlocked + rng.randint(HOUR, max(2 * HOUR, min(2 * DAY, self.end - unlocked - HOUR)))
                self.negative(self.trade(ms, collection, token, "gift", giver, receiver, 0), "family_gifts")
        # Buyers whose registry events arrive minutes after their first trade.
        for _ in range(self.count(25)):
            ms = self.instant(1, 0.1)
            collection = self.pick_collection(ms, locked=None)
            buyer = self.new_account(ms, emit=False)
            _, trade_id = self.buy_unsold(collection, buyer, ms)
            registered = ms + rng.randint(1 * MINUTE, 4 * MINUTE)
            gap = rng.randint(5 * SECOND, 50 * SECOND)
            self.register(buyer, registered + gap, gap_ms=gap)
            self.negative(trade_id, "late_registry")
        # Resale within hours at a small markup, under the flip markup.
        for _ in range(self.count(15)):
            start, ms, collection = self.odd_moment(2, 1, (HOUR, 5 * HOUR))
            buyer, next_buyer = self.new_account(start - HOUR), self.new_account(start - HOUR)
            token, _ = self.buy_unsold(collection, buyer, start)
            cents = round(collection.issue * rng.uniform(1.03, 1.3))
            self.negative(self.trade(ms, collection, token, "secondary", buyer, next_buyer, cents), "quick_small_resale")
        # Resale just after the transfer lock ends.
        for _ in range(self.count(15)):
            collection = self.pick_collection(self.instant(3, 1), locked=True, max_lock=7 if self.days < 20 else 14)
            lock = collection.lock_days * DAY
            if collection.launch_ms + DAY + lock + 2 * HOUR >= self.end:
                continue
            bought = rng.randrange(collection.launch_ms + DAY, self.end - lock - 2 * HOUR)
            holder, next_holder = self.new_account(bought - HOUR), self.new_account(bought - HOUR)
            token, _ = self.buy_unsold(collection, holder, bought)
            ms = bought + lock + rng.randint(MINUTE, 2 * HOUR)
            self.negative(self.trade(ms, collection, token, "secondary", holder, next_holder,
                                     self.market_cents(collection, ms)), "lock_respected")
        # High value: one large trade, and near-threshold trades spaced more than a day apart.
        for _ in range(self.count(10)):
            ms = self.instant(3, 0.1)
            collection = rng.choice(self.premium)
            seller, buyer = self.new_account(ms - 3 * DAY), self.new_account(ms - DAY)
            token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            cents = rng.randint(50_000_00, 75_000_00)
            self.negative(self.trade(ms, collection, token, "secondary", seller, buyer, cents), "large_single_trade")
        for _ in range(self.count(6)):
            trades = rng.randint(2, 3)
            ms = self.instant(3, 1.7 * trades)
            buyer = self.new_account(ms - DAY)
            for _ in range(trades):
                collection = rng.choice(self.premium)
                seller = self.new_account(ms - 3 * DAY)
                token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
                self.negative(self.trade(ms, collection, token, "secondary", seller, buyer, self.near_threshold()),
                              "spaced_high_value")
                ms += rng.randint(25 * HOUR, 40 * HOUR)

    def near_threshold(self) -> int:
        return self.rng.randint(NEAR_THRESHOLD[0] + 100_00, NEAR_THRESHOLD[1] - 100_00)

    # --- injected typologies ---------------------------------------------------------------------

    def wash_trading(self) -> None:
        rng = self.rng

        def linked(scenario: str, links_for, **payment_for):
            """A seller and a buyer tied by `links_for(seller)` (attributes the buyer shares)."""
            for _ in range(self.count(3)):
                start = self.instant(3, 4)
                collection = self.pick_collection(start, needed=4)
                seller = self.new_account(start - DAY, kyc=3)
                buyer = self.new_account(start - DAY, emit=False)
                for name, value in links_for(seller).items():
                    setattr(buyer, name, value)
                self.register(buyer, buyer.ready_ms)
                if buyer.id_hash == seller.id_hash:
                    seller.taint = buyer.taint = ("shared_national_id", "always", buyer.ready_ms, FOREVER)
                for _ in range(rng.randint(1, 2)):
                    token, _ = self.buy_unsold(collection, seller, start + rng.randrange(DAY))
                    ms = token.acquired_ms + rng.randint(DAY, 2 * DAY)
                    payment = {k: v(seller) for k, v in payment_for.items()}
                    trade_id = self.trade(ms, collection, token, "secondary", seller, buyer,
                                          self.market_cents(collection, ms), **payment)
                    self.label(trade_id, "wash_trading", scenario)

        linked("same_national_id", lambda s: {"id_hash": s.id_hash})
        linked("shared_bank_card", lambda s: {"cards": [s.cards[0]] + [self.digest("card-own", s.idx)], "kyc": 3})
        linked("shared_phone", lambda s: {"phone_hash": s.phone_hash})
        linked("shared_device", lambda s: {"device": s.device})
        linked("seller_funded", lambda s: {}, payer=lambda s: s.name_hash, instrument=lambda s: s.cards[0])

        def legs(scenario: str, path: list[Account], collection: Collection, token: Token, start: int) -> list[str]:
            ids, ms = [], start
            for seller, buyer in zip(path, path[1:]):
                ms += rng.randint(8 * HOUR, 2 * DAY)
                ids.append(self.trade(ms, collection, token, "secondary", seller, buyer, self.market_cents(collection, ms)))
            for trade_id in ids:
                self.label(trade_id, "wash_trading", scenario)
            return ids

        for cycle, base in ((2, 4), (3, 3)):
            for _ in range(self.count(base)):
                start = self.instant(2, 2 * (cycle + 1))
                ring = [self.new_account(start - DAY) for _ in range(cycle)]
                collection = self.pick_collection(start)
                token, _ = self.buy_unsold(collection, ring[0], start)
                legs(f"round_trip_{cycle}_legs", ring + [ring[0]], collection, token, start)
        for _ in range(self.count(3)):
            start = self.instant(2, 8)
            a, b = self.new_account(start - DAY), self.new_account(start - DAY)
            collection = self.pick_collection(start, needed=4)
            ms = start
            for seller, buyer in ((a, b), (b, a), (a, b), (b, a))[: rng.randint(3, 4)]:
                token, _ = self.buy_unsold(collection, seller, ms)
                ms += rng.randint(8 * HOUR, 2 * DAY)
                self.label(self.trade(ms, collection, token, "secondary", seller, buyer,
                                      self.market_cents(collection, ms)), "wash_trading", "pair_repeat")
        for _ in range(self.count(2)):
            start = self.instant(2, 10)
            buyer, first, second = (self.new_account(start - DAY) for _ in range(3))
            collection = self.pick_collection(start)
            token, primary = self.buy_unsold(collection, buyer, start)
            self.label(primary, "wash_trading", "repeat_buyer")
            legs("repeat_buyer", [buyer, first, buyer, second, buyer], collection, token, start)

    def speculation(self) -> None:
        rng = self.rng
        # Price far above the collection's recent median.
        for _ in range(self.count(6)):
            for _ in range(20):
                ms = self.instant(3, 0.1)
                collection = self.pick_collection(ms, roles=("honest", "sellout"), lead=3 * DAY)
                recent = [c for t, c in collection.secondary if ms - 7 * DAY <= t < ms]
                if len(recent) >= 8 and self.claim_odd(collection, ms):
                    break
            else:
                continue
            median = sorted(recent)[len(recent) // 2]
            cents = round(median * rng.uniform(7, 12))
            if cents >= NEAR_THRESHOLD[0]:
                continue
            seller, buyer = self.new_account(ms - 2 * DAY), self.new_account(ms - DAY)
            token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            self.label(self.trade(ms, collection, token, "secondary", seller, buyer, cents), "speculation",
                       "spike_over_median")
        reserved = [c for c in self.collections if c.role == "reserved"]
        rng.shuffle(reserved)
        # A fresh collection with no market yet: price far above the issue price.
        for collection in reserved[: len(reserved) // 2]:
            ms = rng.randint(collection.launch_ms + 2 * DAY, collection.launch_ms + 5 * DAY)
            for _ in range(rng.randint(1, 2)):
                seller, buyer = self.new_account(ms - 2 * DAY), self.new_account(ms - DAY)
                token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
                cents = round(collection.issue * rng.uniform(12, 20))
                self.label(self.trade(ms, collection, token, "secondary", seller, buyer, cents), "speculation",
                           "spike_over_issue")
                ms += rng.randint(3 * HOUR, DAY)
        # Pumps: a run of resales within two hours, each well above the last.
        for collection in reserved[len(reserved) // 2:]:
            ms = rng.randint(collection.launch_ms + 2 * DAY, collection.launch_ms + 5 * DAY)
            cents = collection.issue * rng.uniform(0.95, 1.1)
            for _ in range(rng.randint(6, 8)):
                seller, buyer = self.new_account(ms - 2 * DAY), self.new_account(ms - DAY)
                token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
                self.label(self.trade(ms, collection, token, "secondary", seller, buyer, round(cents)), "speculation",
                           "pump")
                ms += rng.randint(6 * MINUTE, 15 * MINUTE)
                cents *= rng.uniform(1.2, 1.35)
        # Rapid flips: bought at the drop, resold within hours at a large markup.
        for _ in range(self.count(8)):
            ms, flip_ms, collection = self.odd_moment(2, 0.5, (HOUR, 5 * HOUR))
            flipper, buyer = self.new_account(ms - DAY), self.new_account(ms - DAY)
            token, primary = self.buy_unsold(collection, flipper, ms)
            cents = round(collection.issue * rng.uniform(1.7, 3.0))
            self.label(primary, "speculation", "rapid_flip")
            self.label(self.trade(flip_ms, collection, token, "secondary", flipper, buyer, cents), "speculation",
                       "rapid_flip")
        # Transfer locks broken by a resale or a gift.
        for _ in range(self.count(8)):
            ms = self.instant(2, 6)
            collection = self.pick_collection(ms, locked=True, max_lock=180)
            holder, receiver = self.new_account(ms - DAY), self.new_account(ms - DAY)
            token, primary = self.buy_unsold(collection, holder, ms)
            sold = ms + rng.randint(12 * HOUR, min(collection.lock_days * DAY - HOUR, 5 * DAY))
            gift = rng.random() < 0.3
            trade_id = self.trade(sold, collection, token, "gift" if gift else "secondary", holder, receiver,
                                  0 if gift else self.market_cents(collection, sold))
            self.label(primary, "speculation", "transfer_lock")
            self.label(trade_id, "speculation", "transfer_lock_gift" if gift else "transfer_lock")

    def identity_mismatch(self) -> None:
        rng = self.rng

        def buys(account: Account, start: int, count: int, **payment) -> None:
            for n in range(count):
                ms = start + n * rng.randint(2 * HOUR, DAY)
                self.buy_unsold(self.pick_collection(ms, locked=None), account, ms, **payment)

        for _ in range(self.count(5)):
            start = self.instant(2, 3)
            account = self.new_account(start - DAY, kyc=1)
            account.taint = ("kyc_below_2", "always", 0, FOREVER)
            buys(account, start, rng.randint(2, 3))
        for _ in range(self.count(10)):
            start = self.instant(2, 1)
            account = self.new_account(start - DAY)
            stranger = self.digest("stranger", account.idx)
            _, trade_id = self.buy_unsold(self.pick_collection(start, locked=None), account, start, payer=stranger,
                                          instrument=self.digest("stranger-card", account.idx))
            self.label(trade_id, "identity_mismatch", "payer_mismatch")
        for _ in range(self.count(5)):
            start = self.instant(2, 3)
            account = self.new_account(start - DAY, birth_year=rng.randint(2009, 2011))
            account.taint = ("minor_buyer", "buyer", 0, FOREVER)
            buys(account, start, rng.randint(2, 3))
        for _ in range(self.count(4)):
            start = self.instant(2, 3)
            holder = self.new_account(start - 2 * DAY)
            holder.taint = ("shared_national_id", "always", start - DAY, FOREVER)
            for _ in range(rng.randint(1, 2)):
                other = self.new_account(start - DAY, emit=False)
                other.id_hash = holder.id_hash
                other.taint = holder.taint
                self.register(other, start - DAY)
                buys(other, start, rng.randint(1, 2))
            buys(holder, start, rng.randint(1, 2))
        for _ in range(self.count(5)):
            start = self.instant(1, 2)
            ghost = self.new_account(start, emit=False, prefix="ghost")
            ghost.taint = ("never_registered", "always", 0, FOREVER)
            buys(ghost, start, rng.randint(1, 2))
        for _ in range(self.count(4)):
            start = self.instant(1, 1)
            late = self.new_account(start, emit=False)
            late.taint = ("registered_after_grace", "always", 0, start + 1)
            buys(late, start, 1)
            self.register(late, start + rng.randint(GRACE + 5 * MINUTE, 2 * HOUR), gap_ms=30 * SECOND)
        for _ in range(self.count(4)):
            start = self.instant(2, 3)
            account = self.new_account(start - DAY)
            frozen_until = start + 2 * DAY
            account.taint = ("frozen_account", "always", start - HOUR, frozen_until)
            self.add_account_event(start - HOUR, account, "freeze")
            self.add_account_event(frozen_until, account, "unfreeze")
            buys(account, start, 2)

    def prohibited_settlement(self) -> None:
        rng = self.rng
        for currency, method, base in (("USDT", "crypto", 14), ("USD", "bank_card", 8), ("CNY", "crypto", 10)):
            for _ in range(self.count(base)):
                ms = self.instant(1, 0.1)
                collection = self.pick_collection(ms, locked=None)
                buyer = self.new_account(ms - DAY)
                cents = collection.issue if currency == "CNY" else max(1, round(collection.issue / 7.2))
                crypto = method == "crypto"
                token = Token(collection.unsold.pop(), collection, buyer, ms, cents)
                self.trade(ms, collection, token, "primary", collection.issuer, buyer, cents, currency=currency,
                           method=method, payer=None if crypto else "buyer",
                           instrument=buyer.wallet if crypto else None)
        for _ in range(self.count(8)):
            _, ms, collection = self.odd_moment(3, 0.1, lead=3 * DAY)
            seller, buyer = self.new_account(ms - 3 * DAY), self.new_account(ms - DAY)
            token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            self.trade(ms, collection, token, "secondary", seller, buyer,
                       max(1, round(collection.market(ms) / 7.2)), currency="USDT", method="crypto", payer=None,
                       instrument=buyer.wallet)

    def prohibited_asset(self) -> None:
        rng = self.rng
        # Prohibited collections were launched and traded by the honest market (labelled there);
        # here a collection that never launched is traded.
        for n in range(self.count(3)):
            ms = self.instant(1, 0.1)
            issuer = rng.choice(self.issuers)
            buyer = self.new_account(ms - DAY)
            token_id = f"col-unlaunched-{self.seed}-{n}-{rng.randint(1, 500):05d}"
            self.trade(ms, None, token_id, "primary", issuer, buyer, self.issue_price())
            self.label(f"tr-{self.trades:08d}", "prohibited_asset", "unlaunched_collection")

    def structuring(self) -> None:
        rng = self.rng
        for _ in range(self.count(12)):
            ms = self.instant(3, 1)
            buyer = self.new_account(ms - DAY)
            for _ in range(rng.randint(2, 4)):
                collection = rng.choice(self.premium)
                seller = self.new_account(ms - 3 * DAY)
                token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
                self.label(self.trade(ms, collection, token, "secondary", seller, buyer, self.near_threshold()),
                           "structuring", "split_purchases")
                ms += rng.randint(HOUR, 7 * HOUR)
        for _ in range(self.count(8)):
            ms = self.instant(3, 1)
            seller = self.new_account(ms - 3 * DAY)
            for _ in range(rng.randint(2, 3)):
                collection = rng.choice(self.premium)
                buyer = self.new_account(ms - DAY)
                token, _ = self.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
                self.label(self.trade(ms, collection, token, "secondary", seller, buyer, self.near_threshold()),
                           "structuring", "split_sales")
                ms += rng.randint(HOUR, 7 * HOUR)

    # --- output ----------------------------------------------------------------------------------

    def write(self, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        events = self.events
        events.sort()
        last_day = events[-1][0] // DAY if events else 0
        day_text = [(START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(last_day + 1)]
        dumps = orjson.dumps
        with open(out / "events.jsonl.gz", "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as stream:
            chunk: list[bytes] = []
            for number, (ms, _, kind, payload) in enumerate(events, 1):
                day, rest = divmod(ms, DAY)
                hours, rest = divmod(rest, HOUR)
                minutes, rest = divmod(rest, MINUTE)
                seconds, millis = divmod(rest, SECOND)
                ts = f"{day_text[day]}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}+08:00"
                if kind == 2:
                    record = _trade_record(payload)
                else:
                    record = payload
                chunk.append(dumps({"type": record.pop("type"), "event_id": f"ev-{number:08d}", "ts": ts,
                                    "platform": "sim", **record}))
                if len(chunk) >= WRITE_CHUNK:
                    stream.write(b"\n".join(chunk) + b"\n")
                    chunk.clear()
            if chunk:
                stream.write(b"\n".join(chunk) + b"\n")
        labels = sorted(set(self.labels))
        (out / "labels.jsonl").write_bytes(b"".join(
            dumps({"trade_id": t, "typology": typology, "scenario": s}) + b"\n" for t, typology, s in labels))
        negatives = sorted(self.negatives)
        (out / "negatives.jsonl").write_bytes(b"".join(
            dumps({"trade_id": t, "scenario": s}) + b"\n" for t, s in negatives))
        labelled = Counter()
        for typology, trade_ids in _by_typology(labels).items():
            labelled[typology] = len(trade_ids)
        return {
            "events": len(events),
            "trades": self.trades,
            "accounts": len(self.accounts),
            "collections": len(self.collections),
            "labelled trades": dict(sorted(labelled.items())),
            "hard negatives": dict(sorted(Counter(s for _, s in negatives).items())),
        }


def _by_typology(labels) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trade_id, typology, _ in labels:
        found.setdefault(typology, set()).add(trade_id)
    return found


def _trade_record(payload: tuple) -> dict:
    (trade_id, collection_id, token_id, kind, seller_id, buyer_id, price, currency, method, payer, instrument,
     buyer_device, buyer_ip, seller_device, seller_ip) = payload
    payment = {"method": method}
    if payer:
        payment["payer_name_hash"] = payer
    if instrument:
        payment["instrument_hash"] = instrument
    return {"type": "trade", "trade_id": trade_id, "collection_id": collection_id, "token_id": token_id,
            "kind": kind, "seller_id": seller_id, "buyer_id": buyer_id, "price": price, "currency": currency,
            "payment": payment, "buyer_device_id": buyer_device, "buyer_ip": buyer_ip,
            "seller_device_id": seller_device, "seller_ip": seller_ip}


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
