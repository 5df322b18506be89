"""The run itself: frames, the per-frame steps, the stage threads and queues that schedule them, the Pipeline.

``frame`` (Frame, the unit that flows), ``steps`` (plain per-frame work: preprocess, infer, composite),
``stages`` (threads that only schedule steps) joined by ``queues`` (StageQueue), ``pipeline`` (Pipeline: one run,
its start-up, stop and close), ``assemble`` (open_pipeline: a RunConfig → an opened Pipeline), ``stats``
(RunStats), ``live_controls`` (what a viewer may change mid-run), and the small helpers the sources and sinks
share: ``latest`` (a newest-only mailbox), ``backoff``, ``redact`` (credentials out of messages).
"""
