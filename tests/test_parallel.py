"""Executors: inline, local processes and a real Dask LocalCluster give identical segments."""
from __future__ import annotations

import os

import numpy as np
import pytest

from workbench.data.segment import WeightFreeSegmenter, segment_images
from workbench.errors import SettingsError, WorkbenchError
from workbench.parallel import executor


@pytest.fixture(scope="module")
def images():
    from skimage import data

    rng = np.random.default_rng(0)
    photo = data.coffee()[::3, ::3]
    return [("coffee", photo), ("noise", rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)), ("bad", np.zeros((4, 4, 9)))] + [
        (f"crop{i}", np.ascontiguousarray(photo[i * 10 : i * 10 + 90, i * 15 : i * 15 + 120])) for i in range(4)
    ]


@pytest.fixture(scope="module")
def inline(images):
    with executor(workers=1) as ex:
        assert ex is None
        return segment_images(images, WeightFreeSegmenter(), executor=ex, progress=False)


def _same(a, b):
    assert [r.key for r in a.results] == [r.key for r in b.results]
    assert a.problems and [k for k, _ in a.problems] == [k for k, _ in b.problems] == ["bad"]
    for x, y in zip(a.results, b.results):
        assert x.image_sha256 == y.image_sha256 and len(x.segments) == len(y.segments)
        for s, t in zip(x.segments, y.segments):
            assert s.bbox == t.bbox and s.area == t.area and np.array_equal(s.mask, t.mask)


def test_workers_must_be_positive():
    with pytest.raises(SettingsError, match="workers"):
        with executor(workers=0):
            pass


def test_process_pool_matches_inline_and_limits_threads(images, inline):
    with executor(workers=2, threads=2) as ex:
        assert ex.submit(os.getenv, "OMP_NUM_THREADS").result() == "2"
        run = segment_images(images, WeightFreeSegmenter(), executor=ex, progress=False)
    _same(inline, run)


def test_dask_local_cluster_by_address_and_by_executor(images, inline):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as cluster:  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        before = os.environ.get("OMP_NUM_THREADS")
        with executor(scheduler=cluster.scheduler_address) as ex:
            by_address = segment_images(images, WeightFreeSegmenter(), executor=ex, progress=False)
        assert os.environ.get("OMP_NUM_THREADS") == before  # in-process workers: our threads untouched
        with distributed.Client(cluster, set_as_default=False) as client:
            with executor(executor=client.get_executor()) as ex:
                by_executor = segment_images(images, WeightFreeSegmenter(), executor=ex, progress=False)
    _same(inline, by_address)
    _same(inline, by_executor)


def test_unreachable_scheduler_says_what_to_do(monkeypatch):
    import workbench.parallel

    monkeypatch.setattr(workbench.parallel, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(WorkbenchError, match="dask scheduler"):
        with executor(scheduler="tcp://127.0.0.1:9"):
            pass
