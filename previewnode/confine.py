"""The dev server's parent where user namespaces are not allowed: Landlock, seccomp, no caps.

    python -I -S confine.py --ro /usr ... --rw WORKSPACE ... --port N -- node launcher.mjs

The node runs this instead of bubblewrap (`--sandbox-mechanism landlock`). It forks the
command; the child confines itself and execs it, the parent stays unconfined and outlives
it. The policy (flags in argv: paths and a port, nothing secret; built by
`previewnode.sandbox.landlock_policy`, rendered by `confine_argv`) says what the child
may touch:

- Landlock (ABI >= 4): every filesystem right of the kernel's ABI is handled; read and
  execute beneath `ro`, all but device nodes beneath `rw`, single files as listed; no
  rule for `/proc`, `/sys`, the data dir or other sessions. TCP bind and connect only to
  the one loopback port its Vite listens on. ABI >= 6: signals and abstract unix sockets
  scoped to its own domain (it cannot signal the node or this parent).
- seccomp: `socket()` only for TCP over IPv4 (then bound by the port rules; AF_UNIX,
  UDP, raw, netlink, packet and IPv6 fail with EACCES), `socketpair()` only AF_UNIX (a
  pair reaches nothing), no namespaces, mounts, ptrace, bpf, keyrings, perf, userfaultfd,
  io_uring (its socket op would pass the socket() filter), SysV IPC or POSIX queues;
  `clone3` fails with ENOSYS so libc falls back to `clone`, which may not ask for a new
  namespace. Anything but x86_64 syscalls kills the process.
- No capabilities: none held before exec and NO_NEW_PRIVS, so even uid 0 execs with
  none (the bounding set is emptied too where CAP_SETPCAP allows). Same uid as the node:
  no per-session uid (docs/architecture.md says what that leaves to cgroups).

The parent is a child subreaper: orphans of the tree (a `setsid`, double-forked sleeper)
become its children. When the command exits, on SIGTERM, or when stdin (a pipe from the
node, passed on to the command) hangs up, it stops the command and SIGKILLs every
descendant left, repeating until none, then exits with the command's status. Without a
PID namespace, that is what makes "nothing it spawned outlives it" true.

Never: import more than the standard library's cheapest modules (this runs on every dev
server start, with `-I -S`; `json` or `signal` would add 10-16 ms: `re`, `enum`), read
stdin (it is the command's), or exec the command unconfined: any step that fails ends
the child with status 126.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]  # `signal` imports enum: 10 ms
import ctypes
import os
import struct
import sys

# -- Landlock (include/uapi/linux/landlock.h) -------------------------------------------
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
FS_MAKE_SYM, FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
# The filesystem rights each ABI knows (all of them are handled: an unhandled right is
# an allowed one). ABI 4 adds TCP, 5 device ioctls, 6 scopes, 7 only audit flags.
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
FS_ALL_NEWEST = (1 << 16) - 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Everything but device nodes (and ioctls on devices): a tree the dev server owns.
READ_WRITE = FS_ALL_NEWEST & ~(FS_MAKE_CHAR | FS_MAKE_BLOCK | FS_IOCTL_DEV)
FILE_ACCESS = {"r": FS_READ_FILE, "rw": FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE}
MIN_ABI = 4  # TCP bind/connect rules: without them the dev server has the host's network

# -- seccomp (include/uapi/linux/{seccomp,filter,audit}.h, x86_64 syscall numbers) ------
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
EPERM, EACCES, ENOSYS = 1, 13, 38
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16  # struct seccomp_data; args[i] low word at 16 + 8i
AF_UNIX, AF_INET, SOCK_STREAM, IPPROTO_TCP = 1, 2, 1, 6
SOCK_TYPE_MASK = 0xF  # the rest of socket()'s type is SOCK_NONBLOCK | SOCK_CLOEXEC
CLONE_NEW_ANY = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
NR_SOCKET, NR_SOCKETPAIR, NR_CLONE, NR_CLONE3 = 41, 53, 56, 435
DENIED = {  # name: x86_64 number; each fails with EPERM
    "ptrace": 101,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "unshare": 272,
    "setns": 308,
    "bpf": 321,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kexec_load": 246,
    "init_module": 175,
    "finit_module": 313,
    "open_by_handle_at": 304,
    "fsopen": 430,
    "fsmount": 432,
    "open_tree": 428,
    "move_mount": 429,
    "shmget": 29,
    "shmat": 30,
    "msgget": 68,
    "semget": 64,
    "mq_open": 240,
}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def seccomp_filter() -> bytes:
    """The classic BPF program (struct sock_filter[]), for x86_64 only (pure)."""

    def ret(value: int) -> bytes:
        return _insn(RET_K, value)

    def errno(value: int) -> bytes:
        return ret(RET_ERRNO | value)

    prog = [
        _insn(LD_W_ABS, OFF_ARCH),
        _insn(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        ret(RET_KILL_PROCESS),
        _insn(LD_W_ABS, OFF_NR),
        _insn(JGE_K, X32_SYSCALL_BIT, 0, 1),  # x32 numbers would dodge every rule below
        ret(RET_KILL_PROCESS),
    ]
    # socket(family, type, protocol): only AF_INET, SOCK_STREAM, protocol 0 or TCP.
    prog += [
        _insn(JEQ_K, NR_SOCKET, 0, 10),
        _insn(LD_W_ABS, OFF_ARGS),
        _insn(JEQ_K, AF_INET, 0, 7),
        _insn(LD_W_ABS, OFF_ARGS + 8),
        _insn(0x54, SOCK_TYPE_MASK),  # ALU AND K
        _insn(JEQ_K, SOCK_STREAM, 0, 4),
        _insn(LD_W_ABS, OFF_ARGS + 16),
        _insn(JEQ_K, 0, 1, 0),
        _insn(JEQ_K, IPPROTO_TCP, 0, 1),
        ret(RET_ALLOW),
        errno(EACCES),
    ]
    # socketpair(family, ...): AF_UNIX only (Node's child stdio).
    prog += [
        _insn(JEQ_K, NR_SOCKETPAIR, 0, 4),
        _insn(LD_W_ABS, OFF_ARGS),
        _insn(JEQ_K, AF_UNIX, 0, 1),
        ret(RET_ALLOW),
        errno(EACCES),
    ]
    # clone(flags, ...): no new namespace; clone3's flags sit behind a pointer: ENOSYS.
    prog += [
        _insn(JEQ_K, NR_CLONE3, 0, 1),
        errno(ENOSYS),
        _insn(JEQ_K, NR_CLONE, 0, 4),
        _insn(LD_W_ABS, OFF_ARGS),
        _insn(JSET_K, CLONE_NEW_ANY, 0, 1),
        errno(EPERM),
        ret(RET_ALLOW),
    ]
    for nr in sorted(DENIED.values()):
        prog += [_insn(JEQ_K, nr, 0, 1), errno(EPERM)]
    prog.append(ret(RET_ALLOW))
    return b"".join(prog)


# -- the child: confine, then exec --------------------------------------------------------
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP = 38, 36, 24
PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 22, 2, 47, 4
NR_CAPSET, CAP_VERSION_3 = 126, 0x20080522
O_PATH, O_CLOEXEC = 0o10000000, 0o2000000
EXIT_CONFINE_FAILED = 126

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int


class ConfineError(OSError):
    pass


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise ConfineError(err, f"{what}: {os.strerror(err)}")
    return result


def _prctl(option: int, arg: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (or it is disabled)."""
    version = _libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    return max(0, int(version))


