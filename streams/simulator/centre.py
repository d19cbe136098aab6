"""The closed loop over the broker: the city feeds the live workers, and its desks, bank liaisons
and people answer the tasks the workers send on ``warning-tasks``, in the city's event time.

The city runs far faster than real time, while every record takes the pipeline some wall time
(a few hundred milliseconds through the three stages): a city that simply ran on would be hours
of event time ahead before the first task came back. So the city waits for the workers, at the
few moments it must, and never else:

* **a task** reaches the desks and banks once the workers could have decided it: when the city
  has sent traffic (calls, transactions) ``lateness`` past the task's creation, as a worker's
  watermark needs. The city knows which tasks will come, and when, because it replays what it
  sends through the same deterministic core the workers run (the replay driver's ``Core``, with
  the same rules and model): at such a moment it waits until the workers' own tasks, read from
  ``warning-tasks``, are in, and hands those to the responders. The copy never answers a task;
  it tells the city when to wait.
* **an outcome or a case report** reaches the workers' person stage through a Faust agent, up to
  ~0.75 s after it is sent, while traffic takes a faster path: the city sends nothing after one
  until the workers have consumed it (their ``zt_records_consumed_total``), and no traffic that
  would let their watermark pass it until ``HOP_S`` later (the agent's hop to the person stage
  takes milliseconds), so the workers decide it in event-time order, as replay does. Were one
  ever later than that, the workers would count it (``zt_records_late_total``): the demo shows
  that count, and its check against replay would tell.

Between those moments the city sends at full speed. Calls are sent once they have ended, as a
carrier does (``FeedOrder``). The responders are those of the in-process loop
(``streams.simulator.respond``), given the tasks at the same moments of event time, so the same
seed gives the same city in both loops when the workers decide as replay does; the same seed
without a pipeline is the counterfactual.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams import feed
from streams.contract import INPUT_TOPICS
from streams.eventtime import parse
from streams.topics import HIGH_VOLUME

from .clock import HOUR
from .respond import FeedOrder, Handover, Responder, task_record

if TYPE_CHECKING:
    from .city import City

log = logging.getLogger(__name__)

AGENT_TOPICS = ("task-outcomes", "case-reports")  # reach the person stage through Faust agents
# From a Faust agent's consumption of a record to that record in the person stage's buffer: an
# agent routes it and sends it on zt-person-events in 2-15 ms (measured), and the person stage
# fetches with a 20 ms wait. Traffic that lets the watermark pass the record waits this long.
HOP_S = 0.15
Progress = Callable[[int, int, dict[str, int]], None]  # (hours done, hours total, counts)


class LoopError(RuntimeError):
    """The workers did not keep their side of the loop (the message says what and where to look)."""


# --- the workers, seen from outside ------------------------------------------------------------


class WorkerMetrics:
    """The counters of one or more workers' ``/metrics``, summed over the workers."""

    def __init__(self, urls: Iterable[str]):
        self.urls = list(urls)
        if not self.urls:
            raise ValueError("no worker /metrics address given")

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        out = []
        for url in self.urls:
            try:
                text = urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError as e:
                raise LoopError(f"cannot read the workers' metrics at {url}: {e}") from None
            out += [(s.name, s.labels, s.value)
                    for fam in text_string_to_metric_families(text) for s in fam.samples]
        return out

    @staticmethod
    def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
        return sum(v for n, lab, v in samples
                   if n == name and all(lab.get(k) == x for k, x in labels.items()))

    def counts(self) -> Counter[str]:
        """What the loop waits on: records consumed, decided and unrouted, by agent topic."""
        s = self.scrape()
        out: Counter[str] = Counter()
        for topic in AGENT_TOPICS:
            out[f"consumed/{topic}"] = int(self.total(s, "zt_records_consumed_total", topic=topic))
            unrouted = int(self.total(s, "zt_records_unrouted_total", topic=topic))
            out[f"unrouted/{topic}"] = unrouted
            out[f"decided/{topic}"] = int(self.total(s, "zt_records_decided_total", topic=topic)) + unrouted
        out["registry"] = int(self.total(s, "zt_reference_entries", table="registry"))
        return out

    def ladder_stats(self) -> Any:
        """The users' figures the workers count (the ladder's counters, exported as
        ``streams.metrics.LADDER_METRICS``), read back into a ``LadderStats``: what
        ``streams.replay.figures`` makes of replay's own counters, it makes of these."""
        from streams.ladder import LadderStats
        from streams.metrics import LADDER_METRICS

        samples = self.scrape()
        stats = LadderStats()
        for key, metric in LADDER_METRICS.items():
            name, labels = f"{metric._name}_total", metric._labelnames
            for n, lab, v in samples:
                if n == name and v:
                    stats.add(key, *(lab[x] for x in labels), value=v)
        return stats

    def versions(self) -> set[tuple[str, str]]:
        """(rule set, model) versions in force in the workers."""
        return {(lab.get("ruleset_version", ""), lab.get("model_version", ""))
                for n, lab, v in self.scrape() if n == "zt_build_info" and v}


