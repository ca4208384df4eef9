"""feature_unlearning.utils: the compute thread that keeps a server's torch work in one OpenMP pool."""

import contextvars
import threading

import pytest
import torch

from feature_unlearning.utils import ComputeThread


@pytest.fixture
def compute():
    threads = torch.get_num_threads()
    ct = ComputeThread(threads=2)
    yield ct
    ct.close()
    assert torch.get_num_threads() == threads  # the process gets its thread count back


def _threads_elsewhere() -> int:
    out = []
    t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))
    t.start()
    t.join()
    return out[0]


def test_work_runs_on_one_thread_with_the_cores_and_every_other_thread_is_serial(compute):
    ident, threads = compute.run(lambda: (threading.get_ident(), torch.get_num_threads()))
    assert ident != threading.get_ident() and threads == 2
    assert compute.run(threading.get_ident) == ident  # always the same thread
    assert compute.submit(threading.get_ident).result() == ident
    assert torch.get_num_threads() == 1 and _threads_elsewhere() == 1


def test_a_busy_compute_thread_never_makes_a_quick_call_wait(compute):
    release = threading.Event()
    long_job = compute.submit(lambda: release.wait(10))
    try:
        assert compute.run(threading.get_ident) == threading.get_ident()  # ran here, at once
    finally:
        release.set()
    assert long_job.result() is True
    assert compute.run(threading.get_ident) != threading.get_ident()  # free again: runs there


def test_a_call_from_the_compute_thread_itself_runs_inline(compute):
    assert compute.run(lambda: compute.run(threading.get_ident)) == compute.run(threading.get_ident)


def test_errors_and_context_variables_come_back(compute):
    var = contextvars.ContextVar("request", default=None)
    var.set("session-1")
    assert compute.run(var.get) == "session-1"

    def fail():
        raise ValueError("bad marks")

    with pytest.raises(ValueError, match="bad marks"):
        compute.run(fail)
    assert compute.run(lambda: 7) == 7  # still usable after a failure
