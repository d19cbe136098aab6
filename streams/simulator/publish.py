"""Broker mode: the city's records produced to the contract topics, paced in accelerated event
time (``speed`` simulated seconds per wall second). The wall clock only paces the sending; it
never enters a record."""

from __future__ import annotations

import time
from typing import Any

from streams import feed


class BrokerSink:
    def __init__(self, bootstrap: str, speed: float, t0: int):
        self.prod = feed.producer(bootstrap)
        self.speed = speed
        self.t0 = t0
        self.wall0 = time.monotonic()
        self.sent = 0

    def __call__(self, t: int, topic: str, record: dict[str, Any]) -> None:
        if self.speed > 0:
            ahead = (t - self.t0) / 1000 / self.speed - (time.monotonic() - self.wall0)
            if ahead > 0.05:
                self.prod.flush()
                time.sleep(ahead)
        feed.send(self.prod, topic, record)
        self.sent += 1

    def close(self) -> None:
        self.prod.flush(60)
        self.prod.close(5)
