"""Typed marketplace events, parsed strictly from the input contract (docs/EVENTS.md).

Money is `Decimal`, times are timezone-aware. Any violation raises `BadRecord`
naming the offending field, so the caller can route the raw record to the
dead-letter sink with that reason instead of crashing or dropping it.

The field-by-field parsers below define the contract and name the first bad
field. A trade, nineteen in twenty records, first takes `_trade_at_once`: the
same checks over all its fields in a few C-level passes, accepting only what
the field-by-field parser accepts with the same result, and handing anything
else to it (docs/PERFORMANCE.md, "Replay event path").
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import orjson

from amlwatch.errors import AmlwatchError

ACCOUNT_ACTIONS = frozenset({"register", "verify", "update", "freeze", "unfreeze", "close"})
COLLECTION_ACTIONS = frozenset({"launch", "update", "delist"})
TRADE_KINDS = frozenset({"primary", "secondary", "gift"})
PAYMENT_METHODS = frozenset({"bank_card", "alipay", "wechat_pay", "digital_rmb", "crypto", "none"})


class EventError(AmlwatchError, ValueError):
    """Base of all input-contract violations."""


class BadRecord(EventError):
    """A record that violates the input contract; `field` names where."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# Events are never changed once parsed, but are not `frozen`: a frozen dataclass sets each field through
# object.__setattr__, which made building a trade cost twice its orjson.loads. `unsafe_hash` keeps them
# hashable, as frozen ones were.
@dataclass(slots=True, unsafe_hash=True)
class AccountEvent:
    event_id: str
    ts: str
    t: float
    year: int
    platform: str | None
    account_id: str
    action: str
    kyc_level: int | None = None
    name_hash: str | None = None
    id_hash: str | None = None
    birth_year: int | None = None
    phone_hash: str | None = None
    bank_card_hashes: tuple[str, ...] | None = None
    device_id: str | None = None
    ip: str | None = None
    region: str | None = None

    type = "account"


@dataclass(slots=True, unsafe_hash=True)
class CollectionEvent:
    event_id: str
    ts: str
    t: float
    year: int
    platform: str | None
    collection_id: str
    action: str
    issuer_id: str | None = None
    asset_class: str | None = None
    fractional: bool | None = None
    issue_price: Decimal | None = None
    currency: str | None = None
    supply: int | None = None
    transfer_lock_days: int | None = None

    type = "collection"


@dataclass(slots=True, unsafe_hash=True)
class TradeEvent:
    event_id: str
    ts: str
    t: float
    year: int
    platform: str | None
    trade_id: str
    collection_id: str
    token_id: str
    kind: str
    seller_id: str
    buyer_id: str
    price: Decimal
    currency: str
    payment_method: str | None = None
    payer_name_hash: str | None = None
    instrument_hash: str | None = None
    buyer_device_id: str | None = None
    buyer_ip: str | None = None
    seller_device_id: str | None = None
    seller_ip: str | None = None

    type = "trade"

    @property
    def paid(self) -> bool:
        """A sale that moved money (gifts and zero-priced transfers did not)."""
        return self.kind != "gift" and self.price > 0


Event = AccountEvent | CollectionEvent | TradeEvent


def _pickle_as_arguments(cls) -> None:
    """Pickle as the constructor's arguments: streaming snapshots hold thousands of events, and the
    dataclass default (a state dict built field by field) was most of their pickling time."""
    values = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))

    def __reduce__(self):
        return cls, values(self)

    cls.__reduce__ = __reduce__


for _cls in (AccountEvent, CollectionEvent, TradeEvent):
    _pickle_as_arguments(_cls)


_ACCOUNT_FIELDS = {"account": ("account_id",), "collection": ("issuer_id",), "trade": ("buyer_id", "seller_id")}
_ANY_ACCOUNT_FIELDS = ("account_id", "issuer_id", "buyer_id", "seller_id")


