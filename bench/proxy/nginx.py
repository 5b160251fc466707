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


def proxy_conf(layout: Layout) -> str:
    p = layout.ports
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
    # Roughly what the router adds, so both proxies do comparable header work.
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Request-ID $request_id;
    proxy_http_version 1.1;
    location /preview/{layout.ws_sid}/ {{
      proxy_pass http://ws;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 60s;
    }}
    location / {{
      proxy_pass http://files;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
    )