def landlock(policy: dict[str, object], abi: int) -> None:
    """Restrict this thread (and what it execs) to the policy's paths and port."""
    fs_all = FS_BY_ABI.get(abi, FS_ALL_NEWEST)
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("<QQQ", fs_all, NET_BIND_TCP | NET_CONNECT_TCP, scoped)
    size = 24 if abi >= 6 else 16  # struct landlock_ruleset_attr grew with `scoped`
    buf = ctypes.create_string_buffer(attr, 24)
    ruleset = _check(
        _libc.syscall(SYS_CREATE_RULESET, buf, ctypes.c_size_t(size), 0), "landlock ruleset"
    )
    try:
        for key, rights in (("ro", READ_ONLY), ("rw", READ_WRITE)):
            for path in policy.get(key, []):  # type: ignore[attr-defined]
                _path_rule(ruleset, str(path), rights & fs_all)
        for path, access in policy.get("files", {}).items():  # type: ignore[attr-defined]
            _path_rule(ruleset, str(path), FILE_ACCESS[str(access)] & fs_all)
        port = int(policy["port"])  # type: ignore[call-overload]
        if port:
            rule = ctypes.create_string_buffer(
                struct.pack("<QQ", NET_BIND_TCP | NET_CONNECT_TCP, port), 16
            )
            _check(_libc.syscall(SYS_ADD_RULE, ruleset, RULE_NET_PORT, rule, 0), f"port {port}")
        _check(_libc.syscall(SYS_RESTRICT_SELF, ruleset, 0), "landlock restrict_self")
    finally:
        os.close(ruleset)


