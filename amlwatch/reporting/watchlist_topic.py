"""Watchlists on a compacted Kafka topic: the current state of every entry, one record per entry.

The file change log keeps a list's whole history; a compacted topic keeps the latest record per key,
so each record is an entry's full state rather than a bare add or remove:

    key   = "<list>\\x1f<kind>\\x1f<value>"
    value = {"list", "kind", "value", "effective", "until" (null while in force), "at", "by", "reason"}

`read_topic_entries` reads the topic from the beginning to its end offsets and gives `Entry`s, which
`Watchlist(topic=...)` installs and re-reads on `reload()`. Because an entry carries its own
effective period, hits do not depend on when the topic was read. History a later record overwrote
(an entry removed and listed again) lives only in the file log or the archive's audit stream: use
those to replay old periods exactly (docs/REPORTING.md).
"""

from __future__ import annotations

import orjson

from amlwatch.events import BadRecord, parse_time
from amlwatch.reporting.watchlist import NEVER, Entry, WatchlistError, parse_change

KEY_SEPARATOR = "\x1f"


def entry_key(change: dict) -> bytes:
    return KEY_SEPARATOR.join((change["list"], change["kind"], change["value"])).encode()


def ensure_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> None:
    """Create the topic compacted (one partition keeps every key's order trivially) if it is missing."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def publish_state(bootstrap: str, topic: str, state: dict, timeout: float = 30.0) -> None:
    """Write one entry's state (validated as a change) and wait until the broker has it."""
    from kafka import KafkaProducer

    parse_change({**state, "op": "add"}, "state")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=entry_key(state), value=orjson.dumps(state)).get(timeout=timeout)
    finally:
        producer.close()


def read_topic_entries(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Entry]:
    """Every entry on the topic, its latest state per key; a malformed record raises `WatchlistError`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=int(timeout * 1000))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise WatchlistError("topic", f"no topic {topic!r} on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        latest: dict[bytes, dict] = {}
        remaining = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        for message in consumer if remaining else ():
            source = f"{topic}/{message.partition}@{message.offset}"
            if message.value is None:
                latest.pop(message.key, None)  # a tombstone: the entry is forgotten
            else:
                try:
                    state = orjson.loads(message.value)
                except orjson.JSONDecodeError as error:
                    raise WatchlistError("<json>", f"invalid JSON: {error}", source) from None
                parse_change({**state, "op": "add"} if isinstance(state, dict) else state, source)
                state["_source"] = source
                latest[message.key] = state
            tp = TopicPartition(message.topic, message.partition)
            if message.offset + 1 >= ends[tp]:
                remaining.discard(tp)
            if not remaining:
                break
        if remaining:
            raise WatchlistError("topic", f"could not read {topic!r} to its end within {timeout:g} s")
    finally:
        consumer.close()
    return [_entry(state) for state in latest.values()]


def _entry(state: dict) -> Entry:
    def bound(name: str, default: float) -> float:
        text = state.get(name)
        if text is None:
            return default
        try:
            return parse_time(text, name).timestamp()
        except (BadRecord, TypeError):
            raise WatchlistError(name, "expected ISO-8601 text with an offset", state.get("_source", "")) from None

    return Entry(state["list"], state["kind"], state["value"], bound("effective", float("-inf")), bound("until", NEVER),
                 state.get("reason") or "", state.get("by") or "", state.get("_source", ""))
