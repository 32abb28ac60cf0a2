"""The train / validation / test split (workbench.models.train.split_images) and its storage in the label
store: class-balanced held-out sides, and no image ever changes side when images are added."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data.store import LabelStore
from workbench.errors import StoreError, WorkbenchError
from workbench.models.train import ImageTable, split_images


def _table(n_a: int, n_b: int, start: int = 0) -> ImageTable:
    classes = ["a"] * n_a + ["b"] * n_b
    ids = np.arange(start, start + len(classes))
    return ImageTable(ids, [f"{c}/{i}.png" for c, i in zip(classes, ids)], classes, [f"{i:064x}" for i in ids])


def test_held_out_sides_are_class_balanced_and_sized_by_the_smaller_class():
    t = _table(30, 20)
    s = split_images(t, 0.2, 0, test_fraction=0.2)
    for side, n in (("val", 4), ("test", 4)):  # 20% of the smaller class (20), from each class
        assert [int(np.sum((s == side) & (np.array(t.classes) == c))) for c in "ab"] == [n, n]
    assert int(np.sum(s == "train")) == 50 - 16
    assert split_images(t, 0.2, 0, test_fraction=0.2).tolist() == s.tolist()  # seeded, repeatable
    assert split_images(t, 0.2, 1, test_fraction=0.2).tolist() != s.tolist()
    assert not np.any(split_images(t, 0.2, 0) == "test")  # no test fraction: no test side


def test_assigned_images_keep_their_side_when_images_are_added():
    first = _table(10, 10)
    s1 = split_images(first, 0.2, 0, test_fraction=0.2)
    assigned = {int(i): str(v) for i, v in zip(first.image_ids, s1)}
    grown = _table(30, 30)  # the same 20 images (ids 0..19 … as classes a then b) plus 40 new ones
    grown = ImageTable(np.concatenate([first.image_ids, np.arange(100, 140)]),
                       first.paths + [f"new/{i}" for i in range(40)], first.classes + ["a"] * 20 + ["b"] * 20,
                       first.shas + [f"{i + 100:064x}" for i in range(40)])
    s2 = split_images(grown, 0.2, 0, test_fraction=0.2, assigned=assigned)
    assert s2[:20].tolist() == s1.tolist()  # no image moved
    for side in ("val", "test"):  # the new images filled each class's quota: 20% of 30 = 6 per class
        assert [int(np.sum((s2 == side) & (np.array(grown.classes) == c))) for c in "ab"] == [6, 6]
    # a test image stays a test image even when the quota shrinks (fractions lowered later)
    s3 = split_images(grown, 0.1, 0, test_fraction=0.05, assigned={**assigned, **dict(zip(map(int, grown.image_ids), s2))})
    assert s3.tolist() == s2.tolist()


def test_bad_fractions_are_errors():
    with pytest.raises(WorkbenchError, match="test_fraction"):
        split_images(_table(4, 4), 0.2, 0, test_fraction=1.0)
    with pytest.raises(WorkbenchError, match="val_fraction"):
        split_images(_table(4, 4), 0.0, 0)


def test_the_store_records_a_side_once_and_never_moves_it(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        a = store.add_image("a.png", "a" * 64, 4, 4, "x")
        b = store.add_image("b.png", "b" * 64, 4, 4, "y")
        assert store.image_splits() == {}
        assert store.assign_splits({a: "test", b: "train"}, seed=3) == 2
        assert store.assign_splits({a: "train"}, seed=4) == 0  # already assigned: kept
        assert store.image_splits() == {a: "test", b: "train"}
        with pytest.raises(StoreError, match="split sides"):
            store.assign_splits({b: "holdout"}, seed=0)
        with pytest.raises(StoreError, match="not in the store"):
            store.assign_splits({999: "val"}, seed=0)
    with LabelStore(tmp_path / "labels.sqlite") as again:  # committed: survives reopening
        assert again.image_splits() == {a: "test", b: "train"}
