"""`backdrop bench`: how fast Backdrop runs on this machine, per runtime, stage and source."""
