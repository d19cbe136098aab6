"""Broker mode: the city's records on the real embedded broker, paced in accelerated time."""

from __future__ import annotations

import time

import pytest

from streams import feed
from streams.broker import EmbeddedBroker
from streams.simulator.publish import BrokerSink
from streams.simulator.run import build_city, run_city


@pytest.mark.integration
def test_city_to_broker_paced(fresh_topics: EmbeddedBroker) -> None:
    city = build_city(300, 1, 4)
    # One simulated day at 86,400x: about a second of wall time.
    sink = BrokerSink(fresh_topics.bootstrap, 86_400, city.clock.t0)
    t = time.monotonic()
    try:
        run_city(city, [sink])
    finally:
        sink.close()
    elapsed = time.monotonic() - t
    assert 0.7 <= elapsed <= 30
    counts = city.engine.counts
    got = feed.read(fresh_topics.bootstrap, "registry", until=counts["registry"], timeout_s=30)
    assert len(got) == counts["registry"] == 300
    calls = feed.read(fresh_topics.bootstrap, "calls", until=counts["calls"], timeout_s=30)
    assert len(calls) == counts["calls"]
    assert sink.sent == sum(counts.values())
