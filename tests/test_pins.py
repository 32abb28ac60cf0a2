"""Pins, per-concept tests (issue #18, part 1): the YAML files under git (:mod:`workbench.workspace.pins`),
running them against models (:mod:`workbench.models.pins`), ``workbench test`` and ``workbench pin``, and
that pinned segments never reach training or evaluation (:func:`workbench.models.job.collect_workspace`).

Every test works on its own copy of the session's tiny daisy workspaces (tests/conftest.py); nothing
here trains a net (the trained workspace's saved models are used as they are).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.datasets import ImageFolder
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.data.segments import Segment
from workbench.errors import WorkbenchError
from workbench.evaluation.evaluate import concept_metrics
from workbench.models.job import collect_workspace, training_config
from workbench.models.inference import explain_image
from workbench.models.pins import compare_pins, run_pins, saved_models
from workbench.models.train import leaf_split, train_hybrid
from workbench.ontology.edits import apply_edits, edit_from_dict
from workbench.workspace.folder import Workspace
from workbench.workspace.pins import (
    PinError,
    add_pin,
    follow_edits,
    match_segments,
    pinned_segment_ids,
    pins,
    pins_path,
    read_pins_file,
    remove_pin,
)

SHASH = settings_hash(WeightFreeSegmenter())


def _git_log(ws: Workspace) -> list[str]:
    out = subprocess.run(["git", "log", "--format=%B%x00"], cwd=ws.path, capture_output=True, text=True, check=True)
    return [m.strip() for m in out.stdout.split("\x00") if m.strip()]


def _labelled(ws: Workspace, concept: str) -> list[int]:
    return [r.segment_id for r in ws.store.labels(concept=concept)]


def _table(ws: Workspace):
    return collect_workspace(ws, training_config(ws.settings), SHASH)


# -------------------------------------------------------------------------------------------- the files
def test_a_pin_is_reviewable_yaml_committed_with_a_message_naming_segment_and_concept(segmented_ws):
    ws = segmented_ws
    s1, s2 = (r.id for r in ws.store.segments()[:2])
    pin = add_pin(ws, s1, "petal", by="alice", note="the long white one")
    text = pins_path(ws, "petal").read_text()
    # stable key order, the box on one line, the image for people, the note kept
    body = [line.strip().split(":")[0] for line in text.splitlines() if line.startswith("  ") or line.startswith("- ")]
    assert body[:8] == ["- image", "sha256", "box", "mask", "expect", "by", "date", "note"]
    assert f"box: [{', '.join(map(str, pin.box))}]" in text
    assert pin.image in text and "expect: must" in text
    msg = _git_log(ws)[0]
    assert f"segment {s1}" in msg and "must be 'petal'" in msg and "Pinned-by: alice" in msg
    # the same pin again: nothing changes, no commit
    n = len(_git_log(ws))
    assert add_pin(ws, s1, "petal", by="alice") == pin and len(_git_log(ws)) == n
    # a second pin is one more entry, and the file stays sorted and stable
    before = pins_path(ws, "petal").read_text()
    add_pin(ws, s2, "petal", "must_not", by="bob")
    after = pins_path(ws, "petal").read_text()
    assert after.count("- image:") == 2 and before.splitlines()[0] == after.splitlines()[0]
    diff = subprocess.run(["git", "diff", "HEAD~1", "--stat"], cwd=ws.path, capture_output=True, text=True).stdout
    assert "pins/petal.yaml" in diff and "1 file changed" in diff
    # changing one's mind replaces the pin, and the commit says what it was
    add_pin(ws, s2, "petal", "must", by="bob")
    assert [p.expect for p in pins(ws) if p.box == ws.store.segment(s2).bbox] == ["must"]
    assert "was must not be 'petal'" in _git_log(ws)[0]
    # removing commits too, naming the segment; the last pin's removal removes the file
    remove_pin(ws, s1, "petal", by="carol", reason="wrong segment")
    assert "Unpinned-by: carol" in _git_log(ws)[0] and "wrong segment" in _git_log(ws)[0]
    remove_pin(ws, s2, "petal", by="carol")
    assert not pins_path(ws, "petal").exists() and pins(ws) == []
    status = subprocess.run(["git", "status", "--porcelain", "pins"], cwd=ws.path, capture_output=True, text=True)
    assert status.stdout == ""  # every change committed


@pytest.mark.parametrize("content, problem", [
    ("version: 1\nconcept: petal\npins: [\n", "petal.yaml"),
    ("version: 1\nconcept: petal\npins:\n- {sha256: x}\n", "pin 1: missing box, mask, expect, by, date"),
    ("version: 1\nconcept: petal\ncolour: red\npins: []\n", "unknown key(s) colour"),
    ("version: 1\nconcept: disk\npins: []\n", "rename it to disk.yaml"),
    ("version: 9\nconcept: petal\npins: []\n", "newer workbench"),
    ("version: 1\nconcept: petal\npins:\n- {sha256: " + "a" * 64 + ", box: [5, 5, 2, 9], mask: " + "b" * 16
     + ", expect: must, by: a, date: d}\n", "`box` must be [x0, y0, x1, y1]"),
    ("version: 1\nconcept: petal\npins:\n- {sha256: " + "a" * 64 + ", box: [1, 1, 2, 9], mask: " + "b" * 16
     + ", expect: maybe, by: a, date: d}\n", "`expect` must be must or must_not"),
])
def test_a_bad_pin_file_is_an_error_naming_the_file_and_the_problem(daisy_ws, content, problem):
    path = daisy_ws.path / "pins" / "petal.yaml"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(PinError) as e:
        read_pins_file(path)
    assert str(path) in str(e.value) and problem in str(e.value)


def test_pins_of_a_concept_the_ontology_lacks_are_an_error_naming_the_file(segmented_ws, capsys):
    ws = segmented_ws
    add_pin(ws, ws.store.segments()[0].id, "petal", by="alice")
    shutil.move(pins_path(ws, "petal"), ws.path / "pins" / "ray_floret.yaml")
    f = ws.path / "pins" / "ray_floret.yaml"
    f.write_text(f.read_text().replace("concept: petal", "concept: ray_floret"))
    with pytest.raises(PinError, match="ray_floret.yaml: pins of 'ray_floret', which is not a concept"):
        pins(ws)
    assert len(pins(ws, strict=False)) == 1  # training still keeps the segment out
    assert pinned_segment_ids(ws) == {ws.store.segments()[0].id}
    assert main(["test", "--workspace", str(ws.path)]) == 1
    assert "ray_floret.yaml" in capsys.readouterr().err


def test_add_pin_refuses_what_cannot_be_a_pin(segmented_ws):
    ws = segmented_ws
    sid = ws.store.segments()[0].id
    with pytest.raises(PinError, match="made of parts"):
        add_pin(ws, sid, "flower_head", by="alice")
    with pytest.raises(PinError, match="no concept 'tulip'"):
        add_pin(ws, sid, "tulip", by="alice")
    with pytest.raises(PinError, match="'none' is no concept to pin"):
        add_pin(ws, sid, "none", by="alice")
    with pytest.raises(PinError, match="no segment with id 999999"):
        add_pin(ws, 999999, "petal", by="alice")
    with pytest.raises(PinError, match="must or must_not"):
        add_pin(ws, sid, "petal", "should", by="alice")
    with pytest.raises(PinError, match="person's name"):
        add_pin(ws, sid, "petal", by="")
    assert not (ws.path / "pins").exists() or pins(ws) == []


# ------------------------------------------------------------------------------------ segment identity
def test_a_pin_survives_a_rebuilt_label_store_and_goes_stale_when_its_segment_is_gone(segmented_ws):
    ws = segmented_ws
    seg = ws.store.segments()[3]
    pin = add_pin(ws, seg.id, "petal", by="alice")
    path = ws.path
    ws.close()
    for f in path.glob("labels.sqlite*"):
        f.unlink()
    with Workspace.open(path) as ws2:
        # images added in another order: every store id changes, the pin still finds its segment
        folder = ImageFolder(path.parent / "data")
        segment_dataset(ws2.store, folder, WeightFreeSegmenter(), cache_dir=ws2.cache_dir / "segments",
                        progress=False)
        [row] = match_segments(ws2, [pin])[pin.segment_key]
        assert (row.bbox, ws2.store.image(row.image_id).sha256) == (pin.box, pin.sha256)
        # the image segmented again differently (no labels: allowed): the pinned segment is gone
        image_id = row.image_id
        shape = row.shape
        other = np.zeros(shape, bool)
        other[: shape[0] // 2] = True
        ws2.store.add_segments(image_id, row.settings_hash, [Segment.from_mask(other)])
        assert match_segments(ws2, [pin])[pin.segment_key] == []
        report = run_pins(ws2, {})
        assert [r.status for r in report.results] == ["stale"] and report.ok
        assert "not in the label store" in report.results[0].reason
        assert pins(ws2) == [pin]  # never dropped


# ----------------------------------------------------------------------------- kept out of training
def test_pinned_segments_never_reach_training_or_evaluation(trained):
    ws = trained.ws
    images, segments = trained.images, trained.segments
    side = images.split[segments.image_index]
    # pin every labelled 'stem' segment of train images, and a petal and a 'none' of validation and test images
    stems = [int(s) for s, lab, sd in zip(segments.segment_ids, segments.labels, side) if lab == "stem" and sd == "train"]
    held = [int(s) for s, lab, sd in zip(segments.segment_ids, segments.labels, side)
            if lab in ("petal", "none") and sd in ("val", "test")][:6]
    assert stems and held
    for sid in stems + held:
        add_pin(ws, sid, "stem" if sid in stems else "petal", "must" if sid in stems else "must_not", by="t",
                commit=False)
    pinned = set(stems + held)
    assert pinned_segment_ids(ws) == pinned

    images2, segments2 = _table(ws)
    # the segments stay (their images score them), their labels are gone, nothing else changed
    assert segments2.segment_ids.tolist() == segments.segment_ids.tolist()
    for sid, before, after in zip(segments.segment_ids, segments.labels, segments2.labels):
        assert after == (None if int(sid) in pinned else before)
    assert images2.split.tolist() == images.split.tolist()
    # no part trains, early-stops or is measured on them
    config = training_config(ws.settings)
    for leaf in ws.ontology.leaves():
        tr, _, va, _ = leaf_split(segments2, images2, leaf, config)
        assert not pinned & set(segments2.segment_ids[np.concatenate([tr, va])].tolist())
    # the concept metrics count exactly the unpinned labelled segments, on validation and test
    m1 = concept_metrics(ws.ontology, trained.result.models, images, segments)
    m2 = concept_metrics(ws.ontology, trained.result.models, images2, segments2)
    n_val = sum(1 for s in held if images.split[segments.image_index[list(segments.segment_ids).index(s)]] == "val")
    assert m1["petal"]["val_examples"] - m2["petal"]["val_examples"] == n_val
    assert m1["petal"]["test_examples"] - m2["petal"]["test_examples"] == len(held) - n_val
    # the stems' labels were its only training positives: without them 'stem' cannot train (with them it did)
    with pytest.raises(WorkbenchError, match="concept 'stem' has 0 positive"):
        train_hybrid(ws.ontology, images2, segments2, config, settings_hash=SHASH, force=True)


# ------------------------------------------------------------------------------------------- running
def _extremes(trained) -> tuple[str, int, int, float, float]:
    """A part whose saved model scores some segment at or above 0.5 and some below (the fixture's nets
    train for 2 epochs: the 'disk' rule separates, a net may not), the segments it scores highest and
    lowest, and those scores."""
    for concept in ("disk", *trained.ws.ontology.leaves()):
        p = np.asarray(trained.result.models[concept].predict_proba(trained.segments.crops), dtype=float)
        hi, lo = int(np.argmax(p)), int(np.argmin(p))
        if p[hi] >= 0.5 > p[lo]:
            ids = trained.segments.segment_ids
            return concept, int(ids[hi]), int(ids[lo]), float(p[hi]), float(p[lo])
    raise AssertionError("no part of the fixture separates any segments")


def test_run_pins_scores_each_pinned_segment_with_its_concepts_model(trained):
    ws = trained.ws
    c, hi, lo, p_hi, p_lo = _extremes(trained)
    add_pin(ws, hi, c, by="alice")             # passes
    add_pin(ws, lo, c, "must_not", by="alice")  # passes
    report = run_pins(ws, saved_models(ws))
    assert [r.status for r in report.results] == ["pass", "pass"] and report.ok
    by_seg = {r.segment_id: r for r in report.results}
    # the crop is cut as training cuts it: the same score the model gave the training table's crop
    assert by_seg[hi].score == pytest.approx(p_hi, abs=1e-5) and by_seg[lo].score == pytest.approx(p_lo, abs=1e-5)
    add_pin(ws, lo, c, "must", by="bob")       # flips to a failing pin
    report = run_pins(ws, saved_models(ws))
    assert [(r.segment_id, r.status) for r in report.failed] == [(lo, "fail")] and not report.ok
    assert "FAIL" in report.text() and f"segment {lo}" in report.text() and f"must be {c!r}" in report.text()
    # a concept without a model, or not in the ontology given, is skipped with the reason
    assert {r.status for r in run_pins(ws, {}).results} == {"skipped"}
    assert "no trained model" in run_pins(ws, {}).results[0].reason
    renamed = apply_edits(ws.ontology, [edit_from_dict({"op": "rename", "old": c, "new": "ray_floret"})])
    skipped = run_pins(ws, saved_models(ws), ontology=renamed).results
    assert [r.status for r in skipped] == ["skipped", "skipped"]
    assert f"{c!r} is not a concept of this ontology" in skipped[0].reason


def test_compare_pins_names_newly_failing_and_newly_passing_pins(trained):
    ws = trained.ws
    c, hi, lo, _, _ = _extremes(trained)
    add_pin(ws, hi, c, by="alice")
    add_pin(ws, lo, c, "must_not", by="alice")
    base = saved_models(ws)
    before = run_pins(ws, base)

    class Always:
        """A 'candidate' model that scores every segment 0.9 (test input, standing for a retrained net)."""

        crop_size = ws.settings.crop_size

        def predict_proba(self, X):
            return np.full(len(X), 0.9)

    after = run_pins(ws, {**base, c: Always()})
    change = compare_pins(before, after)
    assert [a.segment_id for _, a in change.newly_failing] == [lo] and change.blocks
    assert change.newly_passing == [] and change.unchanged == 1
    assert "1 pin newly fails" in change.text() and "was " in change.text()
    back = compare_pins(after, before)
    assert [a.segment_id for _, a in back.newly_passing] == [lo] and not back.blocks
    # the change removes the concept: its pins are no longer tested, which blocks nothing but is said
    gone = compare_pins(before, run_pins(ws, {}))
    assert len(gone.no_longer_tested) == 2 and not gone.blocks and "no longer tested" in gone.text()
    assert compare_pins(before, before).text() == "No pin changes (2 as before)."


# ------------------------------------------------------------------------------------------ commands
def test_workbench_test_passes_and_fails_as_it_should(trained, capsys):
    ws = trained.ws
    c, hi, lo, _, _ = _extremes(trained)
    wsarg = ["--workspace", str(ws.path)]
    assert main(["test", *wsarg]) == 0
    assert "No pins" in capsys.readouterr().out
    assert main(["pin", "add", str(hi), c, *wsarg, "--by", "alice", "--note", "clear petal"]) == 0
    assert main(["pin", "add", str(lo), c, "--not", *wsarg, "--by", "alice"]) == 0
    capsys.readouterr()
    assert main(["test", *wsarg]) == 0
    out = capsys.readouterr().out
    assert f"{c}: 2 pins: 2 pass, 0 fail" in out and "All pins pass" in out and f"segment {hi} of " in out
    assert main(["pin", "add", str(lo), c, *wsarg, "--by", "bob"]) == 0
    capsys.readouterr()
    assert main(["test", c, *wsarg]) == 1
    out = capsys.readouterr().out
    assert "1 pin FAIL" in out and f"Failing: {c}: segment {lo} of" in out and "scored 0." in out
    # list shows the ids; remove by segment, or by id
    assert main(["pin", "list", *wsarg]) == 0
    listing = capsys.readouterr().out
    assert "2 pins" in listing
    assert main(["pin", "remove", str(lo), c, *wsarg, "--by", "bob"]) == 0
    assert main(["test", *wsarg]) == 0
    pid = pins(ws)[0].id
    assert pid in listing
    assert main(["pin", "remove", *wsarg, "--by", "bob", "--pin", pid]) == 0
    assert pins(ws) == []
    assert main(["test", "tulip", *wsarg]) == 1
    assert "no concept 'tulip'" in capsys.readouterr().err


def test_workbench_pin_add_by_pixel_picks_the_smallest_segment_there(segmented_ws, capsys):
    ws = segmented_ws
    row = min(ws.store.segments(), key=lambda s: s.area)
    ys, xs = np.nonzero(row.crop_mask())
    x, y = int(xs[0]) + row.bbox[0], int(ys[0]) + row.bbox[1]
    image = ws.store.image(row.image_id).path
    assert main(["pin", "add", "disk", "--workspace", str(ws.path), "--by", "a", "--image", image,
                 "--at", f"{x},{y}"]) == 0
    [p] = pins(ws)
    assert (p.box, p.concept, p.image) == (row.bbox, "disk", image)
    assert main(["pin", "add", "disk", "--workspace", str(ws.path), "--by", "a", "--image", image,
                 "--at", "x"]) == 1
    assert "--at takes a pixel" in capsys.readouterr().err


def test_pins_folder_survives_git_history(segmented_ws):
    """Every pin change is a commit of pins/ only: nothing else the workspace holds is swept in."""
    ws = segmented_ws
    (ws.path / "notes.txt").write_text("not mine")
    add_pin(ws, ws.store.segments()[0].id, "leaf", by="alice")
    files = subprocess.run(["git", "show", "--name-only", "--format=", "HEAD"], cwd=ws.path, capture_output=True,
                           text=True).stdout.split()
    assert files == ["pins/leaf.yaml"]
    assert Path(ws.path / "notes.txt").exists()


def test_the_notebook_handle_pins_and_tests(trained):
    from workbench.jupyter.session import Workbench

    c, hi, lo, _, _ = _extremes(trained)
    wb = Workbench(trained.ws, author="dana")
    pin = wb.pin(hi, c, note="from an explanation")
    assert pin.by == "dana" and wb.pins() == [pin] and "Pinned-by: dana" in _git_log(trained.ws)[0]
    wb.pin(lo, c)  # the model scores it below 0.5: this pin fails
    report = wb.test()
    assert sorted(r.status for r in report.results) == ["fail", "pass"] and "1 pin FAIL" in repr(report)
    wb.unpin(lo, c)
    assert wb.test().ok and wb.pins(c) == [pin]
    # from an explanation: the segment that fired, named by its image and box
    image = trained.ws.store.image(trained.ws.store.segment(hi).image_id).path
    firing = explain_image(trained.ws, image)[1].concepts[c]
    p2 = wb.pin((image, firing.bbox), c, "must_not")
    assert p2.box == tuple(firing.bbox) and p2.image == image


def test_pins_follow_a_rename_and_a_merge_of_their_concept(segmented_ws):
    """Accepting a rename or a merge (``Workspace.apply_edits``) carries the pins along in the same commit,
    as the label store carries the labels; a revert of the rename carries them back."""
    from workbench.review.history import revert

    ws = segmented_ws
    a, b, c = (r.id for r in ws.store.segments()[:3])
    add_pin(ws, a, "petal", by="alice")
    add_pin(ws, b, "petal", "must_not", by="alice")
    add_pin(ws, b, "leaf", by="bob")
    add_pin(ws, c, "leaf", by="bob")
    ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}], message="rename petal")
    renamed = ws.last_commit
    assert {(p.concept, p.expect) for p in pins(ws)} == {("ray_floret", "must"), ("ray_floret", "must_not"),
                                                         ("leaf", "must")}
    shown = subprocess.run(["git", "-C", str(ws.path), "show", "--name-status", "--format=", "HEAD"],
                           capture_output=True, text=True, check=True).stdout
    assert "pins/ray_floret.yaml" in shown and "pins/petal.yaml" in shown and "ontology.yaml" in shown, shown
    assert main(["test", "--workspace", str(ws.path)]) in (0, 1)  # no "pins of an unknown concept" error

    revert(ws, renamed, by="alice")  # the rename undone: its pins go back with it
    assert {p.concept for p in pins(ws)} == {"petal", "leaf"} and not pins_path(ws, "ray_floret").exists()
    ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}], message="rename petal again")

    merge = {"op": "merge", "sources": ["ray_floret", "leaf"], "into": "ray_floret"}
    ws.apply_edits([merge], message="merge leaf into ray_floret")
    # segment b had a pin in both: the merged concept keeps its own, and the commit says which was dropped
    assert [p.concept for p in pins(ws)] == ["ray_floret"] * 3 and not pins_path(ws, "leaf").exists()
    body = subprocess.run(["git", "-C", str(ws.path), "log", "-1", "--format=%B"], capture_output=True, text=True,
                          check=True).stdout
    assert "leaf.yaml" in body, body
    assert pinned_segment_ids(ws) == {a, b, c}
    assert follow_edits(ws, [merge]) == ([], [])  # nothing left to carry
    status = subprocess.run(["git", "-C", str(ws.path), "status", "--porcelain", "--", "pins"],
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
