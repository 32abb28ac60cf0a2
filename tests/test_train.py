"""Training orchestration on a tiny generated data set: split by image, negatives from every class,
incremental retraining, the hybrid's explanations, and the main job's report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.data.datasets import generate_demo
from workbench.data.labelers import label_from_masks
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.data.store import LabelStore
from workbench.errors import WorkbenchError
from workbench.evaluation.evaluate import (
    balanced_accuracy,
    concept_metrics,
    hybrid_metrics,
)
from workbench.models.train import (
    TrainConfig,
    collect,
    leaf_targets,
    plan_training,
    split_images,
    train_hybrid,
)
from workbench.ontology.edits import edit_from_dict
from workbench.ontology.graph import Ontology

DAISY = Ontology.load(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")
FAST = TrainConfig(max_epochs=3, patience=2)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    folder = generate_demo(root / "data", n_per_class=8, seed=3)
    store = LabelStore(root / "labels.sqlite")
    seg = WeightFreeSegmenter()
    segment_dataset(store, folder, seg, cache_dir=root / "cache", progress=False)
    label_from_masks(store, folder, DAISY, settings_hash=settings_hash(seg))
    images, segments = collect(store, settings_hash(seg), 32, image_root=root / "data", cache_dir=root / "cache")
    images.split = split_images(images, 0.3, 0)
    yield root, store, images, segments
    store.close()


def test_split_is_by_image_and_validation_is_balanced(tables):
    _, _, images, segments = tables
    val = images.mask("val")
    classes = np.array(images.classes)
    assert (classes[val] == "daisy").sum() == (classes[val] == "not_daisy").sum() > 0
    # every segment sits on exactly one side, the side of its image
    seg_side = images.split[segments.image_index]
    for i in range(len(images)):
        assert set(seg_side[segments.image_index == i]) <= {images.split[i]}


def test_split_is_stable_when_images_are_added(tables):
    _, _, images, _ = tables
    first = split_images(images, 0.3, 0)
    again = split_images(images, 0.3, 0)
    assert (first == again).all()
    other_seed = split_images(images, 0.3, 1)
    assert (first != other_seed).any()


def test_leaf_negatives_come_from_every_class(tables):
    _, _, images, segments = tables
    rows, y = leaf_targets(segments, "petal")
    neg_classes = {images.classes[segments.image_index[r]] for r in rows[y == 0]}
    assert neg_classes == {"daisy", "not_daisy"}
    assert y.sum() > 0


def test_crops_are_cached_and_identical(tables):
    root, store, images, segments = tables
    again_images, again = collect(store, None, 32, image_root=root / "data", cache_dir=root / "cache")
    assert len(again) == len(segments)
    assert (again.crops == segments.crops).all()


def test_training_is_incremental_and_says_why(tables, tmp_path):
    _, store, images, segments = tables
    first = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path)
    assert set(first.retrained) == set(DAISY.concepts)
    assert all(p.reason.startswith("new concept") for p in first.plans.values())

    second = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path)
    assert second.retrained == []
    X = segments.crops[:20]
    assert np.allclose(first.models["petal"].predict_proba(X), second.models["petal"].predict_proba(X))

    # change the labels of one leaf: that leaf and its ancestors retrain, the other leaves do not
    labels = list(segments.labels)
    flipped = [r for r, lab in enumerate(labels) if lab == "disk"][:1]
    for r in flipped:
        labels[r] = "none"
    from workbench.models.train import SegmentTable

    changed = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes, labels, segments.crops)
    third = train_hybrid(DAISY, images, changed, FAST, models_dir=tmp_path)
    assert "disk" in third.retrained and "petal" not in third.retrained and "leaf" not in third.retrained
    assert "training data changed" in third.plans["disk"].reason
    assert "children changed" in third.plans["flower_head"].reason


def test_an_ontology_edit_retrains_only_what_it_touches(tables, tmp_path):
    _, _, images, segments = tables
    train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path)
    edited = edit_from_dict({"op": "remove_concept", "id": "stem"})
    smaller = edited.apply(DAISY)
    res = train_hybrid(smaller, images, segments, FAST, models_dir=tmp_path)
    assert set(res.retrained) == {"daisy"}


def test_hybrid_explains_which_segment_fired(tables):
    _, _, images, segments = tables
    res = train_hybrid(DAISY, images, segments, FAST)
    hyb = res.hybrid()
    i = int(np.flatnonzero(np.array(images.classes) == "daisy")[0])
    rows = segments.of_image(i)
    ex = hyb.explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
    assert set(ex.concepts) == set(DAISY.concepts)
    for leaf in DAISY.leaves():
        firing = ex.concepts[leaf]
        assert firing.segment is not None and 0 <= firing.segment < len(rows)
        assert firing.bbox == tuple(segments.bboxes[rows][firing.segment])
        # the score reported is the best segment's score
        best = res.models[leaf].predict_proba(segments.crops[rows]).max()
        assert firing.score == pytest.approx(best)
    d = ex.to_dict()
    assert d["root"] == "daisy" and 0.0 <= d["probability"] <= 1.0
    # the composed prediction equals what the training-side scorer computes
    m = hybrid_metrics(DAISY, res.models, images, segments)
    assert m["params"] == sum(mm.n_params for mm in res.models.values())
    cm = concept_metrics(DAISY, res.models, images, segments)
    assert cm["daisy"]["kind"] == "root" and cm["petal"]["kind"] == "part"


def test_balanced_accuracy_of_a_constant_answer_is_chance():
    y = np.array([1] * 9 + [0])
    assert balanced_accuracy(y, np.ones(10)) == 0.5
    assert balanced_accuracy(y, y.astype(float)) == 1.0


def test_training_refuses_a_leaf_without_positives(tables):
    _, _, images, segments = tables
    from workbench.errors import WorkbenchError
    from workbench.models.train import SegmentTable

    labels = ["none" if lab == "stem" else lab for lab in segments.labels]
    table = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes, labels, segments.crops)
    with pytest.raises(WorkbenchError, match="concept 'stem' has 0 positive"):
        train_hybrid(DAISY, images, table, FAST)


def test_leaves_train_the_same_in_worker_processes(tables):
    from workbench.parallel import executor

    _, _, images, segments = tables
    inline = train_hybrid(DAISY, images, segments, FAST)
    with executor(workers=2) as ex:
        pooled = train_hybrid(DAISY, images, segments, FAST, executor=ex)
    X = segments.crops[:50]
    for leaf in DAISY.leaves():
        assert np.allclose(inline.models[leaf].predict_proba(X), pooled.models[leaf].predict_proba(X)), leaf


def test_hybrid_predictions_equal_the_evaluation_scores(tables):
    """The classifier a user calls and the one the report measures are the same computation."""
    from workbench.models.train import image_level_scores

    _, _, images, segments = tables
    res = train_hybrid(DAISY, images, segments, FAST)
    per_image = [segments.crops[segments.of_image(i)] for i in range(len(images))]
    boxes = [segments.bboxes[segments.of_image(i)] for i in range(len(images))]
    direct = res.hybrid().predict_proba(per_image, boxes)
    scores, _, _ = image_level_scores(DAISY, res.models, segments, len(images))
    assert np.allclose(direct, scores["daisy"])
    for i in range(0, len(images), 5):
        rows = segments.of_image(i)
        ex = res.hybrid().explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
        assert ex.probability == pytest.approx(scores["daisy"][i])
    # relations (on by default) need the boxes; without them the error names the concept
    from workbench.errors import ModelError

    with pytest.raises(ModelError, match="concept 'flower_head'.*bboxes"):
        res.hybrid().predict_proba(per_image)


def test_relations_flag_retrains_only_the_composites_and_they_use_it(tables, tmp_path):
    _, _, images, segments = tables
    off_config = TrainConfig(max_epochs=3, patience=2, composition_relations=False)
    off = train_hybrid(DAISY, images, segments, off_config, models_dir=tmp_path)
    assert all(getattr(m, "relations", ()) == () for m in off.models.values())
    on_config = TrainConfig(max_epochs=3, patience=2, composition_relations=True)
    assert TrainConfig().composition_relations  # on by default
    on = train_hybrid(DAISY, images, segments, on_config, models_dir=tmp_path)
    assert set(on.retrained) == {"flower_head", "daisy"}  # the part nets do not depend on it
    assert "settings changed" in on.plans["flower_head"].reason
    assert on.models["flower_head"].relations == (("disk", "petal"),)
    assert train_hybrid(DAISY, images, segments, on_config, models_dir=tmp_path).retrained == []
    # the saved relation models score through the table's boxes, and explain with a pair of segments
    from workbench.models.train import image_level_scores

    scores, best, _ = image_level_scores(DAISY, on.models, segments, len(images))
    i = int(np.flatnonzero(np.array(images.classes) == "daisy")[0])
    rows = segments.of_image(i)
    ex = on.hybrid().explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
    assert ex.probability == pytest.approx(scores["daisy"][i])
    value, pair = ex.concepts["flower_head"].relations["near(disk,petal)"]
    assert value == pytest.approx(scores["flower_head:near(disk,petal)"][i])
    if pair is not None:
        assert pair[0] != pair[1] and {*pair} <= set(range(len(rows)))
    # back off: the composites retrain again, to models without relations
    back = train_hybrid(DAISY, images, segments, off_config, models_dir=tmp_path)
    assert set(back.retrained) == {"flower_head", "daisy"}
    assert back.models["flower_head"].relations == ()


def test_relations_off_leaves_the_fingerprints_as_they_were():
    off = TrainConfig(max_epochs=3, patience=2, composition_relations=False)
    assert off.composite_settings() == off.model_settings()
    assert FAST.composite_settings() == {**FAST.model_settings(), "relations": True}
    assert "relations" not in FAST.model_settings()  # part nets' fingerprints never carry it


# ------------------------------------------------------------------------ each setting has one name
#: The keys a part's fingerprint settings had before ``n_threads``/``relations`` took the settings'
#: names (``models/<concept>.json``, ``parts.settings``); a composite's add ``relations`` when on.
OLD_PART_SETTINGS = {"crop_size", "max_epochs", "patience", "interactions", "random_state",
                     "max_negatives_per_positive"}


def _as_written_before_the_rename(path):
    """Rewrite a model file's header as the workbench wrote it before the rename: ``n_threads`` in its
    constructor config instead of ``torch_threads`` (the weights untouched)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["workbench"])
    meta["config"]["n_threads"] = meta["config"].pop("torch_threads")
    header["__metadata__"]["workbench"] = json.dumps(meta, sort_keys=True)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])