def _path_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, O_PATH | O_CLOEXEC)
    except FileNotFoundError:
        return  # a system path this machine lacks: nothing to allow
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        attr = ctypes.create_string_buffer(struct.pack("<Qi", rights, fd), 12)
        _check(_libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, attr, 0), path)
    finally:
        os.close(fd)


def drop_capabilities() -> None:
    """No capability survives exec, for uid 0 too. With NO_NEW_PRIVS the caps a root
    exec gains are cut to those held before it, and none are held (capset); the bounding
    set is emptied as well where we may (CAP_SETPCAP)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() == EPERM:
            break  # no CAP_SETPCAP; EINVAL: past the last cap this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("<Ii", CAP_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)
    _check(_libc.syscall(NR_CAPSET, header, data), "capset")


def install_seccomp(program: bytes) -> None:
    count = len(program) // 8
    insns = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", count, ctypes.addressof(insns)))
    _prctl_ptr(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog)


def _prctl_ptr(option: int, arg: int, pointer: ctypes.Array[ctypes.c_char]) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), pointer, 0, 0), f"prctl({option})")


def confine(policy: dict[str, object], abi: int) -> None:
    """Everything the child does to itself before exec (after the parent's NO_NEW_PRIVS)."""
    if os.uname().machine != "x86_64":
        raise ConfineError(EPERM, f"seccomp filter is for x86_64 only, not {os.uname().machine}")
    drop_capabilities()
    landlock(policy, abi)
    install_seccomp(seccomp_filter())


# -- the parent: wait, then leave nothing behind ------------------------------------------
GRACE_SECONDS = 1.0


def descendants(root: int) -> list[int]:
    """Every live process below `root`, by parent pid (no /proc/*/children here)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sweep() -> None:
    """SIGKILL every descendant and reap them, until none is left."""
    me = os.getpid()
    for _ in range(1000):
        left = descendants(me)
        for pid in left:
            try:  # noqa: SIM105 - contextlib is one import too many here
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reaped = _reap_all()
        if not left and not reaped:
            return
        if left:
            _sleep(0.005)


def _reap_all() -> int:
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


def _sleep(seconds: float) -> None:
    _poll([], int(seconds * 1000))


POLLIN, POLLHUP, POLLERR = 0x1, 0x10, 0x8


def _poll(fds: list[tuple[int, int]], timeout_ms: int) -> list[int]:
    """poll(2): the revents of each (fd, events), by ctypes (no `select` import)."""
    raw = ctypes.create_string_buffer(b"".join(struct.pack("<ihh", fd, ev, 0) for fd, ev in fds))
    n = _libc.poll(raw, len(fds), timeout_ms)
    if n < 0 and ctypes.get_errno() != 4:  # EINTR: a signal; the caller looks again
        raise OSError(ctypes.get_errno(), "poll")
    return [struct.unpack_from("<ihh", raw, 8 * i)[2] for i in range(len(fds))]


def supervise(child: int) -> int:
    """Wait for `child`; stop it on SIGTERM/SIGINT or stdin's hang-up. Its exit status."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: stop.append(s))
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)
    watch_stdin = True
    deadline: float | None = None
    status: int | None = None
    clock = _monotonic
    while status is None:
        fds = [(wake_r, POLLIN)] + ([(0, 0)] if watch_stdin else [])
        timeout = -1 if deadline is None else max(0, int((deadline - clock()) * 1000))
        revents = _poll(fds, timeout)
        if revents[0]:
            while True:
                try:
                    if not os.read(wake_r, 256):
                        break
                except BlockingIOError:
                    break
        if watch_stdin and len(revents) > 1 and revents[1] & (POLLHUP | POLLERR):
            watch_stdin = False
            stop.append(0)
        while True:  # reap: the child, and orphans handed to us as subreaper
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, code = child, 0
            if pid == 0:
                break
            if pid == child:
                status = os.waitstatus_to_exitcode(code)
                status = 128 - status if status < 0 else status
                break
        if status is None and stop and deadline is None:
            _kill(child, signal.SIGTERM)
            deadline = clock() + GRACE_SECONDS
        elif status is None and deadline is not None and clock() >= deadline:
            _kill(child, signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sweep()
    return status


def _kill(pid: int, signum: int) -> None:
    try:  # noqa: SIM105 - contextlib is one import too many here
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _monotonic() -> float:
    return os.times().elapsed


def _which(name: str) -> str:
    if "/" in name:
        return name
    for directory in os.environ.get("PATH", os.defpath).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK):
            return candidate
    return name


