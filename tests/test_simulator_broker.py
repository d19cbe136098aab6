"""Broker mode: the city's records on the real embedded broker, paced in accelerated time."""

from __future__ import annotations

import time

import orjson
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


BOOST = {"fraud": {"episodes_per_100k_per_day": 400}}


@pytest.mark.integration
def test_a_city_answering_the_live_worker_is_the_in_process_loop(
        fresh_topics: EmbeddedBroker, worker_factory, tmp_path) -> None:
    """The same seed gives the same city whether its desks and banks answer a core in process or
    the live worker over the broker: the worker decides as replay does, outcomes included, and the
    city hands each task to its desks at the same moment of event time."""
    from streams.core import Core
    from streams.decisions import load_rules
    from streams.replay import figures, replay
    from streams.simulator.centre import broker_loop
    from streams.simulator.run import closed_loop

    rules = load_rules("default")
    ref = closed_loop(1000, 3, 7, tmp_path / "in-process.jsonl", lambda: Core(ruleset=rules),
                      overrides=BOOST)
    worker = worker_factory()
    worker.wait_ready(60)
    loop = broker_loop(1000, 3, 7, fresh_topics.bootstrap, [worker.metrics_url],
                       Core(ruleset=rules), tmp_path / "broker.jsonl", overrides=BOOST)
    try:
        loop.run(3 * 24)
        loop.link.finish()
    finally:
        loop.close()
    assert (tmp_path / "broker.jsonl").read_bytes() == (tmp_path / "in-process.jsonl").read_bytes()
    assert loop.report() == ref.report
    st = loop.link.stats
    assert st.sent["task-outcomes"] > 10 and st.tasks == len(ref.responder.tasks) > 10
    assert not st.missing and not st.unexpected and st.undecided == st.unrouted == 0
    assert worker.metric("zt_records_late_total") == 0
    # What the worker counted is what replay of the same records counts.
    expected = replay(tmp_path / "broker.jsonl", tmp_path / "tasks.jsonl", ruleset=rules)
    assert figures(loop.link.workers.ladder_stats()) == expected.figures
    answered = {orjson.loads(line)["value"]["task_id"] for line in (tmp_path / "broker.jsonl").open("rb")
                if line.startswith(b'{"topic":"task-outcomes"')}
    assert expected.figures["outcomes"] == len(answered) > 10  # the first outcome of each task
    got = feed.read(fresh_topics.bootstrap, "warning-tasks", until=st.tasks, timeout_s=30)
    assert sorted(orjson.dumps(t) for t in got) == sorted(
        (tmp_path / "tasks.jsonl").read_bytes().splitlines())


@pytest.mark.integration
def test_cli_responding_city_over_the_broker(fresh_topics: EmbeddedBroker, worker_factory,
                                             tmp_path) -> None:
    import typer
    from typer.testing import CliRunner

    from streams.simulator.cli import simulate as command

    app = typer.Typer()
    app.command()(command)
    app.command("noop")(lambda: None)
    worker = worker_factory()
    worker.wait_ready(60)
    base = ["simulate", "--broker", "--respond", "--persons", "600", "--days", "2", "--speed", "0",
            "--bootstrap", fresh_topics.bootstrap, "--metrics", worker.metrics_url,
            "--out", str(tmp_path / "loop.jsonl"), "--plots", str(tmp_path / "plots"),
            "--models", "none"]  # as the worker's
    r = CliRunner().invoke(app, [*base, "--rules", "none"])
    assert r.exit_code == 2 and "the workers decide with rule set and model" in r.output
    assert "Traceback" not in r.output and "--rules and --models" in r.output
    assert "simulate: started" not in r.output  # refused before any work
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0, r.output
    assert "the users' figures, from the workers' /metrics" in r.output
    assert "simulate: done, 48 of 48 simulated hours" in r.output  # a log's progress lines
    assert (tmp_path / "plots" / "report.json").exists()
    assert (tmp_path / "loop.truth.jsonl").exists() and (tmp_path / "loop.jsonl").stat().st_size
