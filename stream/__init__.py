"""The video side of Backdrop: frames from a source, through segmentation and compositing, to sinks.

Subpackages, in the order a frame meets them: ``sources`` (Source and its kinds, ``make_source``), ``core``
(Frame, steps, stages, queues, the Pipeline and ``open_pipeline``), ``compositing`` (mask → matte → composite
over a Background), ``sinks`` (Sink and its kinds, ``make_sink``, write-target checks); beside them ``config``
(the typed YAML schemas), ``serve`` (many streams sharing one model) and ``devices`` (camera discovery).
"""
