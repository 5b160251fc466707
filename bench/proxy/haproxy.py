"""HAProxy as the path proxy under test: one process, one thread, HTTP mode, keep-alive to
the upstream (`http-reuse always`), the headers the router and the nginx target add, no
logging, WebSocket upgrades to the echo server (`timeout tunnel`). Pure: returns the text.
"""

from __future__ import annotations

from bench.proxy.layout import HOST, Layout


def proxy_conf(layout: Layout) -> str:
    p = layout.ports
    # No `log` line anywhere: HAProxy logs nothing. Without `daemon` or `master-worker`
    # (and run with -db) the process started is the one that serves, so its pid is the one
    # whose CPU is counted.
    return f"""global
  nbthread 1
  maxconn 4096
  pidfile {layout.tmp}/haproxy.pid

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 65s
  timeout server 60s
  timeout http-request 30s
  timeout http-keep-alive 65s
  timeout tunnel 60s

frontend proxy
  bind {HOST}:{p["haproxy"]}
  # Roughly what the router adds, as the nginx target does: the client's address (not
  # appended: the client is not a trusted proxy), scheme, host and a fresh request ID.
  unique-id-format %[uuid()]
  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Request-ID %[unique-id]
  use_backend ws if {{ path_beg /preview/{layout.ws_sid}/ }}
  default_backend files

backend files
  server upstream {HOST}:{p["upstream"]}

backend ws
  server echo {HOST}:{p["ws"]}
"""
