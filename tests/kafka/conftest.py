"""The tests that need a real Apache Kafka live here, apart from the rest, and are all marked `kafka`.

The broker: $AMLWATCH_KAFKA_BOOTSTRAP, else a local one (deploy/kafka).

Without Java/Maven and without AMLWATCH_KAFKA_BOOTSTRAP the `kafka` tests skip
with one line; under CI=true they fail instead, and so does a broker that
does not start.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.kafka_broker import (
    LocalKafka,
    free_port_base,
    kafka_available,
    local_kafka_available,
    require_kafka,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items) -> None:
    """Every test in this folder is a `kafka` test, whether its module says so or not."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    require_kafka(kafka_available)
    external = os.environ.get("AMLWATCH_KAFKA_BOOTSTRAP", "").strip()
    if external:
        yield external
        return
    kafka = LocalKafka(home=tmp_path_factory.mktemp("kafka"), port=free_port_base(1))
    try:
        yield kafka.start(nodes=1)
    finally:
        kafka.stop()


@pytest.fixture
def own_kafka(tmp_path):
    """A broker of this test's own, to restart at will."""
    require_kafka(local_kafka_available)
    kafka = LocalKafka(home=tmp_path / "kafka", port=free_port_base(1))
    kafka.start(nodes=1)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def own_kafka_cluster(tmp_path):
    """Three brokers of this test's own, to lose one of."""
    require_kafka(local_kafka_available)
    kafka = LocalKafka(home=tmp_path / "kafka", port=free_port_base(3))
    kafka.start(nodes=3)
    try:
        yield kafka
    finally:
        kafka.stop()
