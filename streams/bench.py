"""``zt bench``: the pipeline's speed on the embedded broker, measured, not asserted.

Phases, all in one run so the figures can be compared as ratios on a shared, noisy machine:

1. **replay**: the core alone over the bench records from a file (no broker).
2. **transport**: the raw passthrough, a lean consumer that forwards the same records unchanged
   to another topic (what the broker and client allow at all).
3. **saturation**: the records are on the broker before the worker starts; the worker drains
   them; events/s = records / (last decided - first consumed), read from its /metrics.
4. **latency**: records offered at a fixed rate (default 5,000/s) for some seconds with the
   worker keeping up; event-to-task latency from each input message's broker timestamp to its
   task's broker timestamp (p50/p99), and the worker's own histogram.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from streams import feed
from streams.broker import EmbeddedBroker, delete_topics, free_port
from streams.eventtime import fmt, parse
from streams.feed import key_hash
from streams.processes import WorkerProcess
from streams.replay import default_jobs, replay
from streams.topics import HIGH_VOLUME

BASE = parse("2026-03-01T08:00:00+08:00")
TRIGGER_EVERY = 50  # one call in 50 is a long call from a watch-listed line: a task


class BenchCity:
    """Synthetic but contract-valid bench traffic: registered persons, a few listed lines."""

    def __init__(self, persons: int = 20_000, listed: int = 1000, seed: int = 7):
        self.persons, self.listed = persons, listed
        self.rng = np.random.default_rng(seed)

    def msisdn(self, i: int) -> str:
        return f"+86139{i:08d}"

    def account(self, i: int) -> str:
        return f"62220202{i:010d}"

    def line(self, i: int) -> str:
        return f"+86170{i:08d}"

    def reference(self) -> Iterator[tuple[str, dict[str, Any]]]:
        t = fmt(BASE.ms - 86_400_000, BASE.offset_min)
        for i in range(self.persons):
            yield "registry", {
                "event_id": f"reg-{i}", "event_time": t, "op": "upsert", "person_id": f"P{i:08d}",
                "birth_year": 1940 + i % 70, "district": f"3716{i % 20:02d}",
                "msisdns": [self.msisdn(i)], "accounts": [{"bank": "ICBC", "account": self.account(i)}],
            }
        for j in range(self.listed):
            yield "watchlist", {
                "event_id": f"wl-{j}", "event_time": t, "op": "add", "kind": "msisdn",
                "value": self.line(j), "category": "fraud_number", "source": "bench",
                "confidence": 0.9,
            }

    def traffic(self, n: int, start: int = 0, ms_per_record: float = 1.0,
                base_ms: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """``n`` records, ``start`` numbering them; event time advances ``ms_per_record``."""
        base = BASE.ms if base_ms is None else base_ms
        persons = self.persons
        for k in range(start, start + n):
            now = base + int((k - start) * ms_per_record)
            t = fmt(now, BASE.offset_min)
            p = (k * 7919) % persons
            if k % 5 == 4:
                yield "transactions", {
                    "event_id": f"tx-{k}", "event_time": t, "txn_id": f"T{k}", "status": "completed",
                    "bank": "ICBC", "payer_account": self.account(p), "payee_account": self.account(
                        (p + 1) % persons), "payee_bank": "ICBC", "amount_fen": 10_000 + k % 977,
                    "currency": "CNY", "channel": "mobile_app",
                }
                continue
            trigger = k % TRIGGER_EVERY == 0
            # Half the CDRs are unanswered calls (duration 0), as in a carrier's real feed.
            answered = trigger or k % 2 == 1
            duration = 900 if trigger else (30 + k % 200 if answered else 0)
            # A carrier sends a call record when the call ends: stamped with its start.
            yield "calls", {
                "event_id": f"cdr-{k}", "event_time": fmt(now - duration * 1000, BASE.offset_min),
                "carrier": "CMCC", "kind": "voice",
                "caller": self.line(k // TRIGGER_EVERY % self.listed) if trigger else self.msisdn(
                    (p + 17) % persons),
                "callee": self.msisdn((k // TRIGGER_EVERY) % persons) if trigger else self.msisdn(p),
                "answered": answered, "duration_s": duration,
                "caller_origin": "virtual" if trigger else "domestic",
            }


class Workers:
    """Worker processes of one consumer group, read as one (their metrics summed)."""

    def __init__(self, bootstrap: str, work: Path, n: int):
        self.all = [WorkerProcess(bootstrap, work / f"worker-{i}.log", group="zt-bench",
                                  args=("--models", "none")) for i in range(n)]

    def wait_ready(self, timeout: float) -> None:
        for w in self.all:
            w.wait_ready(timeout)

    def metric(self, name: str, **labels: str) -> float:
        return sum(w.metric(name, **labels) for w in self.all)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return [s for w in self.all for s in w.samples()]

    def stop(self) -> None:
        for w in self.all:
            w.stop()


def run_bench(records: int, rate: int, seconds: float, out: Path, console: Console | None = None,
              persons: int = 20_000, workers: int = 1) -> int:
    con = console or Console()
    work = Path(tempfile.mkdtemp(prefix="zt-bench-"))
    city = BenchCity(persons=persons)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # The interpreter's build matters (~10% between a static and a shared libpython here).
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "python_executable": os.path.realpath(sys.executable),
                    "platform": platform.platform()},
        "params": {"records": records, "rate": rate, "seconds": seconds, "persons": persons,
                   "workers": workers,
                   "tasks_per_records": 1 / TRIGGER_EVERY},
    }

    # 1. replay: the core alone
    events = work / "events.jsonl"
    with events.open("wb") as f:
        for topic, value in [*city.reference(), *city.traffic(records)]:
            f.write(orjson.dumps({"topic": topic, "value": value}) + b"\n")
    results["replay"] = _replays(con, events, work / "tasks.jsonl", 1)
    jobs = default_jobs()
    if jobs > 1:
        results["replay_jobs"] = _replays(con, events, work / "tasks-jobs.jsonl", jobs)

    broker = EmbeddedBroker(port=free_port(), log_path=work / "broker.log").start()
    worker: Workers | None = None
    try:
        # 2. the records on the broker, then the transport's raw passthrough
        t0 = time.perf_counter()
        feed.produce(broker.bootstrap, city.reference())
        # The backlog's event times end a minute before now, so the live phase that follows
        # continues the same timeline: a backlog stamped months earlier made the first live
        # records fire every task timer of the backlog at once (thousands of escalations).
        backlog_base = int(time.time() * 1000) - records - 60_000
        n = feed.produce(broker.bootstrap, city.traffic(records, base_ms=backlog_base))
        produce_s = time.perf_counter() - t0
        results["produce"] = {"records": n + persons + city.listed, "seconds": round(produce_s, 2)}
        con.print(f"produced {n:,} traffic records (+ reference) in {produce_s:.1f} s")
        pt = asyncio.run(_passthrough(broker.bootstrap, n))
        # Tansu keeps everything in memory and its cost grows with what it stores (README):
        # the forwarded copy is not needed any more.
        delete_topics(broker.bootstrap, ["zt-bench-forward"])
        results["transport_passthrough"] = pt
        con.print(f"transport passthrough: {pt['events_per_s']:,.0f} events/s")

        # 3. saturation: the worker drains the backlog
        worker = Workers(broker.bootstrap, work, workers)
        worker.wait_ready(timeout=90)
        # every call is one entity event, every transfer two (payee and payer accounts)
        entity_events = sum(1 if t == "calls" else 2 for t, _ in city.traffic(records))
        start = _wait_until(lambda: worker.metric("zt_records_consumed_total", topic="calls") > 0
                            or worker.metric("zt_records_consumed_total", topic="transactions") > 0,
                            60)
        samples = _sample_until_settled(worker, entity_events, timeout=600)
        final = samples[-1][1]
        # Drain time of the backlog: first record read to 99% of the person events decided
        # (the last stretch waits for the idle flush, which is not throughput).
        end = next(t for t, c in samples if c >= 0.99 * final)
        sat = n / (end - start)
        tasks_sat = worker.metric("zt_tasks_emitted_total")
        results["saturation"] = {"records": n, "seconds": round(end - start, 2),
                                 "events_per_s": round(sat), "tasks": int(tasks_sat),
                                 "ratio_to_transport": round(sat / pt["events_per_s"], 3)}
        con.print(f"worker saturation: {sat:,.0f} events/s ({sat / pt['events_per_s']:.0%} of transport)")

        # 4. latency at a fixed offered rate, with the CPU each process used meanwhile (they
        # share the machine's cores: a latency figure means little without them)
        assert broker.proc is not None
        cpu = CpuShares({"worker": [w.proc.pid for w in worker.all], "broker": [broker.proc.pid],
                         "generator": [os.getpid()]})
        lat = _latency_phase(broker.bootstrap, city, worker, start=records, rate=rate, seconds=seconds)
        lat["cpu_cores"] = cpu.cores()
        results["latency"] = lat
        con.print(f"at {rate:,}/s offered: {lat['achieved_events_per_s']:,.0f}/s through, "
                  f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms (broker timestamps)")
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()

    scoring = out.parent / "scoring.json"  # bench/bench_scoring.py, which needs a trained model
    if scoring.exists():
        sc = json.loads(scoring.read_text())
        results["classifier_scoring"] = {"per_event_us": sc["per_row_in_batch_us"],
                                         "batch_rows": sc["batch_rows"], "model": sc["model"],
                                         "source": str(scoring)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _table(con, results)
    con.print(f"results: {out}")
    return 0


class CpuShares:
    """Cores used by groups of processes between construction and ``cores()`` (psutil)."""

    def __init__(self, groups: dict[str, list[int]]):
        self.procs = {name: [psutil.Process(pid) for pid in pids] for name, pids in groups.items()}
        self.t0 = time.perf_counter()
        self.before = {name: self._cpu(ps) for name, ps in self.procs.items()}

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.t0
        return {name: round((self._cpu(ps) - self.before[name]) / elapsed, 2)
                for name, ps in self.procs.items()}


def _wait_until(cond, timeout: float, every: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.perf_counter()
        time.sleep(every)
    raise TimeoutError(f"bench condition not met in {timeout:.0f} s")


def _sample_until_settled(worker: Workers, entity_events: int, timeout: float,
                          quiet_s: float = 2.0) -> list[tuple[float, float]]:
    """(wall time, person events decided) every 0.2 s, until the entity stage has seen every
    record and the person stage has been still for ``quiet_s``. (Every scrape costs the worker a
    few milliseconds: every 50 ms it took 8% of the worker's time, distorting what it measures.)"""
    samples: list[tuple[float, float]] = []
    deadline, changed = time.monotonic() + timeout, time.perf_counter()
    while time.monotonic() < deadline:
        now, decided = time.perf_counter(), worker.metric("zt_stage_events_total", stage="decide")
        if samples and decided != samples[-1][1]:
            changed = now
        samples.append((now, decided))
        # (a rebalance at start may count a few events twice or not at all: 99.9% is done)
        done = worker.metric("zt_stage_events_total", stage="entity") >= 0.999 * entity_events
        if done and now - changed >= quiet_s:
            return samples
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not finish the backlog in {timeout:.0f} s")


async def _passthrough(bootstrap: str, n: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer("calls", "transactions", bootstrap_servers=bootstrap,
                                group_id="zt-bench-passthrough", auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000, max_partition_fetch_bytes=4 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    await consumer.start()
    await producer.start()
    try:
        seen, started = 0, None
        while seen < n:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
            futs = [await producer.send("zt-bench-forward", m.value, key=m.key)
                    for msgs in batches.values() for m in msgs]
            seen += len(futs)
            await asyncio.gather(*futs)
            await consumer.commit()
        secs = time.perf_counter() - (started or time.perf_counter())
        return {"records": seen, "seconds": round(secs, 2), "events_per_s": round(seen / secs)}
    finally:
        await consumer.stop()
        await producer.stop()


async def _offer(bootstrap: str, messages: list[tuple[str, bytes | None, bytes, str, int | None]], rate: int,
                 measured: int) -> tuple[dict[str, int], list[float], float]:
    """Send ``messages`` at ``rate`` a second (all that are due, then sleep to the next), with
    aiokafka: the generator shares the 2 cores, and kafka-python cost it half a core at 5,000/s.
    Returns the broker timestamps of the first ``measured``, how late each send was, the time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","),
                                linger_ms=feed.FEED_LINGER_MS, acks=1, client_id="zt-bench-feed")
    await producer.start()
    try:
        futures: list[tuple[str, Any]] = []
        behind: list[float] = []
        t0 = time.perf_counter()
        i, n = 0, len(messages)
        while i < n:
            now = time.perf_counter()
            due_until = int((now - t0) * rate) + 1  # every record due by now
            if due_until <= i:
                await asyncio.sleep((i / rate) - (now - t0))
                continue
            for topic, key, body, eid, part in messages[i:min(due_until, n)]:
                behind.append(now - t0 - i / rate)
                futures.append((eid, await producer.send(topic, body, key=key, partition=part)))
                i += 1
        await producer.flush()
        offered_s = time.perf_counter() - t0
        sent_at = {}
        for eid, fut in futures[:measured]:
            sent_at[eid] = (await fut).timestamp
        return sent_at, behind, offered_s
    finally:
        await producer.stop()


def _latency_phase(bootstrap: str, city: BenchCity, worker: Workers, start: int, rate: int,
                   seconds: float) -> dict[str, Any]:
    total = int(rate * seconds)
    before_tasks = worker.metric("zt_tasks_emitted_total")
    hist_before = _histogram(worker)
    # A live feed: event time advances with the wall clock. The records are serialised before
    # the clock starts, so the generator, which shares the 2 cores, only sends.
    # A live feed does not stop: two more seconds of it follow the measured records, so their
    # tasks are released by the watermark, not by the idle flush that ends a quiet stream.
    tail = 2 * rate
    lead_s = 1.0 + (total + tail) / 50_000
    base_ms = int((time.time() + lead_s) * 1000)
    # Partitions are chosen here too, as Kafka's default partitioner would (``feed.key_hash``,
    # cached): aiokafka's murmur2 is pure Python, a sixth of the generator's time at 5,000/s.
    counts = feed.partition_counts(bootstrap, HIGH_VOLUME)
    messages = []
    for topic, value in city.traffic(total + tail, start=start, ms_per_record=1000 / rate,
                                     base_ms=base_ms):
        key = feed.key_of(topic, value)
        part = None if key is None else key_hash(key.decode()) % counts[topic]
        messages.append((topic, key, orjson.dumps(value), value["event_id"], part))
    time.sleep(max(base_ms / 1000 - time.time(), 0.0))
    t0 = time.perf_counter()
    sent_at, behind, offered_s = asyncio.run(_offer(bootstrap, messages, rate, total))
    # The worker's histogram as the feed ends: the last records of the tail then wait for the
    # idle flush (1 s), which is how a stream that stops ends, not live latency.
    hist = _histogram(worker, minus=hist_before)
    want = sum(1 for k in range(start, start + total) if k % 5 != 4 and k % TRIGGER_EVERY == 0)
    # (scraped 4 times a second: every scrape costs the worker's event loop a few milliseconds)
    _wait_until(lambda: worker.metric("zt_tasks_emitted_total") >= before_tasks + want, 120,
                every=0.25)
    through_s = time.perf_counter() - t0
    lat = []
    for m in feed.read_messages(bootstrap, "warning-tasks", timeout_s=60, idle_s=2.0):
        task = orjson.loads(m.value)
        sent = sent_at.get(task["evidence"][0])
        if sent is not None:
            lat.append(m.timestamp - sent)
    arr = np.array(lat, dtype=float)
    return {
        "offered_rate": rate, "records": total, "offer_seconds": round(offered_s, 2),
        # how far the generator fell behind its schedule (it shares the machine)
        "generator_behind_p99_ms": round(float(np.percentile(behind, 99)) * 1000, 1) if behind else 0.0,
        "achieved_events_per_s": round(total / through_s), "tasks": len(lat),
        "p50_ms": round(float(np.percentile(arr, 50)), 1) if len(arr) else None,
        "p99_ms": round(float(np.percentile(arr, 99)), 1) if len(arr) else None,
        "max_ms": round(float(arr.max()), 1) if len(arr) else None,
        "worker_histogram_le_seconds": hist,
        # the issue's own measure: from a record's arrival at the worker to its task's send
        # (acknowledged), read from the worker's histogram as Prometheus would
        "worker_p50_ms": _quantile_ms(0.5, hist),
        "worker_p99_ms": _quantile_ms(0.99, hist),
    }


def _quantile_ms(q: float, hist: dict[str, float]) -> float | None:
    """``histogram_quantile`` of Prometheus: linear within the bucket the rank falls in.

    >>> _quantile_ms(0.5, {"0.25": 0.0, "0.5": 10.0, "1.0": 10.0, "+Inf": 10.0})
    375.0
    """
    bounds = sorted((float(le), n) for le, n in hist.items() if le != "+Inf")
    total = hist.get("+Inf", 0.0)
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, n in bounds:
        if n >= rank:
            share = (rank - below) / (n - below) if n > below else 1.0
            return round((lower + (upper - lower) * share) * 1000, 1)
        lower, below = upper, n
    return round(lower * 1000, 1)


REPLAY_RUNS = 3


def _replay_once(conn: Any, events: Path, out: Path, jobs: int) -> None:
    s = replay(events, out, jobs=jobs)
    conn.send((s.seconds, s.lines))


def _replays(con: Console, events: Path, out: Path, jobs: int) -> dict[str, Any]:
    """Replay the bench file a few times, each in a new process as ``zt replay`` runs: the
    median run, and every run (one run of a few seconds on a shared machine can be a fifth
    off; and a pipeline forked from a process that already replayed ran ~8% slower)."""
    runs = []
    spawn = multiprocessing.get_context("spawn")
    for _ in range(REPLAY_RUNS):
        ours, theirs = spawn.Pipe(duplex=False)
        proc = spawn.Process(target=_replay_once, args=(theirs, events, out, jobs),
                             name="zt-bench-replay")
        proc.start()
        theirs.close()
        try:
            runs.append(ours.recv())
        except EOFError:
            raise RuntimeError(f"the bench's replay ({jobs} jobs) failed; its error is above") \
                from None
        finally:
            proc.join()
    seconds, lines = sorted(runs)[len(runs) // 2]
    rate = round(lines / seconds)
    con.print(f"replay, {jobs} job{'s' if jobs > 1 else ''}: {lines:,} records, median of "
              f"{len(runs)} runs {seconds:.2f} s = {rate:,}/s")
    return {"jobs": jobs, "records": lines, "seconds": round(seconds, 3), "records_per_s": rate,
            "runs_records_per_s": [round(n / t) for t, n in runs]}


def _histogram(worker: Workers, minus: dict[str, float] | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, labels, value in worker.samples():
        if name == "zt_event_to_task_seconds_bucket":
            out[labels["le"]] = value - (minus or {}).get(labels["le"], 0.0)
    return out


def _table(con: Console, r: dict[str, Any]) -> None:
    n = r["params"]["workers"]
    t = Table(title=f"zt bench (embedded broker, {n} worker process{'es' if n > 1 else ''}, "
                    "this machine)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("replay, core alone (one process, median)",
              f"{r['replay']['records_per_s']:,} records/s")
    if "replay_jobs" in r:
        rj = r['replay_jobs']
        t.add_row(f"replay, {rj['jobs']} jobs (median)", f"{rj['records_per_s']:,} records/s")
    t.add_row("transport passthrough", f"{r['transport_passthrough']['events_per_s']:,} events/s")
    t.add_row("worker at saturation", f"{r['saturation']['events_per_s']:,} events/s")
    t.add_row("worker / transport", f"{r['saturation']['ratio_to_transport']:.0%}")
    lat = r["latency"]
    t.add_row(f"offered {lat['offered_rate']:,}/s: through", f"{lat['achieved_events_per_s']:,} events/s")
    t.add_row("event-to-task p50 / p99, feed send to task", f"{lat['p50_ms']} / {lat['p99_ms']} ms")
    if lat.get("worker_p99_ms") is not None:
        t.add_row("event-to-task p50 / p99, arrival at the worker to task (its histogram)",
                  f"{lat['worker_p50_ms']} / {lat['worker_p99_ms']} ms")
    if "cpu_cores" in lat:
        t.add_row("cores used meanwhile", ", ".join(f"{k} {v}" for k, v in lat["cpu_cores"].items()))
    if "classifier_scoring" in r:
        t.add_row("classifier scoring, per event in a batch",
                  f"{r['classifier_scoring']['per_event_us']} us")
    con.print(t)
