"""Executors: where segmentation (and training) runs. Local processes by default, or a Dask cluster.

Everything that maps over images takes a plain ``concurrent.futures.Executor``; this module picks one:

- ``executor(workers=1)``: ``None`` -- run inline, no pool, no pickling (the fastest for a few images);
- ``executor(workers=N)``: a local process pool of N workers, each limited to ``threads`` threads
  (numpy/BLAS/OpenMP/torch), so N workers do not fight over the cores;
- ``executor(scheduler="tcp://host:8786")``: a Dask ``distributed`` client's executor on that cluster
  (workers' threads limited too); the client is closed on exit;
- ``executor(executor=client.get_executor())``: any executor you already have; left open on exit.

>>> with executor(workers=1) as ex:
...     print(ex)
None
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor

from workbench.errors import SettingsError, WorkbenchError

__all__ = ["executor", "set_threads", "DEFAULT_THREADS"]

#: Threads each worker may use for numpy/BLAS/torch (1: parallelism comes from the workers).
DEFAULT_THREADS = 1

#: How long to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT = "10s"

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def set_threads(threads: int = DEFAULT_THREADS) -> int:
    """Limit this process's numpy/BLAS/OpenMP/torch threads (runs as every worker's initializer).

    Environment variables take effect for libraries loaded afterwards; torch, when imported, is told
    directly. Returns ``threads``.
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    import sys

    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def executor(
    workers: int = 1,
    scheduler: str | None = None,
    executor: Executor | None = None,
    threads: int = DEFAULT_THREADS,
) -> Iterator[Executor | None]:
    """Context manager giving the executor to use (see module doc); ``None`` means run inline."""
    if executor is not None:
        yield executor
        return
    if scheduler is not None:
        with _dask_executor(scheduler, threads) as ex:
            yield ex
        return
    if not isinstance(workers, int) or workers < 1:
        raise SettingsError(f"workers must be a whole number >= 1, got {workers!r}")
    if workers == 1:
        yield None
        return
    # spawn, not fork: forking a process that holds threads (torch, tqdm's monitor) can deadlock.
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=set_threads, initargs=(threads,)
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask_executor(address: str, threads: int) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:
        raise SettingsError(
            f"a scheduler address ({address}) needs Dask: pip install 'constructability-workbench[dask]'"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise WorkbenchError(
            f"could not reach the Dask scheduler at {address} ({e}): start one with `dask scheduler` "
            "and workers with `dask worker <address>`, or drop --scheduler to run locally"
        ) from None
    try:
        # limit threads only in worker processes: a LocalCluster(processes=False) runs its workers in
        # this very process, whose thread settings are not ours to change
        pids = client.run(os.getpid)
        remote = [addr for addr, pid in pids.items() if pid != os.getpid()]
        if remote:
            client.run(set_threads, threads, workers=remote)
        yield client.get_executor()
    finally:
        client.close()
