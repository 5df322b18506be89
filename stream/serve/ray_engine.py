"""``backdrop serve --engine ray``: the streams in Ray actors, each running a LocalEngine, restarted by Ray.

Each actor holds ``serve.streams_per_actor`` streams (default one) and runs them exactly as ``--engine local``
does, with its own model batching across its streams; frames never leave the actor's process, only configs
and figures travel through Ray. On a cluster an actor reserves ``serve.actor_cpus`` CPUs (the embedded Ray
reserves none: on one machine the OS shares the cores, as with ``--engine local``, and an added stream never
waits for a free CPU) and, where there are GPUs, ``serve.actor_gpus`` of one (by default an equal share, at
most one), so Ray places it on a node that has them.

Failure. Actors are created with ``max_restarts=serve.actor_restarts`` (-1: always): when an actor's process
dies, Ray starts a new one from the same constructor arguments (its streams' configs), which starts the
streams again; recordings continue into a new segment. Meanwhile its streams show state ``restarting``;
their counters add up over restarts. A restarted actor counts ``--max-frames`` afresh.

Without an address it starts a Ray of its own on this machine (the embedded default) and shuts it down at
the end; with one (``auto``, ``HOST:6379``) it joins that cluster, whose nodes must have backdrop installed
and see the config's paths at the same place (actors start in the driver's working directory when it exists
on their node).

Joining. Given an address that is not a Ray cluster, ``ray.init`` retries for minutes inside its C++ core, where
no signal handler runs, and logs a warning every few seconds. So the address is checked first: Ray's GCS (and
the Ray Client server behind ``ray://``) speaks gRPC over HTTP/2 and sends an HTTP/2 SETTINGS frame as soon as
a connection opens (a local ``ray start --head`` of Ray 2.60 does so within a millisecond); a port that stays
silent or answers anything else is refused within GREETING_S, in one line. What passes that check is joined on
a thread of its own, given JOIN_TIMEOUT_S, and abandoned at once when the ``cancel`` event is set (``backdrop
serve`` sets it on SIGINT/SIGTERM). That thread also keeps Ray from replacing the driver's SIGTERM handler,
which it does when joined from the main thread. The embedded Ray starts on the calling thread: the processes it
starts die with the thread that started them (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError

from backdrop.errors import RuntimeUnavailable
from backdrop.stream.config.serve import ServeConfig, StreamConfig
from backdrop.stream.core.figures import StreamFigures, StreamState
from backdrop.stream.serve.batching import mean_batch_size
from backdrop.stream.serve.engine import STOP_TIMEOUT_S, LocalEngine, engine_totals
from backdrop.stream.serve.tuning import FOR_STREAMS

ANSWER_S = 1.0  # how long a figures call waits for actors; one that has not answered shows its last figures
SILENT_S = 2.0  # an actor that leaves a figures call unanswered this long is down (Ray is restarting it)
CONNECT_S = 5.0  # how long a cluster's address may take to accept a connection
GREETING_S = 3.0  # then how long it may take to send the HTTP/2 greeting every gRPC server sends at once
JOIN_TIMEOUT_S = 30.0  # then how long ray.init may take to join the cluster
CANCEL_CHECK_S = 0.1  # how often a join in progress looks at its cancel event
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4, then an empty SETTINGS frame
HTTP2_SETTINGS = 0x4  # the frame type a server's greeting starts with
FRAME_HEADER = 9  # bytes: length (3), type, flags, stream id (4)
BATCH_COUNTS = ("batches", "mixed_batches", "frames_inferred")  # each actor's model's, added up
ACTOR_CONCURRENCY = 4  # figures are answered while a long wait() or stop() runs in the same actor


def check_reachable(address: str) -> None:
    """Fail within seconds when a ``HOST:PORT`` address is not a Ray cluster (module docstring, "Joining")."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster, or says at once that there is none
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise _unavailable(address, f"{reason} (is `ray start --head` running?)") from e
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return  # the greeting comes after a TLS handshake: reaching the port is all we check
        try:
            connection.settimeout(GREETING_S)
            connection.sendall(HTTP2_PREFACE + bytes([0, 0, 0, HTTP2_SETTINGS, 0, 0, 0, 0, 0]))
            header = _receive(connection, FRAME_HEADER)
        except TimeoutError as e:
            reason = f"it accepts connections but sent no gRPC greeting in {GREETING_S:g} s, as Ray's GCS does at once"
            raise _unavailable(address, reason) from e
        except OSError:  # reset: the same as an answer that is not HTTP/2
            header = b""
    if len(header) < FRAME_HEADER or header[3] != HTTP2_SETTINGS:
        raise _unavailable(address, "it answers, but not in gRPC (HTTP/2) as Ray's GCS does")


