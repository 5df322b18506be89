"""Measuring a segmenter on labelled data: exact metrics, an evaluation loop and its reports."""