def test_a_model_file_written_before_the_rename_loads(tables, tmp_path):
    from workbench.models.files import read_model_info
    from workbench.models.loading import load_model
    from workbench.models.nets import PartNet

    _, _, images, segments = tables
    rows, y = leaf_targets(segments, "petal")
    net = PartNet("petal", max_epochs=1, torch_threads=2).fit(segments.crops[rows], y)
    path = net.save(tmp_path / "petal.safetensors")
    _as_written_before_the_rename(path)
    assert "n_threads" in read_model_info(path)["config"]  # really the old header
    back = load_model(path)
    assert back.torch_threads == 2
    assert np.array_equal(back.predict_proba(segments.crops[rows]), net.predict_proba(segments.crops[rows]))


def test_a_workspace_trained_before_the_rename_retrains_nothing(tables, tmp_path):
    _, _, images, segments = tables
    first = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path)
    for f in tmp_path.glob("*.safetensors"):
        _as_written_before_the_rename(f)
    # the fingerprints hash the same keys as before, so the old sidecars still match
    for c in DAISY.concepts:
        settings = json.loads((tmp_path / f"{c}.json").read_text())["parts"]["settings"]
        assert set(settings) == OLD_PART_SETTINGS | (set() if c in DAISY.leaves() else {"relations"}), c
    plans = plan_training(DAISY, images, segments, FAST, tmp_path)
    assert {c: p.reason for c, p in plans.items()} == {c: "unchanged" for c in DAISY.concepts}
    again = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path)
    assert again.retrained == []
    scores = hybrid_metrics(DAISY, again.models, images, segments)
    before = hybrid_metrics(DAISY, first.models, images, segments)
    np.testing.assert_array_equal(scores.pop("_scores"), before.pop("_scores"))
    assert scores == {**before, "scoring_images_per_s": scores["scoring_images_per_s"]}


