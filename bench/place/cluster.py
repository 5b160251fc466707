"""The nodes as the simulation sees them: sessions held, Vites running, the load each reports.

A node reports `X-Preview-Node-Load: running=R/M; sessions=S/N` (previewcore.wire); the
router's load is that header parsed (fractions summed). Here S is the sessions it holds
and R the sessions created on it within the last `window` creates (a fresh session's
Vite runs; older ones go idle), at most M, as a node stops its least recently used Vite to
make room. A node holding N sessions refuses the create (503), as a full node does.
"""

from __future__ import annotations

from collections import defaultdict, deque

from previewcore.wire import Load, format_load, parse_load

Held = tuple[int, str] | None  # how to re-create it: (kind, key), None for a random key


class Cluster:
    def __init__(self, max_sessions: int, max_running: int, window: int) -> None:
        self.max_sessions = max_sessions
        self.max_running = max_running
        self.window = window
        self.held: dict[str, list[Held]] = defaultdict(list)
        self.recent: dict[str, int] = defaultdict(int)
        self._created: deque[str] = deque()
        self._parsed: dict[tuple[int, int], Load] = {}

    def add(self, name: str, held: Held) -> bool:
        """Create the session here; False (a 503) when the node is full."""
        sessions = self.held[name]
        if len(sessions) >= self.max_sessions:
            return False
        sessions.append(held)
        self.recent[name] += 1
        created = self._created
        created.append(name)
        if len(created) > self.window:
            self.recent[created.popleft()] -= 1
        return True

    def report(self, name: str) -> Load:
        """The load the router reads from this node's next response: the real header, parsed."""
        state = (min(self.recent[name], self.max_running), len(self.held[name]))
        load = self._parsed.get(state)
        if load is None:  # memoized: the same (R, S) always parses to the same load
            header = format_load(state[0], self.max_running, state[1], self.max_sessions)
            load = self._parsed[state] = parse_load(header) or Load(0.0, 0.0, 0.0)
        return load

    def remove(self, name: str) -> list[Held]:
        """The node is gone: its sessions, which their clients must create again."""
        return self.held.pop(name, [])