def accounts_named(obj) -> list[str]:
    """Accounts a decoded input record names: account_id (account), issuer_id (collection), buyer and seller
    (trade). A record of unknown or missing type is searched for all four fields, so a bad record naming an
    account is never missed (the record archive's manifests and exports rely on this)."""
    if not isinstance(obj, dict):
        return []
    kind = obj.get("type")
    names = _ACCOUNT_FIELDS.get(kind, _ANY_ACCOUNT_FIELDS) if isinstance(kind, str) else _ANY_ACCOUNT_FIELDS
    return [v for v in (obj.get(n) for n in names) if isinstance(v, str) and v]


def identity_fact(obj) -> tuple[str, str | None] | None:
    """(account_id, action) of a decoded account event, None for anything else: what identity retention
    (kept until an account is closed) needs to know of each record."""
    if isinstance(obj, dict) and obj.get("type") == "account" and isinstance(obj.get("account_id"), str):
        action = obj.get("action")
        return obj["account_id"], action if isinstance(action, str) or action is None else None
    return None


def parse_event(raw: bytes | str | dict) -> Event:
    """Parse one JSON record (bytes, text or an already-decoded object)."""
    if isinstance(raw, dict):
        obj = raw
    else:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRecord("<json>", f"invalid JSON: {exc}") from None
    if type(obj) is dict and obj.get("type") == "trade":
        trade = _trade_at_once(obj)
        if trade is not None:
            return trade
    return _parse_by_field(obj)


def _parse_by_field(obj) -> Event:
    """The contract checked field by field, in a fixed order: the first violation raises, naming its field."""
    if not isinstance(obj, dict):
        raise BadRecord("<record>", f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        if kind is None:
            raise BadRecord("type", "missing required field")
        raise BadRecord("type", f"unknown event type {_clip(str(kind))!r}")
    event_id = _required_str(obj, "event_id")
    ts, t, year = _time(obj)
    platform = _optional_str(obj, "platform")
    return parser(obj, event_id, ts, t, year, platform)


_TRADE_REQUIRED = ("event_id", "ts", "trade_id", "collection_id", "token_id", "kind", "seller_id", "buyer_id",
                   "currency")
_trade_required = operator.itemgetter(*_TRADE_REQUIRED)
_TRADE_OPTIONAL = ("platform", "buyer_device_id", "buyer_ip", "seller_device_id", "seller_ip")
_PAYMENT_FIELDS = ("method", "payer_name_hash", "instrument_hash")
_NO_PAYMENT = (None, None, None)
_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})


def _trade_at_once(obj: dict) -> TradeEvent | None:
    """The trade `_parse_by_field` would return, or None when it might not return one (it then decides).

    Never raises: exact types only (`type(v) is str`, so a str subclass in a decoded dict goes the long
    way), every check of the long way, and nothing it would refuse gets through."""
    try:
        required = _trade_required(obj)
    except KeyError:
        return None
    get = obj.get
    optional = tuple(map(get, _TRADE_OPTIONAL))
    payment = get("payment")
    if payment is None:
        paid = _NO_PAYMENT
    elif type(payment) is dict:
        paid = tuple(map(payment.get, _PAYMENT_FIELDS))
    else:
        return None
    if not (_STR.issuperset(map(type, required)) and all(required)
            and _STR_OR_NONE.issuperset(map(type, optional)) and _STR_OR_NONE.issuperset(map(type, paid))):
        return None
    event_id, ts, trade_id, collection_id, token_id, kind, seller_id, buyer_id, currency = required
    method, payer_name_hash, instrument_hash = paid
    if kind not in TRADE_KINDS or (method is not None and method not in PAYMENT_METHODS):
        return None
    price = get("price")
    if type(price) is not str:
        return None
    amount = _AMOUNTS.get(price)
    if amount is None:
        try:
            amount = _amount("price", price)
        except BadRecord:
            return None
        if len(_AMOUNTS) >= AMOUNT_CACHE:
            _AMOUNTS.clear()
        _AMOUNTS[price] = amount
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    t = moment.timestamp()
    if not MIN_T <= t <= MAX_T:
        return None
    platform, buyer_device_id, buyer_ip, seller_device_id, seller_ip = optional
    return TradeEvent(event_id, ts, t, moment.year, platform, trade_id, collection_id, token_id, kind, seller_id,
                      buyer_id, amount, currency, method, payer_name_hash, instrument_hash, buyer_device_id,
                      buyer_ip, seller_device_id, seller_ip)


