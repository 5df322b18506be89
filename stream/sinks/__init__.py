"""Where composited frames go: the Sink life cycle (``base``), one module per kind (video file, segmented
recording, PNG folder, window, browser preview, RTSP, virtual camera, null) and ``make_sink`` (``factory``).
``targets`` checks before a run that no file it writes is one it reads or writes twice; ``audio_routing``
decides which outputs carry the source's sound."""
