"""nginx configs: the upstream that serves the files, and nginx as the path proxy under test
(one worker, upstream keep-alive, the headers the router also adds)."""

from __future__ import annotations

from pathlib import Path

from bench.proxy.layout import HOST, Layout


def _common(tmp: Path, tag: str) -> str:
    temp = "".join(
        f"  {kind}_temp_path {tmp}/{tag}-{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
daemon off;
pid {tmp}/{tag}.pid;
error_log {tmp}/{tag}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
{temp}"""


def upstream_conf(layout: Layout) -> str:
    return (
        _common(layout.tmp, "upstream")
        + f"""  open_file_cache max=64;
  server {{
    listen {HOST}:{layout.ports["upstream"]} backlog=1024;
    root {layout.tmp}/www;
  }}
}}
"""
    )


# Roughly what the router adds, so the proxies do comparable header work. In every
# location: a location with any proxy_set_header of its own inherits none from its server.
_HEADERS = "".join(
    f"      proxy_set_header {name} {value};\n"
    for name, value in (
        ("Host", "$http_host"),
        ("X-Forwarded-For", "$remote_addr"),
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Forwarded-Host", "$http_host"),
        ("X-Request-ID", "$request_id"),
    )
)


def proxy_conf(layout: Layout) -> str:
    p = layout.ports
    headers = _HEADERS
    return (
        _common(layout.tmp, "proxy")
        + f"""  upstream files {{
    server {HOST}:{p["upstream"]};
    keepalive 64;
    keepalive_requests 1000000;
  }}
  upstream ws {{
    server {HOST}:{p["ws"]};
  }}
  server {{
    listen {HOST}:{p["nginx"]} backlog=1024;
    proxy_http_version 1.1;
    location /preview/{layout.ws_sid}/ {{
      proxy_pass http://ws;
{headers}      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 60s;
    }}
    location / {{
      proxy_pass http://files;
{headers}      proxy_set_header Connection "";
    }}
  }}
}}
"""
    )