AMOUNT_CACHE = 65_536
"""Parsed prices by their text: a market repeats its prices (a drop's issue price, the floor), and a
Decimal is immutable, so one is shared. Emptied when full: bounded whatever the stream."""
_AMOUNTS: dict[str, Decimal] = {}


def _parse_account(obj, event_id, ts, t, year, platform) -> AccountEvent:
    kyc = _optional_int(obj, "kyc_level")
    if kyc is not None and not 0 <= kyc <= 3:
        raise BadRecord("kyc_level", f"must be 0-3, got {kyc}")
    cards = obj.get("bank_card_hashes")
    if cards is not None:
        if not isinstance(cards, list) or not all(isinstance(c, str) for c in cards):
            raise BadRecord("bank_card_hashes", "expected a list of strings")
        cards = tuple(cards)
    return AccountEvent(
        event_id, ts, t, year, platform,
        account_id=_required_str(obj, "account_id"),
        action=_enum(obj, "action", ACCOUNT_ACTIONS),
        kyc_level=kyc,
        name_hash=_optional_str(obj, "name_hash"),
        id_hash=_optional_str(obj, "id_hash"),
        birth_year=_optional_int(obj, "birth_year"),
        phone_hash=_optional_str(obj, "phone_hash"),
        bank_card_hashes=cards,
        device_id=_optional_str(obj, "device_id"),
        ip=_optional_str(obj, "ip"),
        region=_optional_str(obj, "region"),
    )


def _parse_collection(obj, event_id, ts, t, year, platform) -> CollectionEvent:
    fractional = obj.get("fractional")
    if fractional is not None and not isinstance(fractional, bool):
        raise BadRecord("fractional", f"expected true or false, got {_clip(repr(fractional))}")
    issue_price = obj.get("issue_price")
    return CollectionEvent(
        event_id, ts, t, year, platform,
        collection_id=_required_str(obj, "collection_id"),
        action=_enum(obj, "action", COLLECTION_ACTIONS),
        issuer_id=_optional_str(obj, "issuer_id"),
        asset_class=_optional_str(obj, "asset_class"),
        fractional=fractional,
        issue_price=None if issue_price is None else _amount("issue_price", issue_price),
        currency=_optional_str(obj, "currency"),
        supply=_optional_int(obj, "supply"),
        transfer_lock_days=_optional_int(obj, "transfer_lock_days"),
    )


def _parse_trade(obj, event_id, ts, t, year, platform) -> TradeEvent:
    payment = obj.get("payment")
    if payment is None:
        payment = {}
    elif not isinstance(payment, dict):
        raise BadRecord("payment", "expected an object")
    method = _optional_str(payment, "method", "payment.")
    if method is not None and method not in PAYMENT_METHODS:
        raise BadRecord("payment.method", f"unknown payment method {_clip(method)!r}")
    return TradeEvent(
        event_id, ts, t, year, platform,
        trade_id=_required_str(obj, "trade_id"),
        collection_id=_required_str(obj, "collection_id"),
        token_id=_required_str(obj, "token_id"),
        kind=_enum(obj, "kind", TRADE_KINDS),
        seller_id=_required_str(obj, "seller_id"),
        buyer_id=_required_str(obj, "buyer_id"),
        price=_required_amount(obj, "price"),
        currency=_required_str(obj, "currency"),
        payment_method=method,
        payer_name_hash=_optional_str(payment, "payer_name_hash", "payment."),
        instrument_hash=_optional_str(payment, "instrument_hash", "payment."),
        buyer_device_id=_optional_str(obj, "buyer_device_id"),
        buyer_ip=_optional_str(obj, "buyer_ip"),
        seller_device_id=_optional_str(obj, "seller_device_id"),
        seller_ip=_optional_str(obj, "seller_ip"),
    )


