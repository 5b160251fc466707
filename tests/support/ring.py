"""The secret and ring file every test cluster uses."""

from __future__ import annotations

SECRET = "s" * 48


def ring_text(nodes: dict[str, tuple[int, str]]) -> str:
    """A ring file: {name: (port, state)} on 127.0.0.1."""
    return "".join(
        f'[[nodes]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}"\nstate = "{state}"\n\n'
        for name, (port, state) in nodes.items()
    )
