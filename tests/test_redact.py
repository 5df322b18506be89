"""Credentials in stream URLs never reach a log line or an error message."""

from __future__ import annotations

import pytest

from backdrop.stream.core.redact import mask_credentials, masked_reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
        ("rtsp://admin@cam.local/live", "rtsp://***@cam.local/live"),
        ("rtsp://user:p@ss@w0rd@cam.local/live", "rtsp://***@cam.local/live"),
        (
            "http://cam.local/video.mjpg?user=a&password=s3cret&x=1",
            "http://cam.local/video.mjpg?user=a&password=***&x=1",
        ),
        ("https://cdn.example/live.m3u8?token=abc.def", "https://cdn.example/live.m3u8?token=***"),
        (
            "cannot open 'rtsp://u:pw@a/x' and 'rtsp://v:pw2@b/y'",
            "cannot open 'rtsp://***@a/x' and 'rtsp://***@b/y'",
        ),
        ("rtsp://10.0.0.5:554/stream1", "rtsp://10.0.0.5:554/stream1"),
        ("http://host/path/with@sign", "http://host/path/with@sign"),
        ("no url here: user:pass@host", "no url here: user:pass@host"),
    ],
)
def test_mask_credentials(text: str, expected: str) -> None:
    assert mask_credentials(text) == expected


def test_masked_reason_prefers_strerror_and_masks() -> None:
    error = OSError(111, "Connection refused")
    assert masked_reason(error) == "Connection refused"
    assert masked_reason(ValueError("bad rtsp://a:secret@h/p")) == "bad rtsp://***@h/p"
    assert masked_reason(TimeoutError()) == "TimeoutError"
