"""Kafka for the streaming tests: $AMLWATCH_KAFKA_BOOTSTRAP, else a local broker (deploy/kafka).

Without Java/Maven and without AMLWATCH_KAFKA_BOOTSTRAP the `kafka` tests skip
with one line; under CI=true they fail instead, and so does a broker that
does not start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.kafka_broker import (  # noqa: E402
    LocalKafka,
    free_port_base,
    kafka_available,
    local_kafka_available,
    require_kafka,
)


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