_PARSERS = {"account": _parse_account, "collection": _parse_collection, "trade": _parse_trade}


def parse_time(text: str, field: str = "ts") -> datetime:
    """ISO-8601 with an explicit UTC offset; naive times are ambiguous, so bad."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadRecord(field, f"unparsable time {_clip(str(text))!r}") from None
    if moment.tzinfo is None:
        raise BadRecord(field, f"time {_clip(text)!r} has no UTC offset")
    return moment


MIN_T = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()
MAX_T = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc).timestamp()
"""Event times must fall in UTC years 1-9999: "0001-01-01T00:00+08:00" is year 0 in UTC, and every
conversion back to a UTC date (archive day, retention, reports) would overflow on it."""


def _time(obj: dict) -> tuple[str, float, int]:
    ts = _required_str(obj, "ts")
    moment = parse_time(ts)
    t = moment.timestamp()
    if not MIN_T <= t <= MAX_T:
        raise BadRecord("ts", f"time {_clip(ts)!r} is outside UTC years 1-9999")
    return ts, t, moment.year


def _required_str(obj: dict, name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise BadRecord(name, "missing required field")
    if not isinstance(value, str):
        raise BadRecord(name, f"expected a string, got {type(value).__name__}")
    if not value:
        raise BadRecord(name, "must not be empty")
    return value


def _optional_str(obj: dict, name: str, prefix: str = "") -> str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(prefix + name, f"expected a string, got {type(value).__name__}")


def _optional_int(obj: dict, name: str) -> int | None:
    value = obj.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BadRecord(name, f"expected an integer, got {type(value).__name__}")


def _enum(obj: dict, name: str, allowed: frozenset[str]) -> str:
    value = _required_str(obj, name)
    if value not in allowed:
        raise BadRecord(name, f"unknown value {_clip(value)!r}, expected one of {sorted(allowed)}")
    return value


MAX_AMOUNT = Decimal("1000000000000000")
"""1e15 CNY: far past any real trade, and small enough that every float feature stays finite."""


def _required_amount(obj: dict, name: str) -> Decimal:
    if name not in obj:
        raise BadRecord(name, "missing required field")
    return _amount(name, obj[name])


MAX_AMOUNT_CHARS = 24
"""15 integer digits, a point and 8 decimals: anything longer is refused before it is read."""
MAX_DECIMALS = 8
"""Yuan carry 2 decimals; 8 leave room for unit prices and keep every amount a normal float."""


def _amount(name: str, value) -> Decimal:
    """The strict decimal grammar of docs/EVENTS.md: ASCII digits, optionally one point followed by 1-8
    digits. No sign, exponent, whitespace, underscores or non-ASCII digits, all of which Decimal()
    accepts ("+5", "-0", "1e-400", " 100 ", "1_000", "١٠٠")."""
    if not isinstance(value, str):
        raise BadRecord(name, f"expected a decimal string, got {type(value).__name__}")
    whole, point, fraction = value.partition(".")
    if (not whole.isdigit() or not value.isascii() or len(value) > MAX_AMOUNT_CHARS
            or (point and (not fraction.isdigit() or len(fraction) > MAX_DECIMALS))):
        raise BadRecord(name, f"amount {_clip(value)!r} is not a plain decimal (digits, optionally a point and "
                              f"1-{MAX_DECIMALS} decimals; no sign, exponent or spaces)")
    amount = Decimal(value)
    if amount >= MAX_AMOUNT:
        raise BadRecord(name, f"amount {value!r} is beyond any real trade (limit {MAX_AMOUNT:,})")
    return amount


def _clip(text: str, limit: int = 40) -> str:
    """A value for an error message: a hostile record's field can be half a megabyte."""
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"
