"""Masks credentials in URLs before they reach a log line or an error message.

Camera URLs routinely carry ``user:password@`` or ``?token=…``; FFmpeg and our own errors echo the URL back,
so everything that prints a URL (or an error that may contain one) goes through ``mask_credentials`` first.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ — userinfo stops at the first '/', whitespace or quote; the last '@' before the host wins,
# so passwords containing '@' are masked whole.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s'\"<>]*@)")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pass|pwd|token|access_token|auth|key|secret|signature|sig)=)[^&#\s'\"<>]*",
    re.IGNORECASE,
)


def mask_credentials(text: str) -> str:
    """Return ``text`` with URL user info and secret query parameters replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{MASK}", text)


def masked_reason(error: BaseException) -> str:
    """A one-line reason for ``error`` (FFmpeg's strerror when it has one) with credentials masked."""
    return mask_credentials(getattr(error, "strerror", None) or str(error) or type(error).__name__)