def test_the_training_config_takes_every_setting_it_shares_by_name():
    import dataclasses

    from workbench.models.job import SETTINGS_IN_CONFIG, training_config
    from workbench.workspace.settings import Settings

    shared = {f.name for f in dataclasses.fields(Settings)} & {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(SETTINGS_IN_CONFIG) == shared == {"crop_size", "random_state", "torch_threads", "composition_relations",
                                                 "val_fraction", "test_fraction"}
    s = Settings(crop_size=24, random_state=7, torch_threads=2, composition_relations=False, val_fraction=0.25,
                 test_fraction=0.15)
    config = training_config(s, max_epochs=4, patience=None)
    assert {k: getattr(config, k) for k in shared} == {k: getattr(s, k) for k in shared}
    assert (config.max_epochs, config.patience) == (4, TrainConfig().patience)
    with pytest.raises(WorkbenchError, match="n_threads"):
        training_config(s, n_threads=2)


def test_every_entry_point_trains_with_the_workspace_settings(labelled_ws, capsys):
    """torch_threads: 2 and composition_relations: false reach the models whichever way a workspace trains."""
    from workbench.cli import main
    from workbench.evaluation import pipeline
    from workbench.jupyter.widgets.dashboard import train_workspace
    from workbench.models.fitting import TorchConceptModel
    from workbench.models.nets import CompositeNet
    from workbench.models.store import ModelStore
    from workbench.review.gate import gate_edits

    ws = labelled_ws
    ws.save_settings(ws.settings.replace(torch_threads=2, composition_relations=False))
    store = ModelStore(ws.models_dir)

    def check(models, where):
        composites = {c: m for c, m in models.items() if isinstance(m, CompositeNet)}
        nets = {c: m for c, m in models.items() if isinstance(m, TorchConceptModel)}
        assert set(composites) == {"flower_head", "daisy"} and len(nets) == 3, where
        assert all(m.relations == () for m in composites.values()), where
        assert all(m.torch_threads == 2 for m in [*composites.values(), *nets.values()]), where

    def saved(where):
        check({c: store.load(c) for c in ws.ontology.concepts}, where)
        for side in store.sidecars():
            assert "relations" not in side.parts["settings"], (where, side.concept)

    assert main(["train", "--workspace", str(ws.path), "--force", "--max-epochs", "1"]) == 0, capsys.readouterr().err
    saved("workbench train")
    trained = pipeline.train(ws, force=True, max_epochs=1)
    assert (trained.config.torch_threads, trained.config.composition_relations, trained.config.max_epochs) == (2, False, 1)
    assert sorted(trained.retrained) == sorted(ws.ontology.concepts)
    check(trained.models, "workbench run's train stage")
    saved("workbench run's train stage")
    out = train_workspace(ws, force=True, max_epochs=1)
    check(out["result"].models, "the dashboard")
    saved("the dashboard")
    keep: dict = {}
    verdict = gate_edits(ws, [{"op": "rename", "old": "petal", "new": "ray"}], keep=keep)
    assert "ray" in verdict.retrained and "flower_head" in verdict.retrained
    check(keep["base"][1], "the gate's base")
    check(keep["candidate"][1], "the gate's candidate")


def test_the_gate_reads_the_saved_fingerprint_settings_back_into_a_config():
    saved = TrainConfig(max_epochs=7, patience=2, composition_relations=True).composite_settings()
    assert saved["relations"] is True  # the sidecars' name for composition_relations
    workspace = TrainConfig(torch_threads=2, composition_relations=False)
    config = workspace.with_fingerprint_settings({**saved, "not_a_setting": 1})
    assert (config.max_epochs, config.patience, config.composition_relations) == (7, 2, True)
    assert config.torch_threads == 2  # not in a fingerprint: the workspace's own
    assert workspace.with_fingerprint_settings(TrainConfig(max_epochs=7).model_settings()).composition_relations is False


# ----------------------------------------------------------------- composite targets with unknowns
def _old_presence(ontology, images, segments):
    """The composite targets as they were before unknowns: a part present where a segment is labelled
    with it, else 0 (a partly labelled image read as a negative); composites all of their parts."""
    present = {}
    for c in ontology.leaves():
        v = np.zeros(len(images), dtype=np.int64)
        for r, lab in enumerate(segments.labels):
            if lab == c:
                v[segments.image_index[r]] = 1
        present[c] = v
    for c in ontology.bottom_up():
        if c not in present:
            present[c] = (images.targets(ontology.root) if c == ontology.root else
                          np.all(np.stack([present[p] for p in ontology.composed_parts(c)]), axis=0).astype(np.int64))
    return present


def _with_labels(segments, labels):
    from workbench.models.train import SegmentTable

    return SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes, labels, segments.crops)


