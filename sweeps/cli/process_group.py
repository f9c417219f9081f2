"""Run a command whose whole process group ends with the process that started it.

``mlflow ui`` is not one process: it starts uvicorn and a job runner, which starts seven
huey consumers. Started as a plain child, it outlived ``sweep ui``: ``timeout 20 sweep ui``
(SIGTERM) ended only ``sweep ui`` itself, and the UI kept answering on its port. Ending
the direct child is not enough either, since its own children stay behind.

So the command runs under a *guard*: this file, run as a script (so that it imports
nothing of ``sweeps``), in a session and process group of its own, which the command and
everything it starts inherit. The guard ends that whole group when

- it receives SIGTERM, SIGINT or SIGHUP (``sweep ui`` forwards its own as SIGTERM);
- the process that started it dies, even by SIGKILL: the kernel sends the guard SIGTERM
  then (``prctl(PR_SET_PDEATHSIG)``, Linux), and the guard also polls its parent's pid
  every half second, for other systems and for a parent that died before the prctl;
- the command exits (its leftover workers go too).

Ending the group is SIGTERM to every member, then SIGKILL after :data:`GRACE_SECONDS` to
any still there.

Example:
    >>> guard = start_guarded(["mlflow", "ui", "--port", "5001"], log_file)  # doctest: +SKIP
    >>> stop_guarded(guard)  # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import IO, Any

#: Seconds the group gets between SIGTERM and SIGKILL.
GRACE_SECONDS = 5.0
#: How often the guard checks that its parent and its command still live.
POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def start_guarded(
    command: list[str], output: IO[Any], environment: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` under a guard in a new session; the guard's pid is the group's id.

    ``environment`` adds variables to this process's own for the command (and the guard).
    """
    # -I: the guard imports the standard library only, never a module beside this file.
    guard = [sys.executable, "-I", os.path.abspath(__file__), str(os.getpid()), "--", *command]
    return subprocess.Popen(
        guard,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(environment or {})},
    )


def stop_guarded(guard: subprocess.Popen[bytes]) -> None:
    """Ask the guard to end its group and wait for it; SIGKILL the group if the guard hangs."""
    if guard.poll() is None:
        guard.send_signal(signal.SIGTERM)
        try:
            guard.wait(timeout=GRACE_SECONDS + 5)
        except subprocess.TimeoutExpired:
            pass
    # The group's id is the guard's pid (a session leader); a member left behind by a guard
    # that died (or hung) is killed here.
    for pid in group_members(guard.pid):
        _signal(pid, signal.SIGKILL)
    if guard.poll() is None:
        guard.wait()


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``, from /proc (Linux)."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# -- the guard -------------------------------------------------------------------------------


class _Ending(Exception):
    pass


def _raise_ending(signum: int, frame: object) -> None:
    raise _Ending(signum)


def _die_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the pid poll below still notices


def _end_group() -> None:
    """SIGTERM every other member of this process group, then SIGKILL those left."""
    for signum in _ENDING_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # the group's SIGTERM reaches this process too
    me, group = os.getpid(), os.getpgrp()
    others = [pid for pid in group_members(group) if pid != me]
    if not os.path.isdir("/proc"):  # no way to list them: signal the group as a whole
        os.killpg(group, signal.SIGTERM)
        time.sleep(GRACE_SECONDS)
        return
    for pid in others:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        _reap()
        if not [pid for pid in group_members(group) if pid != me]:
            return
        time.sleep(0.1)
    for pid in group_members(group):
        if pid != me:
            _signal(pid, signal.SIGKILL)
    _reap()


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main(argv: list[str]) -> int:
    """``process_group.py PARENT_PID -- COMMAND...``: run COMMAND until it, the parent or a signal ends."""
    parent, command = int(argv[0]), argv[argv.index("--") + 1 :]
    for signum in _ENDING_SIGNALS:
        signal.signal(signum, _raise_ending)
    _die_with_parent()
    code = 128 + signal.SIGTERM
    try:
        if os.getppid() != parent:  # the parent died before the prctl took effect
            return code
        child = subprocess.Popen(command)
        while True:
            try:
                code = child.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if os.getppid() != parent:
                    break
    except _Ending as ending:
        code = 128 + int(ending.args[0])
    finally:
        _end_group()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