def _receive(connection: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the peer closed the connection."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _unavailable(address: str, reason: str) -> RuntimeUnavailable:
    return RuntimeUnavailable(f"cannot join the Ray cluster at {address}: {reason}")


class StreamActor:
    """A LocalEngine on a group of streams, in a Ray worker process (Ray rebuilds it from these arguments)."""

    def __init__(self, config: ServeConfig, max_frames: int | None, cwd: str) -> None:
        if os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths of the config mean what they mean to the driver
        self.node = ray.util.get_node_ip_address()
        FOR_STREAMS.apply()  # this worker process runs nothing but these streams, for its whole life
        self.engine = LocalEngine(config, max_frames=max_frames)
        self.engine.start()

    def figures(self) -> tuple[int, list[StreamFigures], dict[str, Any]]:
        """(this process's id, each stream's figures with its node's address, the engine's totals)."""
        streams = [dataclasses.replace(figures, node=self.node) for figures in self.engine.streams()]
        return os.getpid(), streams, self.engine.totals()

    def add(self, stream: StreamConfig) -> None:
        self.engine.add(stream)

    def remove(self, name: str) -> None:
        self.engine.remove(name)

    def wait(self, timeout: float | None) -> bool:
        return self.engine.wait(timeout)

    def stop(self) -> tuple[int, list[StreamFigures], dict[str, Any]]:
        """Stop every stream gracefully; the final figures."""
        self.engine.stop()
        return self.figures()


RemoteStreamActor = ray.remote(StreamActor)


@dataclasses.dataclass
class _Actor:
    """The driver's view of one actor: its handle, its streams, and what it last said."""

    handle: Any
    names: list[str]
    pid: int | None = None
    down: StreamState | None = None  # RESTARTING (a call failed or went unanswered SILENT_S) or FAILED (for good)
    error: str | None = None
    restarts: int = 0  # new processes seen
    pending: Any = None  # the figures call in flight
    asked_at: float = 0.0
    last: dict[str, StreamFigures] = dataclasses.field(default_factory=dict)  # by stream name
    past: dict[str, StreamFigures] = dataclasses.field(default_factory=dict)  # counters of earlier incarnations
    totals: dict[str, Any] = dataclasses.field(default_factory=dict)

    def figures(self, name: str) -> StreamFigures:
        """The stream's figures as its actor last gave them (STARTING before it answered), over its past."""
        figures = (self.last.get(name) or StreamFigures(name)).after(self.past.get(name) or StreamFigures(name))
        figures = dataclasses.replace(figures, restarts=figures.restarts + self.restarts)
        if self.down is not None:
            figures = dataclasses.replace(
                figures, state=self.down, fps_in=0.0, fps_out=0.0, error=self.error or figures.error
            )
        return figures

    def ask(self) -> None:
        if self.pending is None and self.down is not StreamState.FAILED:
            self.pending, self.asked_at = self.handle.figures.remote(), time.monotonic()

    def answered(self, pid: int, streams: list[StreamFigures], totals: dict[str, Any]) -> None:
        if self.pid is not None and pid != self.pid:
            self.restarted()
        self.pid, self.down, self.totals = pid, None, totals
        self.last = {figures.name: figures for figures in streams}

    def restarted(self) -> None:
        """Fold the dead process's counters into the past: its replacement counts from zero."""
        self.restarts += 1
        for name, figures in self.last.items():
            self.past[name] = figures.after(self.past.get(name) or StreamFigures(name))
        self.last = {}

    def failed(self, error: RayActorError) -> None:
        """A call found the actor dead: for good (ActorDiedError), else while Ray restarts it."""
        if isinstance(error, ActorDiedError):
            self.down, self.error = StreamState.FAILED, str(error).strip().splitlines()[0]
        else:
            self.down = StreamState.RESTARTING

    def silent(self) -> None:
        if self.pending is not None and self.down is None and time.monotonic() - self.asked_at > SILENT_S:
            self.down = StreamState.RESTARTING


class RayEngine:
    """The Engine protocol over Ray actors that each run a LocalEngine on their streams."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        max_frames: int | None = None,
        address: str | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """``cancel``, once set (by a signal handler), abandons a start that is still joining the cluster."""
        self.config = config
        self.max_frames = max_frames
        self.address = address
        self.cancel = cancel or threading.Event()
        self._actors: list[_Actor] = []
        self._lock = threading.Lock()
        self._owns_ray = False
        self._gpus = 0.0
        self._embedded = False  # a Ray of our own on this machine
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start or join Ray, then one actor per group of streams; returns once they are created, not running, or
        with none once ``cancel`` is set while joining."""
        groups = self._groups(self.config.streams)
        if not ray.is_initialized() and not self._init():
            return
        self._gpus = self._gpu_share(len(groups))
        with self._lock:
            for group in groups:
                self._spawn(group)
            self._started = True

    def _init(self) -> bool:
        """Join the cluster at ``address`` or start the embedded Ray; False when ``cancel`` ended the join."""
        if self.address:
            if not self._join(self.address):
                return False
        else:
            ray.init(num_cpus=os.cpu_count() or 1, logging_level=logging.WARNING, include_dashboard=False)
            self._embedded = True
        self._owns_ray = True
        return True

    def _join(self, address: str) -> bool:
        """Check the address, then ``ray.init`` it, on a thread of its own: RuntimeUnavailable once that has taken
        ``limit_s``, False as soon as ``cancel`` is set."""
        joined = threading.Event()
        outcome: list[BaseException] = []

        def join() -> None:
            try:
                check_reachable(address)
                # ERROR: not the warning that a joining thread leaves SIGTERM alone, which is what we want
                ray.init(address=address, logging_level=logging.ERROR, include_dashboard=False)
            except BaseException as e:  # re-raised by the waiting thread
                outcome.append(e)
            finally:
                joined.set()

        threading.Thread(target=join, name="backdrop-ray-join", daemon=True).start()
        limit_s = CONNECT_S + GREETING_S + JOIN_TIMEOUT_S
        deadline = time.monotonic() + limit_s
        while not joined.wait(CANCEL_CHECK_S):  # left to the process's exit when abandoned: Ray cannot be stopped
            if self.cancel.is_set():
                return False
            if time.monotonic() > deadline:
                raise _unavailable(address, f"it did not let this driver join within {limit_s:g} s")
        if outcome:
            if isinstance(outcome[0], (ConnectionError, RuntimeError, ValueError)):
                raise _unavailable(address, str(outcome[0]).strip().splitlines()[0]) from outcome[0]
            raise outcome[0]
        logging.getLogger("ray").setLevel(logging.WARNING)
        return True

    def _gpu_share(self, actors: int) -> float:
        """GPUs per actor: as configured, else an equal share of the cluster's (at most one), else none."""
        if self.config.serve.actor_gpus is not None:
            return self.config.serve.actor_gpus
        gpus = ray.cluster_resources().get("GPU", 0.0)
        return min(1.0, gpus / max(1, actors)) if gpus else 0.0

    def _groups(self, streams: tuple[StreamConfig, ...]) -> list[tuple[StreamConfig, ...]]:
        size = self.config.serve.streams_per_actor
        return [streams[i : i + size] for i in range(0, len(streams), size)]

    def _spawn(self, group: tuple[StreamConfig, ...]) -> None:
        options = self.config.serve
        handle = RemoteStreamActor.options(
            num_cpus=0.0 if self._embedded else options.actor_cpus,  # one machine: the OS shares its cores
            num_gpus=self._gpus,
            max_restarts=options.actor_restarts,
            max_task_retries=0,  # a call that was running when the actor died fails: the driver asks again
            max_concurrency=ACTOR_CONCURRENCY,
        ).remote(dataclasses.replace(self.config, streams=group), self.max_frames, os.getcwd())
        self._actors.append(_Actor(handle, [stream.name for stream in group]))

    def add(self, stream: StreamConfig) -> None:
        """Start one more stream in an actor of its own; ConfigError when it clashes with the others."""
        with self._lock:
            self.config = self.config.with_stream(stream)
            if self._started:
                self._spawn((stream,))

    def remove(self, name: str) -> None:
        """Stop one stream; its actor goes too when it held no other."""
        with self._lock:
            self.config = self.config.without(name)
            actor = next((a for a in self._actors if name in a.names), None)
            if actor is None:
                return
            actor.names.remove(name)
            actor.last.pop(name, None)
            if not actor.names:
                self._actors.remove(actor)
        if actor.names:
            self._call(actor.handle.remove.remote(name), STOP_TIMEOUT_S)
        else:
            self._call(actor.handle.stop.remote(), STOP_TIMEOUT_S)
            ray.kill(actor.handle, no_restart=True)

    @staticmethod
    def _call(ref: Any, timeout: float) -> Any:
        """The call's answer, or None when the actor is down or slow (its figures will say so)."""
        try:
            return ray.get(ref, timeout=timeout)
        except (GetTimeoutError, RayActorError):
            return None

    def streams(self) -> list[StreamFigures]:
        """Every stream's figures; an actor that does not answer within ANSWER_S keeps its last ones."""
        with self._lock:
            actors = list(self._actors)
            if not self._stopped:
                self._refresh(actors)
        return [actor.figures(name) for actor in actors for name in actor.names]

    def _refresh(self, actors: list[_Actor]) -> None:
        for actor in actors:
            actor.ask()
        pending = [actor.pending for actor in actors if actor.pending is not None]
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=ANSWER_S) if pending else ([], [])
        for actor in actors:
            if actor.pending is not None and actor.pending in ready:
                ref, actor.pending = actor.pending, None
                try:
                    actor.answered(*ray.get(ref))
                except RayActorError as e:
                    actor.failed(e)
            actor.silent()

    def totals(self) -> dict[str, Any]:
        """The streams' totals, the actors' batching added up, and how many actors there are."""
        streams = self.streams()
        with self._lock:
            actors = [actor.totals for actor in self._actors]
        batching = {key: sum(a.get(key, 0) for a in actors) for key in BATCH_COUNTS}
        extra = {
            **batching,
            "mean_batch_size": mean_batch_size(batching["frames_inferred"], batching["batches"]),
            "actors": len(actors),
            "peak_rss_mb": round(sum(a.get("peak_rss_mb") or 0.0 for a in actors), 1),  # all actors together
        }
        return engine_totals(streams, extra)

    def wait(self, timeout: float | None = None) -> bool:
        """True once every stream has ended in its actor (or its actor is gone for good)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                actors = [actor for actor in self._actors if actor.down is not StreamState.FAILED]
            if not actors:
                return True
            refs = [actor.handle.wait.remote(left) for actor in actors]
            try:
                return all(ray.get(refs, timeout=None if left is None else left + ANSWER_S))
            except GetTimeoutError:
                return False
            except RayActorError:  # one died: a restarted one starts its streams again, a failed one is done
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                with self._lock:
                    self._refresh(actors)

    def stop(self) -> None:
        """Stop every actor's streams gracefully (keeping their final figures), end the actors, leave Ray."""
        with self._lock:
            actors = list(self._actors)
            for actor in actors:
                actor.pending, actor.asked_at = actor.handle.stop.remote(), time.monotonic()
            self._refresh_until(actors, STOP_TIMEOUT_S + ANSWER_S)
            self._stopped = True
        for actor in actors:
            ray.kill(actor.handle, no_restart=True)
        if self._owns_ray:
            ray.shutdown()

    def _refresh_until(self, actors: list[_Actor], timeout: float) -> None:
        pending = [actor.pending for actor in actors if actor.pending is not None]
        if pending:  # any Ray call, even with nothing to wait for, would start a Ray of its own
            ray.wait(pending, num_returns=len(pending), timeout=timeout)
            self._refresh(actors)