def test_a_fully_labelled_workspace_trains_exactly_as_before(tables, tmp_path, monkeypatch):
    """Every segment labelled (the masks): every target known, so the fingerprints, the training data and
    the fitted composites are those of the old definition, bit for bit."""
    import workbench.models.train as train
    from workbench.models.train import composite_targets_known

    _, _, images, segments = tables
    targets, known = composite_targets_known(DAISY, images, segments)
    assert all(k.all() for k in known.values())
    old = _old_presence(DAISY, images, segments)
    assert {c: v.tolist() for c, v in targets.items()} == {c: v.tolist() for c, v in old.items()}
    new = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path / "new")
    monkeypatch.setattr(train, "composite_targets_known", lambda o, i, s: (
        _old_presence(o, i, s), {c: np.ones(len(i), dtype=bool) for c in o.concepts}))
    before = train_hybrid(DAISY, images, segments, FAST, models_dir=tmp_path / "old")
    assert {c: p.fingerprint for c, p in new.plans.items()} == {c: p.fingerprint for c, p in before.plans.items()}
    assert new.examples == before.examples and new.notes == {}
    for c in DAISY.concepts:  # the saved weights are the same bytes (the header also holds fit timings)
        a, b = ((tmp_path / d / f"{c}.safetensors").read_bytes() for d in ("new", "old"))
        assert a[8 + int.from_bytes(a[:8], "little"):] == b[8 + int.from_bytes(b[:8], "little"):], c
    np.testing.assert_array_equal(hybrid_metrics(DAISY, new.models, images, segments)["_scores"],
                                  hybrid_metrics(DAISY, before.models, images, segments)["_scores"])


