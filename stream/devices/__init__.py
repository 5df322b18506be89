"""The cameras and virtual cameras of this machine: ``discovery`` (list_devices) and ``v4l2_modes`` (a camera's
modes from v4l2-ctl), for ``backdrop devices``."""
