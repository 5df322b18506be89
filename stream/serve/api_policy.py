"""What a stream added through the control API (``POST /streams``) may do; config-file streams are unrestricted.

Whoever can reach the API with its token can add streams, but the config file is the operator's alone, so an
API stream gets only what ``serve:`` grants it:

- **Files and folders** (outputs, ``pipeline.stats_json``) only beneath ``serve.output_root``; without one, none.
  A path means what it means in the config file: relative to the directory ``backdrop serve`` was started in
  (as is a relative ``output_root``), then resolved, symlinks followed, and it must land strictly beneath the
  resolved root. A ``..`` component is refused outright (a strftime field may expand to several folders or to
  nothing, so ``..`` after one cannot be resolved before it is written).
- **RTSP** (``rtsp://``, ``rtsps://``) only to hosts named in ``serve.publish_hosts`` (any port).
- **Previews** (``http://HOST:PORT``) only on loopback or on addresses named in ``serve.preview_hosts``.
- **window** and **vcam** outputs are the operator's machine's: never for an API stream; ``null`` always is.

Checked before the engine sees the stream; a refusal is one line naming the output.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from urllib.parse import urlsplit

from backdrop.errors import ConfigError
from backdrop.stream.config.serve import ServeOptions, StreamConfig
from backdrop.stream.web.guard import is_loopback

PREVIEW_DEFAULT_HOST = "127.0.0.1"  # a preview URL without a host listens there (stream/sinks/preview.py)


def check_api_stream(stream: StreamConfig, options: ServeOptions, cwd: str) -> None:
    """Raise ConfigError (one line naming the output) unless ``options`` allow ``stream``'s outputs and files;
    relative paths are taken from ``cwd``, the server's working directory."""
    for spec in stream.outputs:
        _check_output(spec, options, cwd)
    for key, value in stream.overrides:
        if key == "pipeline.stats_json" and value is not None:
            _check_path(f"pipeline.stats_json {value!r}", str(value), options, cwd)


def _check_output(spec: str, options: ServeOptions, cwd: str) -> None:
    what = f"output {spec!r}"
    if spec == "null":
        return
    if spec in ("window", "vcam") or spec.startswith("vcam:"):
        raise ConfigError(f"{what}: window and vcam outputs are only for streams of the config file, not the API's")
    if "://" not in spec:
        _check_path(what, spec, options, cwd)
        return
    parts = urlsplit(spec)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme in ("rtsp", "rtsps"):
        if host not in {name.lower() for name in options.publish_hosts}:
            raise ConfigError(f"{what}: {host or 'no host'} is not in serve.publish_hosts")
    elif scheme == "http":
        host = host or PREVIEW_DEFAULT_HOST
        if not is_loopback(host) and host not in {name.lower() for name in options.preview_hosts}:
            raise ConfigError(f"{what}: a preview beyond loopback must listen on an address in serve.preview_hosts")
    else:
        raise ConfigError(f"{what}: a stream added through the API may not have a {scheme}:// output")


def _check_path(what: str, path: str, options: ServeOptions, cwd: str) -> None:
    if options.output_root is None:
        raise ConfigError(f"{what}: streams added through the API write no files unless serve.output_root is set")
    if ".." in PurePath(path).parts:
        raise ConfigError(f"{what}: '..' is not allowed in a path of a stream added through the API")
    try:
        root = os.path.realpath(os.path.join(cwd, options.output_root))
        real = os.path.realpath(os.path.join(cwd, path))
    except ValueError as e:  # a NUL byte
        raise ConfigError(f"{what}: not a usable path: {e}") from e
    if real == root or os.path.commonpath((root, real)) != root:
        raise ConfigError(f"{what}: not beneath serve.output_root ({options.output_root})")