def test_a_partly_labelled_image_is_no_negative(tables):
    """An image whose petals are not labelled (but not every segment is) says nothing about its flower
    head: the old targets called it a negative; now it is unknown and left out of training and metrics."""
    from workbench.evaluation.studies import training_prior
    from workbench.models.train import composite_targets, composite_targets_known

    _, _, images, segments = tables
    labels = list(segments.labels)
    heads = _old_presence(DAISY, images, segments)["flower_head"]
    tr = images.mask("train")
    # two training images with a flower head: their petals unlabelled (the disk stays labelled)
    partly = [i for i in np.flatnonzero(tr & (heads == 1))][:2]
    for r, i in enumerate(segments.image_index):
        if i in partly and labels[r] == "petal":
            labels[r] = None
    # a not-daisy training image, decided, with one segment unlabelled: its flower head becomes unknown too
    other = next(i for i in np.flatnonzero(tr & (heads == 0)) if (segments.image_index == i).sum() > 1)
    labels[int(np.flatnonzero(segments.image_index == other)[0])] = None
    seg = _with_labels(segments, labels)
    targets, known = composite_targets_known(DAISY, images, seg)
    assert _old_presence(DAISY, images, seg)["flower_head"][partly].tolist() == [0, 0]  # the old reading: negatives
    for i in partly:
        assert not known["petal"][i] and known["disk"][i] and targets["disk"][i] == 1
        assert not known["flower_head"][i] and targets["flower_head"][i] == 0
    assert composite_targets(DAISY, images, seg)["flower_head"][partly].tolist() == [0, 0]  # 0 = unknown here
    # a decided image without petals: petal known absent, so its flower head too (one part absent suffices)
    decided = [i for i in np.flatnonzero(heads == 0) if i != other]
    assert all(known["petal"][i] and known["flower_head"][i] and targets["flower_head"][i] == 0 for i in decided)
    assert known["daisy"].all() and (targets["daisy"] == images.targets("daisy")).all()

    res = train_hybrid(DAISY, images, seg, FAST)
    unknown_train = int((tr & ~known["flower_head"]).sum())
    assert unknown_train == 3 and res.examples["flower_head"] == int(tr.sum()) - 3 and res.notes == {}
    assert res.examples["daisy"] == int(tr.sum())
    m = concept_metrics(DAISY, res.models, images, seg)
    assert m["flower_head"]["train_positives"] == int(targets["flower_head"][tr & known["flower_head"]].sum())
    kept = tr & known["flower_head"]
    assert training_prior(DAISY, "flower_head", images, seg) == pytest.approx(targets["flower_head"][kept].mean())
    # the fingerprint sees the unknowns: the same 0/1 targets with and without them differ
    assert plan_training(DAISY, images, seg, FAST, None)["flower_head"].fingerprint != \
        plan_training(DAISY, images, _with_labels(segments, [lab or "none" for lab in labels]), FAST, None)["flower_head"].fingerprint


