"""Worker state snapshots: an authenticated, versioned envelope around a restricted pickle.

A snapshot is read back from `<app_id>-work-state-changelog`, a topic anyone
with produce rights can write to, so restoring it must never run code it
names. Three guards, in the order `decode_state` applies them:

1. **Envelope.** `AMLS` magic, format version, a JSON header (schema number,
   config hash, the layout of every state class seen), the zlib-compressed
   payload, and, when a state key is configured, an HMAC-SHA256 over all of
   it. The MAC is checked before a byte of the payload is parsed: without the
   key nobody can write a snapshot this worker accepts.
2. **Allow-list.** The payload is a pickle read by an unpickler whose
   `find_class` hands out only *classes* (never functions, never dotted
   attributes) defined in amlwatch's pure state modules (`STATE_MODULES`:
   detectors, events, config, alerts, the anomaly features, the reorder buffer
   and processors, none doing I/O in a constructor) plus a few named stdlib
   and numpy builders (`STDLIB_GLOBALS`). `os.system`, `builtins.eval`,
   `subprocess.Popen` and the like are refused with `StateRefused`; nothing
   they name is ever called.
3. **Schema.** The header records, for every state class reached, its
   `state_version` and fields; a restoring worker whose code differs (a field
   added, removed or reordered, a class gone, a bumped `state_version` or
   `STATE_SCHEMA`) refuses with `StateMismatch` naming the class, before the
   first trade could hit an AttributeError.

Why not plain data (msgpack/orjson of dicts): the state is the detectors'
own objects, edited by whoever writes a detector; an explicit codec per class
doubles that code and has to be kept in step by hand, and a Python-level
encoder walks a few hundred thousand objects where pickle's C loop does it
several times faster (docs/STREAMING.md, "Hostile input and state safety",
has the measurements). The restricted unpickler keeps pickle's speed; the MAC
makes the allow-list a second line rather than the only one.
"""

from __future__ import annotations

import copyreg
import dataclasses
import functools
import hashlib
import hmac
import io
import logging
import os
import pickle
import struct
import zlib
from collections import deque
from typing import Any

import orjson

from amlwatch.errors import AmlwatchError

log = logging.getLogger("amlwatch.state")

MAGIC = b"AMLS"
FORMAT = 1
"""Envelope layout version (this module's framing)."""
STATE_SCHEMA = 1
"""Bump when the meaning of state changes without its fields changing: every older snapshot is then
refused with StateMismatch. A class can do the same for itself alone with a `state_version` attribute."""
MAC_BYTES = 32
_FIXED = struct.Struct(">4sBBI")     # magic, format, flags, header length
_AUTHENTICATED = 1

STATE_MODULES = (
    "amlwatch.detectors.",
    "amlwatch.events",
    "amlwatch.config",
    "amlwatch.reporting.lvtr",
    "amlwatch.reporting.risk",
    "amlwatch.reportconfig",
    "amlwatch.alerts",
    "amlwatch.models.anomaly",
    "amlwatch.models.features",
    "amlwatch.streams.ordering",
    "amlwatch.streams.processors",
)
"""Modules whose classes may appear in a snapshot: pure state and logic, no I/O in any constructor."""

