"""Where frames come from: the Source life cycle (``base``), one module per kind (video file, image folder,
webcam, network stream, test pattern) and ``make_source`` (``factory``), which picks one from a URI.
``demo_clip`` writes the bundled demo input."""
