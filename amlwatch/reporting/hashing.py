"""Hashing raw identifiers the way the event contract does: SHA-256 (lower-case hex) of the UTF-8
normalised value (docs/EVENTS.md, docs/REPORTING.md).

The contract says "SHA-256 of the normalised value" without spelling the normalisation out, so it
is fixed here and must match the platform's own hashing (check one known value with
`amlwatch watchlist hash`): Unicode NFKC, surrounding and inner whitespace removed, then per kind:

* `id`: national ID number upper-cased (the check character `x` becomes `X`);
* `card`: digits only (spaces and dashes dropped);
* `phone`: digits only, a leading `+86`/`0086`/`86` country code dropped from 13-digit mainland numbers;
* `name`: inner runs of whitespace kept as one space, case kept (Chinese names have none).

Devices and accounts are not hashed: the contract carries them as platform identifiers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from amlwatch.reporting.errors import ReportingError

HASHED_KINDS = ("id", "card", "phone", "name")
PLAIN_KINDS = ("device", "account")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


class HashingError(ReportingError):
    """A raw value that cannot be normalised; `field` names the kind."""


def normalise(kind: str, raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    if kind == "name":
        return " ".join(text.split())
    text = "".join(text.split())
    if kind == "id":
        text = text.upper()
        if not re.fullmatch(r"[0-9A-Z]{6,20}", text):
            raise HashingError(kind, "a national ID number is 6-20 letters and digits")
        return text
    if kind == "card":
        digits = re.sub(r"[-]", "", text)
        if not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise HashingError(kind, "a card number is 12-19 digits")
        return digits
    if kind == "phone":
        digits = re.sub(r"[-()+]", "", text)
        if not digits.isdigit():
            raise HashingError(kind, "a phone number is digits (with + - or parentheses)")
        for prefix in ("0086", "86"):
            if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
                return digits[len(prefix):]
        return digits
    raise HashingError("kind", f"unknown kind {kind!r}, expected one of {', '.join(HASHED_KINDS)}")


def contract_hash(kind: str, raw: str) -> str:
    """The contract's hash of a raw value of `kind`."""
    return hashlib.sha256(normalise(kind, raw).encode("utf-8")).hexdigest()
