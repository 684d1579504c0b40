"""Files on disk: atomic writes that survive signals and a full disk, and safetensors weight loading.

* :func:`atomic_directory` and :func:`atomic_write` stage a directory or file under a hidden
  sibling name (``.<name>.<random>.partial``) and move it onto its final path only when the
  write succeeded, so the path holds the complete new content or the previous one, never a
  half-written one. On any exception (``KeyboardInterrupt`` and ``SystemExit`` included) the
  staging copy is removed. The final rename holds SIGINT and SIGTERM and delivers them right
  after, so a signal never leaves the path missing.
* Wrap long-running work in :func:`signals_as_exceptions` so that SIGTERM (e.g. from a batch
  scheduler or ``kill``) raises :class:`SystemExit` instead of killing the process outright:
  then the cleanups above run, and the previous checkpoint stays intact.
* Everything written gets the modes of a new directory or file under the user's umask (umask
  022: directories 0755, files 0644), also when the writing library chose a stricter mode
  (safetensors creates 0600 files), so others on a shared machine can read a pretrained model
  when the umask allows it.
* A write that fails because the disk is full raises :class:`~neuralops.errors.StorageError`, one
  line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model

from neuralops.errors import NeuralopsError, PretrainedFormatError, StorageError

#: Free bytes below which a failed write is taken for a full disk when the library that failed
#: hides the errno (torch's "iostream error", safetensors' I/O error): when a write runs out of
#: space the file system is left with (almost) nothing free.
DISK_FULL_BYTES = 1 << 20

#: Signals held during a final rename and turned into exceptions by :func:`signals_as_exceptions`.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Exit status of a process ended by SIGTERM under :func:`signals_as_exceptions` (128 + signal
#: number, as a shell reports a process killed by that signal).
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


def _raise_for_signal(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Any]:
    """Set ``handler`` for :data:`HANDLED_SIGNALS` in the main thread; return the previous handlers.

    Signals whose handler was not set from Python (``getsignal`` is ``None``) are left alone, as
    they could not be restored.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}  # Python runs signal handlers in the main thread only
    return {s: signal.signal(s, handler) for s in HANDLED_SIGNALS if signal.getsignal(s) is not None}


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` and SIGINT ``KeyboardInterrupt``.

    So a terminated run unwinds like an exception: every ``finally`` and ``except BaseException``
    runs, atomic writes remove their staging copies, and an uncaught ``SystemExit`` ends the
    process with status :data:`SIGTERM_EXIT_STATUS` (143). The previous handlers are restored on
    exit. In a thread other than the main one this does nothing (Python delivers signals to the
    main thread only). Usage::

        with signals_as_exceptions():
            train(...)
    """
    previous = _install(_raise_for_signal)
    try:
        yield
    finally:
        _restore(previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM during the block, then deliver them to the handlers in place before."""
    held: list[int] = []
    previous = _install(lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        _restore(previous)
        for signum in held:
            signal.raise_signal(signum)


def _storage_error(err: BaseException, target: Path) -> StorageError | None:
    """A :class:`StorageError` for ``target`` if ``err`` means the disk is full, else ``None``."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = os.strerror(err.errno)
    elif isinstance(err, Exception) and not isinstance(err, NeuralopsError):
        try:
            free = shutil.disk_usage(target.parent).free
        except OSError:
            return None
        if free >= DISK_FULL_BYTES:
            return None
        reason = f"{type(err).__name__} with {free} bytes left on the device"
    else:
        return None
    return StorageError(
        f"disk full while writing {str(target)!r} ({reason}); nothing was written there and any "
        "previous version is unchanged: free some space and retry"
    )


@contextmanager
def _removed_on_failure(target: Path, staging: Path) -> Iterator[None]:
    """On any exception in the block remove ``staging`` (file or directory) and re-raise it,
    as a :class:`StorageError` when the disk is full."""
    try:
        yield
    except BaseException as err:
        error = _storage_error(err, target)  # before the removal frees space
        with _signals_held():
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
        if error is not None:
            raise error from None
        raise


def _apply_umask_modes(root: Path) -> None:
    """Give everything below the staging directory ``root`` the mode a new directory (``root``'s
    own, made by ``mkdir`` under the umask) or a new file (the same without execute bits) gets."""
    dir_mode = stat.S_IMODE(root.stat().st_mode)
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, dir_mode if path.is_dir() else dir_mode & 0o666)


def _staging_path(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.{tag}"


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging directory beside ``path``; when the block succeeds it replaces ``path``.

    On any exception the staging directory is removed and an existing ``path`` is untouched.
    Directories are created with the user's umask.

    Raises:
        StorageError: the disk filled up while writing.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_path(target, "partial")
    with _removed_on_failure(target, staging):
        staging.mkdir()
        yield staging
        _apply_umask_modes(staging)
        with _signals_held():
            if target.exists():
                backup = _staging_path(target, "old")
                os.replace(target, backup)
                try:
                    os.replace(staging, target)
                except BaseException:
                    os.replace(backup, target)
                    raise
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(staging, target)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the file it wrote onto ``path`` only if it succeeds.

    ``tmp_path`` is a hidden sibling of ``path``, an empty file ``write`` may overwrite or replace;
    the result gets the mode of a new file under the user's umask.

    Raises:
        StorageError: the disk filled up while writing.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _staging_path(target, "partial")
    with _removed_on_failure(target, tmp):
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        file_mode = stat.S_IMODE(tmp.stat().st_mode)  # 0o666 less the umask
        write(tmp)
        os.chmod(tmp, file_mode)
        with _signals_held():
            os.replace(tmp, target)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def load_safetensors_weights(module: torch.nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu") -> None:
    """Load the safetensors file ``path`` into ``module`` (strict: the same keys and shapes).

    Nothing is unpickled. Tensors are placed on ``device`` and copied into the module's own
    parameters and buffers (whose dtype they take).

    Raises:
        PretrainedFormatError: one line naming ``path``: the file is missing, is not a readable
            safetensors file (truncated or corrupt), or its keys or shapes differ from ``module``'s.
    """
    name = str(path)
    if not Path(path).is_file():
        raise PretrainedFormatError(f"{name!r} is missing")
    try:
        missing, unexpected = load_model(module, name, strict=False, device=str(device))
    except (SafetensorError, OSError) as err:
        raise PretrainedFormatError(f"{name!r} is not a readable safetensors file (truncated or corrupt?): {err}") from None
    except RuntimeError as err:  # load_state_dict: shape mismatch, over several lines
        raise PretrainedFormatError(f"{name!r} does not match the model: {' '.join(str(err).split())}") from None
    problems = [
        f"{label} keys {', '.join(sorted(keys)[:5])}{', …' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    ]
    if problems:
        raise PretrainedFormatError(f"{name!r} does not match the model: {'; '.join(problems)}")
