"""``backdrop serve``: many streams in one process (``engine.LocalEngine``) or in Ray actors
(``ray_engine.RayEngine``), sharing one model through cross-stream batches (``batching``), each stream
supervised and restarted by a ``runner``, exposed by an HTTP API and Prometheus ``metrics``."""
