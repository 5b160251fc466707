"""previewnode.warm.WarmPool with real launchers (unsandboxed, in-process): it fills,
hands out live ones and refills, stops when told to (a file system that cannot swap
directories), and leaves no process when cancelled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from previewnode.config import RUNTIME_DIR
from previewnode.devserver import DevServerConfig, spawn, stop
from previewnode.warm import WarmPool

pytestmark = pytest.mark.skipif(
    not (RUNTIME_DIR / "node_modules" / "vite").is_dir(), reason="needs the Vite runtime"
)


def pool(tmp: Path, size: int) -> WarmPool:
    area = tmp / "warm"

    def configure(name: str, procs: tuple[Path, ...]) -> DevServerConfig:
        return DevServerConfig(
            session_id=name,
            workspace=area / name / "ws",
            node_modules=RUNTIME_DIR / "node_modules",
            cache_dir=area / name / "cache",
            runtime_dir=RUNTIME_DIR,
            base="/",
            allowed_hosts=(),
            client_port=0,
            client_protocol="ws",
        )

    return WarmPool(size, area, configure, None, trio.Semaphore(2))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(predicate: object, seconds: float = 20.0) -> None:
    with trio.fail_after(seconds):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.05)


async def test_the_pool_fills_hands_out_live_launchers_refills_and_stops_them_all(
    tmp_path: Path,
) -> None:
    warm = pool(tmp_path, 2)
    async with trio.open_nursery() as nursery:
        await nursery.start(warm.run)
        await until(lambda: warm.ready == 2)
        taken = warm.take()
        assert taken is not None and taken.process.poll() is None
        assert (tmp_path / "warm" / taken.group / "ws").is_dir()  # empty, for a swap
        await until(lambda: warm.ready == 2)  # refilled
        waiting = [w.process.pid for w in warm._ready]  # what the pool holds
        nursery.cancel_scope.cancel()
    await warm.discard(taken)  # a session's end: its supervisor stops it
    for pid in [taken.process.pid, *waiting]:
        assert not alive(pid)
    assert not (tmp_path / "warm" / taken.group).exists()


async def test_disabled_it_stops_those_waiting_and_hands_out_none(tmp_path: Path) -> None:
    warm = pool(tmp_path, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(warm.run)
        await until(lambda: warm.ready == 1)
        pid = warm._ready[0].process.pid
        warm.disable("EINVAL from renameat2")
        assert warm.take() is None and warm.ready == 0
        await until(lambda: not alive(pid))
        await trio.sleep(0.3)
        assert warm.ready == 0  # not refilled
        nursery.cancel_scope.cancel()


def launchers_in(area: Path) -> list[int]:
    """Launcher processes working in `area` (a warm sandbox's workspace)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ours = entry.name.isdigit() and str(area) in os.readlink(entry / "cwd")
            if ours and b"launcher.mjs" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_cancelled_while_a_launcher_imports_it_leaves_none_running(tmp_path: Path) -> None:
    warm = pool(tmp_path, 1)
    keep: list[object] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(warm.run)
        await until(lambda: launchers_in(tmp_path / "warm"), 10)
        assert warm.ready == 0  # still importing
        pids = launchers_in(tmp_path / "warm")
        keep.append(warm)  # nothing is collected: only the pool's own stop may end it
        nursery.cancel_scope.cancel()
    await until(lambda: not any(alive(p) for p in pids), 5)


async def test_a_warm_launcher_whose_node_goes_away_while_it_imports_exits(
    tmp_path: Path,
) -> None:
    """Its stdin's end is the node's going (a SIGKILLed node can stop nothing itself):
    seen while it imports Vite, not only once it waits for its config. (The hang in exit
    this once caused is reproduced by test_faults' twenty node deaths, not here.)"""
    config = pool(tmp_path, 1).configure("warm-1", ())
    config.workspace.mkdir(parents=True)
    process = await spawn(config, warm=True)
    try:
        assert process.stdin is not None
        await process.stdin.aclose()  # at once: it is still importing
        with trio.fail_after(10):
            await process.wait()
    finally:
        await stop(process)
