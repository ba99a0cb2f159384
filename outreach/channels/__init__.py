"""Channels that reach a client outside the app.

    gateway.py     SMS and app push: the HTTP/JSON provider adapter (signed requests, retries,
                   rate limit), the file provider of `make run`, delivery receipt parsing
    devgateway.py  a real local HTTP gateway (standard library only) for tests and benchmarks
"""
