"""confine.seccomp_filter(): what the BPF program answers, by a small interpreter of the
classic BPF it uses (table) and by the kernel (a forked child with the filter on)."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

import pytest

from previewnode import confine

ALLOW, KILL = "allow", "kill"


def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = 0) -> int:
    """The return value of `program` for one `struct seccomp_data` (no /proc, no kernel)."""
    data = struct.pack(
        "<iIQ6Q", nr, arch or confine.AUDIT_ARCH_X86_64, 0, *(list(args) + [0] * 6)[:6]
    )
    insns = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    for _ in range(len(insns)):  # classic BPF only jumps forward: one pass at most
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # BPF_ALU | BPF_AND | BPF_K
            acc &= k
        elif code in (0x15, 0x35, 0x45):  # BPF_JMP | JEQ / JGE / JSET, K
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not expected in this filter")
        pc += 1
    raise AssertionError("fell off the end of the program")


def verdict(value: int) -> str | int:
    if value == confine.RET_ALLOW:
        return ALLOW
    if value == confine.RET_KILL_PROCESS:
        return KILL
    assert value & 0xFFFF0000 == confine.RET_ERRNO, hex(value)
    return value & 0xFFFF


AF_INET6, AF_NETLINK, AF_PACKET = 10, 16, 17
SOCK_DGRAM, SOCK_RAW = 2, 3
NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
CASES = [
    # (what, nr, args, verdict)
    ("tcp socket", 41, (2, 1, 0), ALLOW),
    ("tcp socket, nonblocking, cloexec", 41, (2, 1 | NONBLOCK_CLOEXEC, 0), ALLOW),
    ("tcp socket, protocol named", 41, (2, 1, 6), ALLOW),
    ("sctp stream socket", 41, (2, 1, 132), errno.EACCES),
    ("mptcp socket", 41, (2, 1, 262), errno.EACCES),
    ("udp socket", 41, (2, SOCK_DGRAM, 0), errno.EACCES),
    ("raw socket", 41, (2, SOCK_RAW, 1), errno.EACCES),
    ("unix socket (a pathname or abstract listener anywhere)", 41, (1, 1, 0), errno.EACCES),
    ("ipv6 socket", 41, (AF_INET6, 1, 0), errno.EACCES),
    ("netlink socket", 41, (AF_NETLINK, SOCK_RAW, 0), errno.EACCES),
    ("packet socket", 41, (AF_PACKET, SOCK_RAW, 0), errno.EACCES),
    ("unix socketpair (child stdio)", 53, (1, 1, 0), ALLOW),
    ("inet socketpair", 53, (2, 1, 0), errno.EACCES),
    ("clone for a thread", 56, (0x3D0F00,), ALLOW),
    ("clone for fork (SIGCHLD)", 56, (17,), ALLOW),
    ("clone into a new user namespace", 56, (0x10000000 | 17,), errno.EPERM),
    ("clone into a new pid namespace", 56, (0x20000000 | 17,), errno.EPERM),
    ("clone into a new mount namespace", 56, (0x00020000 | 17,), errno.EPERM),
    ("clone3 (flags behind a pointer)", 435, (), errno.ENOSYS),
    ("unshare", 272, (0x10000000,), errno.EPERM),
    ("setns", 308, (), errno.EPERM),
    ("mount", 165, (), errno.EPERM),
    ("ptrace", 101, (), errno.EPERM),
    ("bpf", 321, (), errno.EPERM),
    ("keyctl", 250, (), errno.EPERM),
    ("add_key", 248, (), errno.EPERM),
    ("request_key", 249, (), errno.EPERM),
    ("perf_event_open", 298, (), errno.EPERM),
    ("userfaultfd", 323, (), errno.EPERM),
    ("io_uring_setup (its socket op would skip socket())", 425, (), errno.EPERM),
    ("read", 0, (), ALLOW),
    ("connect (Landlock decides TCP)", 42, (), ALLOW),
    ("x32 syscall number", 0x40000000 | 41, (2, 1, 0), KILL),
]


@pytest.mark.parametrize(("what", "nr", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_filter_answers(what: str, nr: int, args: tuple[int, ...], expected: object) -> None:
    assert verdict(run_bpf(confine.seccomp_filter(), nr, args)) == expected


def test_another_architecture_is_killed() -> None:
    i386 = 0x40000003
    assert verdict(run_bpf(confine.seccomp_filter(), 41, (2, 1, 0), arch=i386)) == KILL


def test_every_denied_syscall_is_denied() -> None:
    program = confine.seccomp_filter()
    for name, nr in confine.DENIED.items():
        assert verdict(run_bpf(program, nr)) == errno.EPERM, name


def in_a_filtered_child(check: str) -> int:
    """Fork; the child installs the filter and runs `check`; its exit status."""
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(confine.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            confine.install_seccomp(confine.seccomp_filter())
            code = CHECKS[check]()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _socket_errno(family: int, kind: int) -> int:
    try:
        socket.socket(family, kind).close()
    except OSError as exc:
        return exc.errno or 99
    return 0


def _socketpair() -> int:
    a, b = socket.socketpair(socket.AF_UNIX)
    a.close()
    b.close()
    return 0


def _unshare() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno()  # CLONE_NEWUSER


def _fork() -> int:  # clone3 refused with ENOSYS: libc falls back to clone
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return 0 if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7 else 98


CHECKS = {
    "udp": lambda: _socket_errno(socket.AF_INET, socket.SOCK_DGRAM),
    "tcp": lambda: _socket_errno(socket.AF_INET, socket.SOCK_STREAM),
    "unix": lambda: _socket_errno(socket.AF_UNIX, socket.SOCK_STREAM),
    "tcp6": lambda: _socket_errno(socket.AF_INET6, socket.SOCK_STREAM),
    "socketpair": _socketpair,
    "unshare": _unshare,
    "fork": _fork,
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter is for x86_64")
@pytest.mark.parametrize(
    ("check", "status"),
    [
        ("udp", errno.EACCES),
        ("tcp", 0),
        ("unix", errno.EACCES),
        ("tcp6", errno.EACCES),
        ("socketpair", 0),
        ("unshare", errno.EPERM),
        ("fork", 0),
    ],
)
def test_the_kernel_applies_the_filter_in_a_child(check: str, status: int) -> None:
    assert in_a_filtered_child(check) == status
