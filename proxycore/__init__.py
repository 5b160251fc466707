"""The HTTP/1.1 proxy core shared by the router and the node: server, exchange, request-head
scan, upstream pool and response reader, header rules, forward, tunnel, access log.

Never: import `router`, `previewnode` or `previewcore`; this package knows HTTP, not sessions.
"""
