"""What the router and the node agree on beyond HTTP: session IDs, API errors, flags,
live files, API tokens, the URL scheme and the headers they exchange.

Never: import `router` or `previewnode`.
"""
