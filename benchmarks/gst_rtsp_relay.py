"""A small RTSP relay for the tests, built on GStreamer's RTSP server (run it with Debian's /usr/bin/python3).

For every stream NAME given on the command line, publishers RECORD H.264 to ``rtsp://HOST:PORT/NAME/in`` and
readers PLAY it from ``rtsp://HOST:PORT/NAME/out``. Each path has its own media factory; the record side parses
the publisher's access units and fans them out to one appsrc per reader. A reader starts at the next keyframe,
so it never sees a half GOP. SPS/PPS are repeated in-band by the record side's ``h264parse`` (once per access
unit); the play side re-parses to whole access units before ``rtph264pay``. Letting ``rtph264pay``
(config-interval=-1) insert them instead puts SPS/PPS before every IDR *slice* of a multi-slice keyframe (x264's
zerolatency output), which FFmpeg readers take as a new picture: half-grey, corrupt frames until the next GOP.

It prints ``READY <port>`` once it listens (``--port 0`` picks a free port) and ``RECEIVING <name>`` when a
publisher's first access unit arrives, so tests can wait on lines instead of sleeping. When stopped it prints
``RECEIVED <name> <count>`` for every stream: the access units passed on, which tells a benchmark how much of
what its publishers sent arrived.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import threading
from collections import deque

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

RECORD_LAUNCH = (
    "( rtph264depay name=depay0 ! h264parse config-interval=-1 "
    "! video/x-h264,stream-format=byte-stream,alignment=au "
    "! appsink name=sink emit-signals=true sync=false max-buffers=8 drop=true )"
)
PLAY_LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=true max-bytes=4000000 block=false "
    "caps=video/x-h264,stream-format=byte-stream,alignment=au "
    "! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au ! rtph264pay name=pay0 pt=96 )"
)
RECORD_LATENCY_MS = 20
RECENT_UNITS = 64  # access units remembered to drop the twin a duplicated record media delivers


class StreamRelay:
    """Fans one stream's access units from its publishers out to its readers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._waiting_for_keyframe: dict[Gst.Element, bool] = {}
        self._recent: deque[bytes] = deque(maxlen=RECENT_UNITS)
        self.units = 0  # access units passed on (twins left out)

    def add_reader(self, appsrc: Gst.Element) -> None:
        with self._lock:
            self._waiting_for_keyframe[appsrc] = True

    def remove_reader(self, appsrc: Gst.Element) -> None:
        with self._lock:
            self._waiting_for_keyframe.pop(appsrc, None)

    def forward(self, sample: Gst.Sample) -> None:
        """Hand an access unit to the readers, once.

        The server can construct two record medias for one publisher whose ANNOUNCE → SETUP is slow, both fed
        the same packets; passing both on would give readers every access unit twice (corrupt pictures). Access
        units are unique (frame_num and POC change every picture), so a repeat is always such a twin.
        """
        buffer = sample.get_buffer()
        ok, mapped = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return
        digest = hashlib.blake2b(bytes(mapped.data), digest_size=16).digest()
        buffer.unmap(mapped)
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            if digest in self._recent:
                return
            self._recent.append(digest)
            self.units += 1
            readers = [src for src, waiting in self._waiting_for_keyframe.items() if keyframe or not waiting]
            for src in readers:
                self._waiting_for_keyframe[src] = False
        for src in readers:
            copy = buffer.copy()
            copy.pts = copy.dts = Gst.CLOCK_TIME_NONE
            src.emit("push-buffer", copy)


def record_factory(relay: StreamRelay) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(RECORD_LAUNCH)
    factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
    factory.set_latency(RECORD_LATENCY_MS)

    def on_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        announced = threading.Event()

        def on_sample(sink: Gst.Element) -> Gst.FlowReturn:
            sample = sink.emit("pull-sample")
            if sample is not None:
                if not announced.is_set():
                    announced.set()
                    print(f"RECEIVING {relay.name}", flush=True)
                relay.forward(sample)
            return Gst.FlowReturn.OK

        media.get_element().get_by_name("sink").connect("new-sample", on_sample)

    factory.connect("media-configure", on_configure)
    return factory


def play_factory(relay: StreamRelay) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PLAY_LAUNCH)
    factory.set_shared(False)

    def on_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        relay.add_reader(appsrc)
        media.connect("unprepared", lambda _media: relay.remove_reader(appsrc))

    factory.connect("media-configure", on_configure)
    return factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("streams", nargs="+", metavar="NAME", help="stream names (record NAME/in, play NAME/out)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.get_thread_pool().set_max_threads(32)
    mounts = server.get_mount_points()
    relays = [StreamRelay(name) for name in args.streams]
    for name, relay in zip(args.streams, relays, strict=True):
        mounts.add_factory(f"/{name}/in", record_factory(relay))
        mounts.add_factory(f"/{name}/out", play_factory(relay))

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    for relay in relays:
        print(f"RECEIVED {relay.name} {relay.units}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