def test_a_composite_with_only_positive_known_targets_takes_the_rest_from_its_parts(tables):
    """Grid labels leave every image partly labelled: a flower head is then known only where petals and a
    disk are labelled (positives). The unknown training images take their target from the part models
    (labelled parts where known), training succeeds and says so; validation still counts known images only."""
    _, _, images, segments = tables
    labels = list(segments.labels)
    for i in range(len(images)):  # one unlabelled "none" segment per image: no image is decided
        rows = [r for r in np.flatnonzero(segments.image_index == i) if labels[r] == "none"]
        if rows:
            labels[rows[0]] = None
    seg = _with_labels(segments, labels)
    from workbench.models.train import composite_targets_known

    targets, known = composite_targets_known(DAISY, images, seg)
    tr = images.mask("train")
    assert targets["flower_head"][tr & known["flower_head"]].min() == 1  # known: positives only
    res = train_hybrid(DAISY, images, seg, FAST)
    import re

    filled, present = map(int, re.match(r"(\d+) training images with an unknown target took it from the part "
                                        r"models \((\d+) present; only positive training targets were known\)",
                                        res.notes["flower_head"]).groups())
    assert filled == int((tr & ~known["flower_head"]).sum()) > 0
    assert 0 < present < filled  # the part models' evidence says absent on some (the not-daisy images)
    assert res.examples["flower_head"] == int(tr.sum())
    assert "from the part models" in res.summary()
    m = concept_metrics(DAISY, res.models, images, seg)
    assert m["flower_head"]["val_examples"] == int((images.mask("val") & known["flower_head"]).sum())