class TaskReader:
    """The workers' tasks as they come on ``warning-tasks`` (no consumer group: a reader)."""

    def __init__(self, bootstrap: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                      enable_auto_commit=False, fetch_max_wait_ms=20)
        parts = self.consumer.partitions_for_topic("warning-tasks") or {0}
        tps = [TopicPartition("warning-tasks", p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)  # tasks of an earlier run are not this city's
        self.received: dict[str, dict[str, Any]] = {}

    def poll(self, timeout_ms: int = 20) -> None:
        for msgs in self.consumer.poll(timeout_ms=timeout_ms).values():
            for m in msgs:
                try:
                    task = orjson.loads(m.value)
                    self.received.setdefault(task["task_id"], task)
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("warning-tasks: a message that is not a task, skipped")

    def close(self) -> None:
        self.consumer.close()


# --- the city's side ----------------------------------------------------------------------------


@dataclass
class LinkStats:
    """What the loop did: records sent, waits and their wall time, tasks not as replay gives."""

    sent: Counter[str] = field(default_factory=Counter)
    waits: int = 0
    wait_s: float = 0.0
    tasks: int = 0
    missing: list[str] = field(default_factory=list)  # revealed by the copy, never sent
    undecided: int = 0  # outcomes and case reports after the city's last traffic
    unrouted: int = 0  # outcomes whose task the deciding worker did not know (lost)
    unexpected: list[str] = field(default_factory=list)  # sent by the workers, not by the copy


class BrokerLink:
    """The city's pipeline is the live workers: its records go to the broker as the feeds send
    them, and the workers' tasks go to the responder at the moments ``CoreLink`` gives them."""

    def __init__(self, city: City, responder: Responder, bootstrap: str, workers: WorkerMetrics,
                 copy: Any, lateness_ms: int = 200, strict: bool = True, timeout_s: float = 60.0,
                 speed: float = 0.0):
        self.city = city
        self.responder = responder
        self.workers = workers
        self.copy = copy  # the same core as the workers', in process: it says which tasks come
        self.lateness = lateness_ms
        self.strict = strict  # a task the workers do not send stops the loop (else: skipped)
        self.timeout_s = timeout_s
        self.speed = speed  # simulated seconds per wall second; 0: as fast as the loop goes
        self.stats = LinkStats()
        self.prod = feed.producer(bootstrap)
        self.reader = TaskReader(bootstrap)
        self.base = workers.counts()  # the workers may have counted records before this city
        self.handover = Handover(lateness_ms)  # the copy's tasks, until the workers decide them
        self.known: set[str] = set()  # every task the copy gave
        self.handed: set[str] = set()
        self.hop_until = 0.0  # monotonic time until which no traffic passes the last agent record
        self.agent_by = -(2**62)  # traffic from this time on would let the workers pass it
        self._pace: tuple[int, float] | None = None
        self.sinks: list[Callable[[int, str, dict[str, Any]], None]] = []  # (records as sent)
        self.order = FeedOrder(self._send)
        city.engine.sinks.append(self.order)

    # --- records out --------------------------------------------------------------------------

    def _send(self, now: int, topic: str, record: dict[str, Any]) -> None:
        if topic not in INPUT_TOPICS:
            return
        if self.speed > 0:
            self._paced(now)
        self._before(topic, record)
        feed.send(self.prod, topic, record)
        self.stats.sent[topic] += 1
        for sink in self.sinks:
            sink(now, topic, record)
        tasks = self.copy.feed(topic, record)
        if tasks:
            self.handover.add(tasks)
            self.known.update(task_record(t)["task_id"] for t in tasks)
        if topic in AGENT_TOPICS:
            # Nothing more leaves before the workers have it.
            self._wait(lambda c: all(c[f"consumed/{t}"] >= self.stats.sent[t] for t in AGENT_TOPICS),
                       f"the workers to consume the {topic} record {record['event_id']}")
            self.hop_until = time.monotonic() + HOP_S
            self.agent_by = parse(record["event_time"]).ms + self.lateness
        elif topic in HIGH_VOLUME:
            ready = self.handover.ready(topic, record)
            if ready:
                self._hand_over(now, [rec["task_id"] for rec in ready])

    def _before(self, topic: str, record: dict[str, Any]) -> None:
        """Traffic that lets the workers' watermark pass the last outcome or case report sent
        waits for its hop to their person stage."""
        if topic in HIGH_VOLUME and parse(record["event_time"]).ms >= self.agent_by:
            rest = self.hop_until - time.monotonic()
            if rest > 0:
                time.sleep(rest)
            self.agent_by = 2**62

    def _hand_over(self, now: int, ids: list[str]) -> None:
        """The workers' copies of the tasks ``ids``, to the responder, in the copy's order."""
        reader = self.reader
        started = time.monotonic()
        self.prod.flush()
        while True:
            reader.poll()
            missing = [tid for tid in ids if tid not in reader.received]
            if not missing:
                break
            if time.monotonic() - started > (self.timeout_s if self.strict else 10.0):
                if self.strict:
                    raise LoopError(
                        f"the workers did not send task {missing[0]} in {self.timeout_s:.0f} s, "
                        "though replay of the same records gives it (see the worker's log)")
                self.stats.missing += missing
                ids = [tid for tid in ids if tid in reader.received]
                break
        self._waited(started)
        for tid in ids:
            self.handed.add(tid)
            self.stats.tasks += 1
            self.responder.on_task(now, reader.received[tid])
        if not self.strict:  # the desks answer what they get, even a task replay would not give
            for tid, task in list(reader.received.items()):
                if tid not in self.known and tid not in self.handed:
                    self.handed.add(tid)
                    self.stats.unexpected.append(tid)
                    self.responder.on_task(now, task)

    def _counts(self) -> Counter[str]:
        """The workers' counts since this city began."""
        return Counter({k: v - self.base[k] for k, v in self.workers.counts().items()})

    def _wait(self, done: Callable[[Counter[str]], bool], what: str,
              timeout_s: float | None = None) -> None:
        self.prod.flush()
        started = time.monotonic()
        limit = self.timeout_s if timeout_s is None else timeout_s
        while not done(self._counts()):
            if time.monotonic() - started > limit:
                raise LoopError(f"waited {limit:.0f} s for {what}; see the worker's log")
            time.sleep(0.01)
        self._waited(started)

    def _waited(self, started: float) -> None:
        self.stats.waits += 1
        self.stats.wait_s += time.monotonic() - started

    def _paced(self, now: int) -> None:
        """Live mode: no faster than ``speed`` simulated seconds per wall second."""
        if self._pace is None:
            self._pace = (now, time.monotonic())
        t0, wall0 = self._pace
        ahead = (now - t0) / 1000 / self.speed - (time.monotonic() - wall0)
        if ahead > 0.05:
            self.prod.flush()
            time.sleep(ahead)
        elif ahead < -5:  # the loop waited: pace from here, do not rush to catch up
            self._pace = (now, time.monotonic())

    # --- the run ---------------------------------------------------------------------------------

    def wait_registry(self, persons: int) -> None:
        """Before traffic: the workers have loaded the registry the city sent."""
        self._wait(lambda c: c["registry"] + self.base["registry"] >= persons,
                   f"the workers to load {persons:,} registry records")

    def finish(self) -> None:
        """The end of the city: the last calls go out; the workers decide what they hold once
        their inputs are quiet (they release what was sent after a second); every task the
        copy gives is waited for (too late for anyone to act on)."""
        self.order.release(self.city.engine.now)
        self.order.release_all()
        tasks = self.copy.finish()
        self.handover.add(tasks)
        self.known.update(task_record(t)["task_id"] for t in tasks)
        self._hand_over(self.city.engine.now, [rec["task_id"] for rec in self.handover.rest()])
        try:  # (what came after the city's last traffic stays undecided: counted)
            self._wait(lambda c: all(c[f"decided/{t}"] >= self.stats.sent[t] for t in AGENT_TOPICS),
                       "the workers to decide the last outcomes", timeout_s=10)
        except LoopError:
            counts = self._counts()
            self.stats.undecided = sum(self.stats.sent[t] - counts[f"decided/{t}"] for t in AGENT_TOPICS)
        self.stats.unrouted = self._counts()["unrouted/task-outcomes"]
        if self.strict:  # (tasks of an earlier run on this broker are not this city's)
            self.reader.poll(200)
            t0 = self.city.clock.t0
            self.stats.unexpected += [
                tid for tid, task in self.reader.received.items()
                if tid not in self.known and parse(task["created_time"]).ms >= t0]

    def close(self) -> None:
        self.prod.flush(30)
        self.prod.close(5)
        self.reader.close()


def run_linked(city: City, link: BrokerLink, until_h: int, progress: Progress | None = None,
               from_h: int = 0) -> None:
    """Run the city from hour ``from_h`` to ``until_h`` through ``link``; the registry first."""
    eng, t0 = city.engine, city.clock.t0
    if from_h == 0:
        city.start()
        eng.run(until=t0 + 1)  # the registry (and watch list) at the first instant
        link.wait_registry(city.pop.n)
    for h in range(from_h + 1, until_h + 1):
        eng.run(until=t0 + h * HOUR)
        if progress is not None:
            progress(h, until_h, {"tasks": link.stats.tasks, "waits": link.stats.waits})


@dataclass
class BrokerLoop:
    """A city answering the live workers, and its counterfactual: ``run(until_h)`` as far as
    wanted (again and again), ``finish()`` at the end, ``report()`` at any time."""

    city: City
    base: City
    responder: Responder
    link: BrokerLink
    writer: Any = None
    hours: int = 0

    def run(self, until_h: int, progress: Progress | None = None) -> None:
        run_linked(self.city, self.link, until_h, progress, from_h=self.hours)
        self.base.engine.run(until=self.base.clock.t0 + until_h * HOUR)
        self.hours = until_h

    def report(self) -> dict[str, Any]:
        from .report import loop_report

        return loop_report(self.city, self.base, self.responder)

    def stop_writing(self) -> None:
        if self.writer is not None:
            self.city.engine.sinks.remove(self.writer)
            self.writer.close()
            self.writer = None

    def close(self) -> None:
        self.stop_writing()
        self.link.close()


def broker_loop(persons: int, days: int, seed: int, bootstrap: str, metrics: list[str],
                copy: Any, out: Any = None, config: Any = None,
                overrides: dict[str, Any] | None = None, lateness_ms: int = 200,
                strict: bool = True, timeout_s: float = 60.0, speed: float = 0.0,
                scenario: str | None = None) -> BrokerLoop:
    """A city of ``persons`` over ``days`` whose records go to the broker at ``bootstrap`` and
    whose desks and banks answer the tasks of the workers serving ``metrics``. ``copy`` is a
    core deciding as the workers do (same rules and model): it tells the city when to wait. The
    city's records are also written to ``out`` (a replay file, event-time order) if given."""
    from .run import ReplayWriter, build_city, responder_rng

    workers = WorkerMetrics(metrics)
    same_decisions(workers, copy)
    base = build_city(persons, days, seed, config, overrides, scenario)
    base.start()
    city = build_city(persons, days, seed, config, overrides, scenario)
    responder = Responder(city, responder_rng(seed))
    link = BrokerLink(city, responder, bootstrap, workers, copy, lateness_ms, strict, timeout_s,
                      speed)
    writer = None
    if out is not None:
        writer = ReplayWriter(out)
        city.engine.sinks.append(writer)
    return BrokerLoop(city, base, responder, link, writer)


def same_decisions(workers: WorkerMetrics, copy: Any, timeout_s: float = 10.0) -> None:
    """The city's copy of the core must decide as the workers do (same rule set, same model),
    or it would wait for tasks they never send: check the versions they say they run."""
    from streams.core import CoreConfig

    ruleset, scorer = copy.decider.ruleset, copy.decider.scorer
    want = (ruleset.version if ruleset else CoreConfig.ruleset_version,
            scorer.version if scorer else CoreConfig.model_version)
    deadline = time.monotonic() + timeout_s
    while (seen := workers.versions()) != {want}:
        if time.monotonic() > deadline:
            raise LoopError(f"the workers decide with rule set and model {sorted(seen)}, the "
                            f"city's copy of the core with {want}: give the city the workers' "
                            "rule set and model")
        time.sleep(0.2)
