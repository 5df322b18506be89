"""The HTTP surfaces' common ground (serve's API, the browser preview): ``guard`` (AccessPolicy: Host names,
token, cross-site changes) and ``server`` (BoundedHTTPServer and GuardedHandler: deadlines, a cap on handlers,
one-line refusals, no tracebacks for client mistakes)."""
