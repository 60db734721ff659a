"""One policy for every command that writes a folder (``score``, ``train``, ``make-demo-data``, ``bench``).

    with OutputFolder(out, overwrite=False, data=[data_root], command="score") as folder:
        write_everything(folder.path)       # a staging folder beside OUT
        folder.commit()                     # OUT now holds this run's files, all of them

- **One run per folder, whole.** Every file is written into a staging folder beside ``OUT``
  (``.OUT.staging-PID``) and swapped in at the end: ``renameat2(RENAME_EXCHANGE)`` where the kernel
  has it (one atomic step), else two renames (the old folder moved aside, the new one moved in) with
  recovery at the next start. So ``OUT`` holds exactly one run's complete set of files, or the
  previous run untouched; the old run is removed once the new one is in place. A run that fails or
  is killed leaves ``OUT`` as it was (a killed run's staging folder is removed by the next run).
- **No silent overwrite.** An existing non-empty ``OUT`` is refused unless ``overwrite=True``
  (``--overwrite``); an ``OUT`` that is a file, lies under a file, cannot be created, lies inside the
  input data, or contains it, is refused before any work, with a ``FprtError`` naming it.
- ``in_place=True`` (``fprt train`` into a new or resumed run folder): the same checks and lock, but the
  files go straight into ``OUT`` so that a killed training stays resumable; ``train --overwrite``
  of an existing run uses the staging folder and the swap.
- **One writer.** A lock file beside ``OUT`` (``.OUT.lock``, an ``flock`` the kernel drops when the
  process dies, holding the writer's PID) refuses a second concurrent run and names the first one's
  PID; a lock left by a dead process is simply taken over.

``FPRT_TEST_OUTPUT_HOOK`` (tests only): ``kill:N`` SIGKILLs the process at the N-th checkpoint of the
output phase (each file written, the swap); ``hold:N:MARKER`` creates ``MARKER`` at the N-th checkpoint
and waits (up to 60 s) until it is deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Iterable

from fprt.errors import FprtError

HOOK_ENV = "FPRT_TEST_OUTPUT_HOOK"


class OutputFolderError(FprtError):
    """``OUT`` cannot be used: not empty, busy, a file, inside the data, not writable."""


def check_out_path(out: Path, *, overwrite: bool, data: Iterable[Path] = (), option: str = "--out",
                   hint: str = "") -> Path:
    """The checks made before any work; returns ``out`` made absolute (parents not resolved through links)."""
    out = Path(os.path.abspath(out))
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file, not a folder" if parent == out else f"lies under {parent}, which is a file, not a folder"
                raise OutputFolderError(f"{option} {out} {where}")
            break
    real = Path(os.path.realpath(out))
    for root in data:
        if root is None:
            continue
        r = Path(os.path.realpath(root))
        if real == r or r in real.parents:
            raise OutputFolderError(f"{option} {out} lies inside the data {root}; write the outputs outside the dataset "
                                    "(they would be read as images next run)")
        if real in r.parents:
            raise OutputFolderError(f"{option} {out} contains the data {root}; pick a folder beside it")
    if out.is_dir() and not overwrite and _non_empty(out):
        raise OutputFolderError(f"{option} {out} already exists and is not empty; "
                                + (hint or "pass --overwrite to replace it, or choose another folder"))
    return out


def _non_empty(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(True for _ in it)


class OutputFolder:
    """The transaction of one command's output folder (see the module docstring)."""

    def __init__(self, out: str | os.PathLike, *, overwrite: bool = False, data: Iterable[Path] = (),
                 command: str = "fprt", option: str = "--out", in_place: bool = False, hint: str = "") -> None:
        self.in_place = in_place  # write into OUT itself (fprt train: a killed run stays resumable)
        self.out = check_out_path(Path(out), overwrite=overwrite, data=list(data), option=option, hint=hint)
        self.overwrite = overwrite
        self.command = command
        self.option = option
        self.hint = hint
        self.lock_path = self.out.parent / f".{self.out.name}.lock"
        self.path = self.out if in_place else self.out.parent / f".{self.out.name}.staging-{os.getpid()}"
        self.committed = False
        self._lock_fd: int | None = None
        self._checkpoints = 0

    # ---------------------------------------------------------------------------------- enter / exit
    def __enter__(self) -> "OutputFolder":
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"{self.option} {self.out}: cannot create its parent folder ({exc.strerror or exc})") from None
        self._lock()
        try:
            self._recover()
            # again, under the lock: another run may have filled OUT since the first look
            check_out_path(self.out, overwrite=self.overwrite, option=self.option, hint=self.hint)
            self.path.mkdir(exist_ok=self.in_place)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            self._cleanup()
            self._unlock()
            raise OutputFolderError(f"{self.option} {self.out}: cannot write there ({exc.strerror or exc})") from None
        except BaseException:
            self._cleanup()
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self.committed:
                self._cleanup()
        finally:
            self._unlock()

    # ---------------------------------------------------------------------------------- the swap
    def commit(self) -> Path:
        """Swap the staging folder in as ``OUT`` (the previous run, if any, is removed afterwards)."""
        self.checkpoint("swap")
        _fsync_dir(self.path)
        if self.in_place:
            pass
        elif not self.out.exists():
            os.rename(self.path, self.out)
        elif _exchange(self.path, self.out):
            self.checkpoint("swapped")
            shutil.rmtree(self.path, ignore_errors=True)  # the previous run, now at the staging path
        else:
            aside = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.rename(self.out, aside)
            self.checkpoint("aside")
            os.rename(self.path, self.out)
            shutil.rmtree(aside, ignore_errors=True)
        _fsync_dir(self.out.parent)
        self.committed = True
        return self.out

    def checkpoint(self, label: str = "") -> None:
        """A point of the output phase where a test may kill or hold this process (``FPRT_TEST_OUTPUT_HOOK``)."""
        self._checkpoints += 1
        hook = os.environ.get(HOOK_ENV)
        if not hook:
            return
        parts = hook.split(":", 2)
        if len(parts) < 2 or parts[1] not in (str(self._checkpoints), label):
            return
        if parts[0] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif parts[0] == "hold" and len(parts) == 3:
            marker = Path(parts[2])
            marker.write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)

    # ---------------------------------------------------------------------------------- lock
    def _lock(self) -> None:
        import fcntl

        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputFolderError(f"{self.option} {self.out}: cannot create the lock {self.lock_path} "
                                        f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise OutputFolderError(
                    f"{self.option} {self.out} is being written by another fprt run (PID {holder or 'unknown'}; lock "
                    f"{self.lock_path}); wait for it to finish or choose another folder") from None
            # the path may have been unlinked (and re-created) by the previous holder meanwhile: retry then
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.command}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)
        os.close(self._lock_fd)
        self._lock_fd = None

    # ---------------------------------------------------------------------------------- leftovers
    def _recover(self) -> None:
        """Under the lock: put back a previous run a killed swap left aside, drop killed runs' staging folders."""
        prefix = f".{self.out.name}."
        leftovers = [p for p in self.out.parent.iterdir() if p.name.startswith(prefix)
                     and (".staging-" in p.name or ".old-" in p.name)]
        for p in leftovers:
            if ".old-" in p.name and not self.out.exists():
                os.rename(p, self.out)
            else:
                shutil.rmtree(p, ignore_errors=True)

    def _cleanup(self) -> None:
        if not self.in_place:
            shutil.rmtree(self.path, ignore_errors=True)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
