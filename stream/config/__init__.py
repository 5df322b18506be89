"""Configuration: YAML parsed into typed, frozen dataclasses that reject unknown keys and bad values.

``typed_yaml`` is the one loader (read a file safely, build a dataclass from a mapping, apply dotted-key
overrides, range checks); ``run`` (RunConfig, ``backdrop run``) and ``serve`` (ServeConfig, ``backdrop serve``)
are the two schemas built on it, as peers.
"""