STDLIB_GLOBALS = frozenset({
    ("collections", "deque"), ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("collections", "Counter"), ("decimal", "Decimal"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "int"),
    ("builtins", "float"), ("builtins", "str"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
})
"""Builders the state's containers and numbers pickle through; each only builds a value from data."""

KEY_ENV = "AMLWATCH_STATE_KEY"
KEY_FILE_ENV = "AMLWATCH_STATE_KEY_FILE"
MIN_KEY_BYTES = 16


class StateError(AmlwatchError, RuntimeError):
    """A snapshot this worker will not restore; `field` names what decided it."""

    def __init__(self, message: str, field: str = "state"):
        super().__init__(message)
        self.field = field


class StateMismatch(StateError):
    """A genuine snapshot built by other code or another detection config: rebuild state, do not reuse it."""


class StateRefused(StateError):
    """Not a trustworthy amlwatch snapshot (no envelope, bad MAC, a forbidden class, corrupt): never loaded."""


# -- keys ------------------------------------------------------------------


def state_key(environ: dict[str, str] | None = None) -> bytes | None:
    """The snapshot MAC key: AMLWATCH_STATE_KEY (the secret itself), else the file AMLWATCH_STATE_KEY_FILE
    names; None when neither is set (snapshots are then unauthenticated and only the allow-list guards)."""
    environ = os.environ if environ is None else environ
    key = environ.get(KEY_ENV, "").encode()
    path = environ.get(KEY_FILE_ENV, "")
    if not key and path:
        with open(path, "rb") as handle:
            key = handle.read().strip()
    if not key:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise StateError(f"{KEY_ENV} must be at least {MIN_KEY_BYTES} bytes, got {len(key)}", KEY_ENV)
    return key


def check_state_key() -> bytes | None:
    """At worker start: the key (a bad one raises StateError), or one warning that snapshots go unsigned.
    Snapshots are taken in forked children, so warning per snapshot would repeat it every second."""
    key = state_key()
    if key is None:
        log.warning("state snapshots are not authenticated", extra={
            "hint": f"set {KEY_ENV} (or {KEY_FILE_ENV}) to the same secret on every worker"})
    return key


# -- encode ----------------------------------------------------------------


def encode_state(root: Any, externals: dict[str, Any], key: bytes | None = None, extra: dict | None = None) -> bytes:
    """The envelope of `root`'s state; objects in `externals` (config, model) are left out by name."""
    buffer = io.BytesIO()
    _Pickler(buffer, externals).dump(root)
    payload = zlib.compress(buffer.getvalue(), 1)
    header = orjson.dumps({"schema": STATE_SCHEMA, "layout": state_layout(root), **(extra or {})},
                          option=orjson.OPT_SORT_KEYS)
    flags = _AUTHENTICATED if key is not None else 0
    body = _FIXED.pack(MAGIC, FORMAT, flags, len(header)) + header + payload
    if key is not None:
        body += hmac.digest(key, body, hashlib.sha256)
    return body


# -- decode ----------------------------------------------------------------


def read_header(blob: bytes, key: bytes | None = None) -> tuple[dict, bytes]:
    """(header, compressed payload) of an envelope whose framing and MAC check out."""
    if len(blob) < _FIXED.size or blob[:4] != MAGIC:
        raise StateRefused("not an amlwatch state envelope (an old pickle snapshot or foreign data)", "magic")
    _, version, flags, header_len = _FIXED.unpack_from(blob)
    if version != FORMAT:
        raise StateMismatch(f"state envelope format {version}, this worker reads {FORMAT}", "format")
    authenticated = bool(flags & _AUTHENTICATED)
    end = len(blob) - (MAC_BYTES if authenticated else 0)
    if key is not None:
        if not authenticated:
            raise StateRefused("unauthenticated snapshot, and this worker requires a MAC (state key set)", "mac")
        expected = hmac.digest(key, blob[:end], hashlib.sha256)
        if not hmac.compare_digest(expected, blob[end:]):
            raise StateRefused("snapshot MAC does not match this worker's state key", "mac")
    elif authenticated:
        raise StateRefused(f"authenticated snapshot, but this worker has no state key ({KEY_ENV})", "mac")
    start = _FIXED.size + header_len
    if start > end:
        raise StateRefused("truncated state envelope", "header")
    try:
        header = orjson.loads(blob[_FIXED.size:start])
    except orjson.JSONDecodeError:
        raise StateRefused("unreadable state header", "header") from None
    if not isinstance(header, dict):
        raise StateRefused("unreadable state header", "header")
    return header, blob[start:end]


def decode_state(blob: bytes, externals: dict[str, Any], fresh: Any, key: bytes | None = None,
                 context: dict | None = None, expect: dict | None = None) -> Any:
    """The state `encode_state` wrote, after the MAC, allow-list and schema checks; `fresh` is a newly built
    object of the same kind as the state's detection core, the reference for what the current code expects;
    `expect` names header values (`extra` of `encode_state`) that must match, such as the config hash."""
    try:
        header, payload = read_header(blob, key)
        for name, value in (expect or {}).items():
            if header.get(name) != value:
                raise StateMismatch(
                    f"state was built with {name} {header.get(name)}, this worker runs {value}: start under a "
                    f"new [kafka] app_id to rebuild state with the new thresholds", name)
        if header.get("schema") != STATE_SCHEMA:
            raise StateMismatch(f"state schema {header.get('schema')}, this worker runs {STATE_SCHEMA}", "schema")
        check_layout(header.get("layout") or {})
        try:
            raw = zlib.decompress(payload)
        except zlib.error:
            raise StateRefused("corrupt state payload", "payload") from None
        try:
            state = _Unpickler(io.BytesIO(raw), externals).load()
        except StateError:
            raise
        except (pickle.UnpicklingError, AttributeError, TypeError, ValueError, IndexError, KeyError,
                EOFError) as exc:
            raise StateRefused(f"state payload does not load: {type(exc).__name__}: {exc}", "payload") from None
        check_attributes(state, fresh)
    except StateError as error:
        log.error("state snapshot refused", extra={**(context or {}), "error": type(error).__name__,
                                                    "field": error.field, "reason": str(error)})
        raise
    return state


def _find_state_class(module: str, name: str) -> type:
    if (module, name) in STDLIB_GLOBALS:
        return getattr(__import__(module, fromlist=[name]), name)
    if "." in name or not _state_module(module):
        raise StateRefused(f"snapshot names {module}.{name}, which is not a state class", "class")
    try:
        target = getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        raise StateMismatch(f"snapshot names {module}.{name}, which this worker's code does not have",
                            "class") from None
    if not isinstance(target, type) or target.__module__ != module:
        raise StateRefused(f"snapshot names {module}.{name}, which is not a state class", "class")
    return target


# -- the schema: layouts of state classes ----------------------------------


@functools.lru_cache(maxsize=None)
def _state_module(module: str) -> bool:
    """Exactly one of STATE_MODULES, or inside a package of them (the entries ending in a dot)."""
    return any(module.startswith(m) if m.endswith(".") else module == m for m in STATE_MODULES)


def _is_state_class(cls: type) -> bool:
    return _state_module(cls.__module__)


@functools.lru_cache(maxsize=None)
def _static_fields(cls: type) -> list[str] | None:
    """Fields fixed by the class itself (dataclass fields in order, or slots), None for dict-based classes."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    slots: list[str] = []
    for klass in cls.__mro__:
        if klass is object:
            continue
        declared = klass.__dict__.get("__slots__")
        if declared is None:
            if klass.__module__ == "typing":        # Generic[...] bases add no instance fields
                continue
            return None
        slots.extend([declared] if isinstance(declared, str) else declared)
    return sorted(s for s in slots if s not in ("__dict__", "__weakref__"))


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


SAMPLE_ALL = 64
"""Containers up to this size are followed item by item (a monitor's detector list), larger ones through
their first and last items (a window's entries)."""


def _sample(root: Any):
    """Every state object reachable from `root`, following all items of small containers and the first
    and last of large ones: bounded by the state's shape, not its size."""
    stack, seen = [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        cls = type(obj)
        if isinstance(obj, dict):
            if len(obj) <= SAMPLE_ALL:
                stack.extend(obj.keys())
                stack.extend(obj.values())
            else:
                stack.extend(next(iter(obj.items())))
                stack.append(obj[next(reversed(obj))])
        elif cls is tuple or cls is list or cls is deque:
            stack.extend(obj if len(obj) <= SAMPLE_ALL else (obj[0], obj[-1]))
        elif cls is set or cls is frozenset:
            stack.extend(obj if len(obj) <= SAMPLE_ALL else (next(iter(obj)),))
        elif _is_state_class(cls):
            yield obj
            fields = _static_fields(cls)
            if fields is None:
                stack.extend(vars(obj).values())
            else:
                stack.extend(getattr(obj, f) for f in fields if hasattr(obj, f))


def state_layout(root: Any) -> dict[str, dict]:
    """Per state class reached from `root`: its `state_version` and fixed fields (None: dict-based)."""
    layout: dict[str, dict] = {}
    for obj in _sample(root):
        cls = type(obj)
        name = _name(cls)
        if name not in layout:
            layout[name] = {"version": getattr(cls, "state_version", 0), "fields": _static_fields(cls)}
    return layout


def check_layout(layout: dict[str, dict]) -> None:
    """StateMismatch when a state class of the snapshot is gone or its version or fixed fields differ."""
    problems = []
    for name, recorded in sorted(layout.items()):
        module, _, qualname = name.partition(":")
        try:
            cls = _find_state_class(module, qualname) if "." not in qualname else None
        except StateMismatch:
            problems.append(f"{name} is gone")
            continue
        if cls is None:
            problems.append(f"{name} is not a module-level class")
            continue
        if getattr(cls, "state_version", 0) != recorded.get("version"):
            problems.append(f"{name} state_version {recorded.get('version')} -> {getattr(cls, 'state_version', 0)}")
        current = _static_fields(cls)
        if current != recorded.get("fields"):
            problems.append(f"{name} fields {recorded.get('fields')} -> {current}")
    if problems:
        raise StateMismatch("state was written by other code: " + "; ".join(problems[:6])
                            + ": start under a new [kafka] app_id to rebuild it", "layout")


def check_attributes(state: Any, fresh: Any) -> None:
    """Every attribute a freshly built object of the current code has must be in the restored one (of the
    same class): a detector that gained an attribute would otherwise fail on the first trade."""
    expected: dict[type, set[str]] = {}
    for obj in _sample(fresh):
        if _static_fields(type(obj)) is None:
            expected.setdefault(type(obj), set()).update(vars(obj))
    problems = []
    for obj in _sample(state):
        names = expected.get(type(obj))
        if names is None:
            continue
        missing = names.difference(vars(obj))
        if missing:
            problems.append(f"{_name(type(obj))} lacks {sorted(missing)}")
            expected.pop(type(obj))
    if problems:
        raise StateMismatch("state was written by other code: " + "; ".join(problems[:6])
                            + ": start under a new [kafka] app_id to rebuild it", "layout")


# -- pickling with externals -------------------------------------------------


def _external(name: str):
    """Placeholder the unpickler resolves to the restoring worker's object of that name."""
    raise RuntimeError(f"{name} is supplied by the restoring worker")


class _Pickler(pickle.Pickler):
    """Pickles the state with the config and model left out by reference.

    A per-type dispatch table (looked up in C) rather than persistent_id, which Python calls for every
    object in the state: on large states that call alone cost as much as the rest of the pickling.
    """

    def __init__(self, file, externals: dict[str, Any]):
        super().__init__(file, protocol=5)
        table = dict(copyreg.dispatch_table)
        for name, obj in externals.items():
            table[type(obj)] = _by_reference(name, obj)
        self.dispatch_table = table


def _by_reference(name: str, target: Any):
    def reduce(obj):
        if obj is target:
            return _external, (name,)
        return obj.__reduce_ex__(5)
    return reduce


class _Unpickler(pickle.Unpickler):
    """Resolves only the allow-list (find_class runs once per class: pickle memoizes globals)."""

    def __init__(self, file, externals: dict[str, Any]):
        super().__init__(file)
        self._externals = externals

    def find_class(self, module: str, name: str):
        if module == __name__ and name == "_external":
            return self._external
        return _find_state_class(module, name)

    def _external(self, name: str):
        if name not in self._externals:
            raise StateRefused(f"snapshot refers to an unknown external {name!r}", "external")
        return self._externals[name]

    def persistent_load(self, pid):
        raise StateRefused("snapshot uses persistent ids", "payload")