POLICY_FLAGS = {"--ro": "ro", "--rw": "rw", "--read-file": "r", "--write-file": "rw"}


def parse_args(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """(policy, command) from `--ro P --rw P --read-file P --write-file P --port N -- CMD`
    (the shape `landlock_policy` returns); ValueError when malformed."""
    ro: list[str] = []
    rw: list[str] = []
    files: dict[str, str] = {}
    policy: dict[str, object] = {"ro": ro, "rw": rw, "files": files, "port": 0}
    i = 0
    while i < len(argv) and argv[i] != "--":
        flag, value = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        if value is None or (flag not in POLICY_FLAGS and flag != "--port"):
            raise ValueError(f"unexpected {flag!r}")
        if flag == "--port":
            policy["port"] = int(value)
        elif flag in ("--ro", "--rw"):
            (ro if flag == "--ro" else rw).append(value)
        else:
            files[value] = POLICY_FLAGS[flag]
        i += 2
    if i + 1 >= len(argv):
        raise ValueError("no command after --")
    return policy, argv[i + 1 :]


def main(argv: list[str]) -> int:
    try:
        policy, command = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write(
            f"confine: {exc}\nusage: confine.py [--ro|--rw|--read-file|"
            "--write-file PATH]... [--port N] -- COMMAND...\n"
        )
        return 2
    program = _which(command[0])
    abi = landlock_abi()
    if abi < MIN_ABI:
        sys.stderr.write(f"confine: Landlock ABI {abi} here, {MIN_ABI} needed (TCP rules)\n")
        return EXIT_CONFINE_FAILED
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; exec keeps that
            confine(policy, abi)
            os.execv(program, command)  # no PATH lookup here: it imports
        except BaseException as exc:  # nothing may run unconfined
            os.write(2, f"confine: {exc}\n".encode("utf-8", "replace"))
        os._exit(EXIT_CONFINE_FAILED)
    return supervise(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
