"""Example run configurations shipped with Backdrop: ``backdrop run --config webcam`` reads ``webcam.yaml`` here."""
