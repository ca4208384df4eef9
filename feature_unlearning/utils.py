"""Small helpers shared by the library: seeding, progress bars, whole-or-nothing file writes, a compute thread."""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's and torch's global generators and return a fresh CPU ``torch.Generator``."""
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> str:
    """``"cuda"`` when a GPU is there, else ``"cpu"``: what the front ends (CLI, app) run on by default.
    The library itself never picks a device: it runs where the caller's model is."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cpuinfo(key: str) -> str | None:
    """The value of the first ``key : value`` line of /proc/cpuinfo (Linux); None when there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key) and ":" in line), None)


def bfloat16_is_fast(device: torch.device | str) -> bool:
    """Whether bfloat16 maths runs natively on ``device``: a CUDA GPU that supports it, or an x86 CPU with
    AVX512-BF16 or AMX (read from /proc/cpuinfo, so Linux only). Elsewhere it is emulated, and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere and up
    if device.type != "cpu":
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set((_cpuinfo("flags") or "").split()))


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, disable: bool | None = None) -> Iterable[T]:
    """A tqdm progress bar, off when ``FEATURE_UNLEARNING_PROGRESS=0`` or ``disable=True``."""
    if disable is None:
        disable = os.environ.get("FEATURE_UNLEARNING_PROGRESS", "1") == "0"
    if disable:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename.

    If the block raises, ``target`` is left exactly as it was and the temporary folder is removed. An
    existing non-empty ``target`` raises ``FileExistsError`` unless ``overwrite=True``.
    """
    target = Path(target).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; choose a new folder or pass overwrite=True")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should look like a normal folder
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def machine_info() -> str:
    """One line naming this machine: CPU model and cores (or the GPU), torch version and threads."""
    import platform

    cpu = _cpuinfo("model name") or platform.processor() or platform.machine()
    parts = [f"{cpu}, {os.cpu_count()} cores"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return "; ".join(parts)


class ComputeThread:
    """One long-lived thread for a server's torch work on the CPU; every other thread of the process runs torch
    single-threaded from the moment it is made.

    Why: PyTorch's Linux wheels parallelise with GNU OpenMP, which keeps a pool of worker threads for every thread
    that has run a parallel operation, for that thread's life. Once the pools together hold more threads than the
    machine has cores, an idle worker sleeps at once instead of spinning, and every parallel operation pays to
    wake it. A web server runs its handlers in many threads, so there were always several pools: on 2 cores an
    elementwise operation took ~55 us in a handler thread against ~7 us in the main thread, and a default
    unlearning run was 20-45% slower in a thread than in the main thread (benchmarks/README.md, "One OpenMP pool").
    With the work on this thread, one pool of ``threads`` exists and its workers spin between operations.

    Make it before the process runs any parallel torch operation (a thread that already did keeps its pool);
    the app makes one at start-up. :meth:`run` runs a function here and waits for it, or in the caller (single-
    threaded) when this thread is busy, so a quick handler never waits for a training run; :meth:`submit` queues
    a long job (an unlearning run, :func:`~feature_unlearning.session.unlearn_stream`).
    """

    def __init__(self, threads: int | None = None):
        self.threads = threads or torch.get_num_threads()
        self._lock = threading.Lock()
        self._pending = 0  # jobs queued or running here
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-compute")
        # the thread reads the global thread count once, at its first parallel operation: set it, start the
        # thread and make it read it, and only then make the rest of the process single-threaded
        self._previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        self._ident = self._executor.submit(self._start).result()
        torch.set_num_threads(1)

    def _start(self) -> int:
        torch.set_num_threads(self.threads)
        torch.get_num_threads()  # PyTorch sets a thread's OpenMP thread count lazily, here
        return threading.get_ident()

    @property
    def here(self) -> bool:
        """Whether the calling thread is this compute thread."""
        return threading.get_ident() == self._ident

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on this thread (the caller waits), or in the caller when this thread has work
        (it never waits behind a long job). Context variables (e.g. a web framework's request context) go with it;
        exceptions come back raised."""
        with self._lock:
            idle = self._pending == 0 and not self.here
            if idle:
                self._pending += 1
        if not idle:
            return fn(*args, **kwargs)
        return self._queue(functools.partial(fn, *args, **kwargs)).result()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Queue ``fn()`` on this thread (after the work there now) and return its future."""
        with self._lock:
            self._pending += 1
        return self._queue(fn)

    def _queue(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        def job():
            try:
                return fn()
            finally:
                with self._lock:
                    self._pending -= 1

        return self._executor.submit(contextvars.copy_context().run, job)

    def close(self) -> None:
        """Wait for the queued work, end the thread and give the process its thread count back."""
        self._executor.shutdown(wait=True)
        torch.set_num_threads(self._previous)
