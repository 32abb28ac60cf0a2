"""Tests for workbench/store.py: round trips, history, relabeling, export, schema and durability."""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data.store import NONE, SCHEMA_VERSION, LabelStore, SegmentData
from workbench.errors import StoreError

SHA = "0123456789abcdef" * 4


def _segment(h: int, w: int, box: tuple[int, int, int, int], seed: int = 0) -> SegmentData:
    x0, y0, x1, y1 = box
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < 0.5
    mask[y0, x0] = mask[y1 - 1, x1 - 1] = True  # the bbox is tight at two corners
    return SegmentData(bbox=box, area=int(mask.sum()), mask=mask)


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


@pytest.fixture
def seeded(store):
    """A store with two images and five segments each."""
    ids = []
    for k, cls in enumerate(["daisy", "not_daisy"]):
        img = store.add_image(f"{cls}/{k}.png", f"{k:064x}", 40, 30, cls)
        segs = [_segment(30, 40, (i, i, i + 5 + k, i + 7), seed=i) for i in range(5)]
        ids += store.add_segments(img, "weightfree-abc", segs)
    return store, ids


# -- images and segments --------------------------------------------------------------------------------


def test_add_image_is_idempotent_and_rows_round_trip(store):
    a = store.add_image("daisy/1.png", SHA, 64, 48, "daisy")
    assert store.add_image("daisy/1.png", SHA, 64, 48, "daisy") == a
    b = store.add_image("daisy/copy.png", SHA, 64, 48, "daisy")  # same content, other path: another image
    assert b != a
    row = store.image(a)
    assert (row.path, row.sha256, row.width, row.height, row.class_label) == ("daisy/1.png", SHA, 64, 48, "daisy")
    assert [r.id for r in store.images()] == [a, b]
    assert store.find_image("daisy/copy.png").id == b
    assert store.find_image("nope.png") is None


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"sha256": "xyz"}, "sha256"),
        ({"width": 0}, "width"),
        ({"height": True}, "height"),
        ({"path": ""}, "path"),
    ],
)
def test_add_image_rejects_bad_values(store, bad, match):
    args = {"path": "a.png", "sha256": SHA, "width": 4, "height": 4} | bad
    with pytest.raises(StoreError, match=match):
        store.add_image(**args)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    h=st.integers(1, 41),
    w=st.integers(1, 41),
    data=st.data(),
)
def test_masks_round_trip_exactly(store, h, w, data):
    y0 = data.draw(st.integers(0, h - 1))
    x0 = data.draw(st.integers(0, w - 1))
    y1 = data.draw(st.integers(y0 + 1, h))
    x1 = data.draw(st.integers(x0 + 1, w))
    seg = _segment(h, w, (x0, y0, x1, y1), seed=data.draw(st.integers(0, 1000)))
    img = store.add_image(f"{h}x{w}-{x0}{y0}{x1}{y1}.png", SHA, w, h)
    [sid] = store.add_segments(img, "s", [seg])
    row = store.segment(sid)
    assert row.bbox == (x0, y0, x1, y1) and row.area == seg.area and row.shape == (h, w)
    got = row.mask()
    assert got.dtype == bool and got.shape == (h, w)
    np.testing.assert_array_equal(got, seg.mask)
    np.testing.assert_array_equal(row.crop_mask(), seg.mask[y0:y1, x0:x1])


def test_masks_are_stored_compactly(store):
    img = store.add_image("big.png", SHA, 512, 512)
    mask = np.zeros((512, 512), bool)
    mask[100:300, 50:250] = True
    [sid] = store.add_segments(img, "s", [SegmentData((50, 100, 250, 300), int(mask.sum()), mask)])
    assert len(store.segment(sid).packed) < 200  # 40,000 mask pixels


def test_add_segments_same_again_returns_same_ids_and_unlabelled_ones_are_replaced(store):
    img = store.add_image("a.png", SHA, 20, 20)
    segs = [_segment(20, 20, (0, 0, 5, 5)), _segment(20, 20, (5, 5, 12, 9), seed=3)]
    first = store.add_segments(img, "s1", segs)
    assert store.add_segments(img, "s1", segs) == first
    other = store.add_segments(img, "s2", segs[:1])  # another settings hash lives beside
    replaced = store.add_segments(img, "s1", segs[:1])
    assert len(replaced) == 1 and replaced[0] not in first
    assert [s.id for s in store.segments(img, "s1")] == replaced
    assert [s.id for s in store.segments(img)] == sorted(other + replaced)


def test_add_segments_never_deletes_labelled_segments(store):
    img = store.add_image("a.png", SHA, 20, 20)
    segs = [_segment(20, 20, (0, 0, 5, 5)), _segment(20, 20, (5, 5, 12, 9), seed=3)]
    first = store.add_segments(img, "s1", segs)
    store.set_label(first[1], "petal", source="person", author="alice")
    with pytest.raises(StoreError, match="1 label"):
        store.add_segments(img, "s1", segs[:1])
    assert [s.id for s in store.segments(img)] == first
    assert store.label(first[1]).concept == "petal"


@pytest.mark.parametrize(
    "seg, match",
    [
        (SegmentData((0, 0, 2, 2), 1, np.ones((4, 4), bool)), "outside its bbox"),
        (SegmentData((0, 0, 2, 2), 4, np.ones((4, 4), np.uint8)), "bool"),
        (SegmentData((0, 0, 5, 2), 4, np.ones((4, 4), bool)), "outside the 4x4"),
        (SegmentData((2, 0, 2, 2), 0, np.zeros((4, 4), bool)), "empty"),
        (SegmentData((0, 0, 4, 4), -1, np.zeros((4, 4), bool)), "area"),
        (object(), "needs .bbox"),
    ],
)
def test_bad_segments_are_refused_naming_the_segment(store, seg, match):
    img = store.add_image("a.png", SHA, 4, 4)
    with pytest.raises(StoreError, match=match) as e:
        store.add_segments(img, "s", [seg])
    assert f"image {img}, segment 0" in str(e.value)
    assert store.segments() == []


def test_segments_for_an_unknown_image_are_refused(store):
    with pytest.raises(StoreError, match="no image with id 7"):
        store.add_segments(7, "s", [_segment(4, 4, (0, 0, 2, 2))])


# -- labels ------------------------------------------------------------------------------------------------


def test_set_label_and_queries(seeded):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice", elapsed_ms=830)
    store.set_label(ids[1], "disk", source="ground_truth", author="masks:parts.json")
    store.set_label(ids[2], NONE, source="person", author="alice")
    store.set_label(ids[0], "disk", source="person", author="bob")  # relabel: latest row wins
    assert store.label(ids[0]).concept == "disk" and store.label(ids[0]).author == "bob"
    assert store.label(ids[3]) is None
    assert store.counts() == {"disk": 2, "none": 1}
    assert store.counts(source="person") == {"disk": 1, "none": 1}
    assert [r.segment_id for r in store.labels("disk")] == [ids[0], ids[1]]
    assert [r.segment_id for r in store.labels(source="ground_truth")] == [ids[1]]
    assert len(store.labels(history=True)) == 4
    assert store.label_history(ids[0])[0].elapsed_ms == 830
    assert [s.id for s in store.unlabeled()] == ids[3:]
    assert store.next_unlabeled().id == ids[3]
    assert store.next_unlabeled(after=ids[5]).id == ids[6]
    assert store.next_unlabeled(image_id=store.segment(ids[5]).image_id).id == ids[5]
    assert store.progress() == (3, 10)
    assert store.progress(settings_hash="other") == (0, 0)
    assert store.last_label(source="person").segment_id == ids[0]
    assert store.last_label(author="masks:parts.json").segment_id == ids[1]
    assert store.last_label(author="carol") is None
    pairs = store.segments_with_labels()
    assert [s.id for s, _ in pairs] == ids
    assert [lab.concept if lab else None for _, lab in pairs][:4] == ["disk", "disk", "none", None]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"concept": "Petal"}, "concept id"),
        ({"concept": ""}, "concept id"),
        ({"concept": "petal\n"}, "concept id"),
        ({"source": "robot"}, "source must be one of"),
        ({"author": " "}, "needs an author"),
        ({"segment_id": 9999}, "no segment with id 9999"),
    ],
)
def test_bad_labels_are_refused(seeded, kwargs, match):
    store, ids = seeded
    args = {"segment_id": ids[0], "concept": "petal", "source": "person", "author": "alice"} | kwargs
    with pytest.raises(StoreError, match=match):
        store.set_label(args.pop("segment_id"), args.pop("concept"), **args)
    assert store.labels(history=True) == []


def test_undo_walks_back_through_history_and_keeps_it(seeded):
    store, ids = seeded
    s = ids[0]
    assert store.undo(s, author="alice") is None  # nothing to undo
    store.set_label(s, "petal", source="ground_truth", author="masks:parts.json")
    store.set_label(s, "disk", source="person", author="alice")
    store.set_label(s, NONE, source="person", author="alice")
    row = store.undo(s, author="alice")
    assert row.concept == "disk" and store.label(s).concept == "disk"
    row = store.undo(s, author="alice")
    assert (row.concept, row.source, row.author) == ("petal", "ground_truth", "masks:parts.json")
    row = store.undo(s, author="alice")
    assert row.concept is None and store.label(s) is None and row.author == "alice"
    assert store.undo(s, author="alice") is None
    assert len(store.label_history(s)) == 6  # three labels, three undos: nothing rewritten
    store.set_label(s, "stem", source="person", author="alice")
    store.undo(s, author="alice")
    assert store.label(s) is None


def test_clear_label(seeded):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice")
    store.clear_label(ids[0], author="alice")
    assert store.label(ids[0]) is None and store.counts() == {}
    assert ids[0] in [s.id for s in store.unlabeled()]
    store.undo(ids[0], author="alice")
    assert store.label(ids[0]).concept == "petal"


def test_set_labels_in_bulk(seeded):
    store, ids = seeded
    assert store.set_labels([(i, "petal") for i in ids[:4]], source="ground_truth", author="masks:parts.json") == 4
    assert store.counts() == {"petal": 4}
    with pytest.raises(StoreError):
        store.set_labels([(ids[4], "petal"), (12345, "petal")], source="person", author="a")
    assert store.counts() == {"petal": 4}  # the whole batch rolled back


def test_image_labels_keep_history(seeded):
    store, _ = seeded
    img = store.images()[0]
    assert img.class_label == "daisy"
    store.set_image_label(img.id, "not_daisy", source="person", author="alice")
    assert store.image(img.id).class_label == "not_daisy"
    assert [r.id for r in store.images("not_daisy")] == [i.id for i in store.images()]
    assert [r.class_label for r in store.image_label_history(img.id)] == ["not_daisy"]
    with pytest.raises(StoreError, match="no image with id 99"):
        store.set_image_label(99, "daisy", source="person", author="alice")


# -- rename, merge, removed concepts ------------------------------------------------------------------------


def test_rename_carries_labels_history_and_suggestions(seeded):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice")
    store.set_label(ids[0], "disk", source="person", author="alice")
    store.set_label(ids[1], "petal", source="person", author="alice")
    store.add_suggestion(ids[2], "petal", model="claude-x")
    assert store.rename_concept("petal", "ray_floret") == 2
    assert store.counts() == {"disk": 1, "ray_floret": 1}
    assert [r.concept for r in store.label_history(ids[0])] == ["ray_floret", "disk"]
    assert store.suggestions()[0].concept == "ray_floret"
    store.undo(ids[0], author="alice")
    assert store.label(ids[0]).concept == "ray_floret"
    [event] = store.concept_events()
    assert (event.op, event.sources, event.target, event.labels_changed) == ("rename", ("petal",), "ray_floret", 2)


def test_merge_carries_labels_and_revert_puts_them_back(seeded):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice")
    store.set_label(ids[1], "sepal", source="person", author="alice")
    store.set_label(ids[2], "disk", source="person", author="alice")
    assert store.merge_concepts(["petal", "sepal"], "petal") == 1  # into one of the sources
    assert store.counts() == {"disk": 1, "petal": 2}
    assert store.merge_concepts(["petal", "disk"], "flower_part") == 3
    assert store.counts() == {"flower_part": 3}
    last = store.concept_events()[-1].id
    store.set_label(ids[2], "stem", source="person", author="alice")  # a newer label: revert keeps it current
    assert store.revert_concept_event(last) == 3
    assert store.counts() == {"petal": 2, "stem": 1}
    assert [r.concept for r in store.label_history(ids[2])] == ["disk", "stem"]
    store.rename_concept("petal", "ray")
    assert store.revert_concept_event(last) == 0  # its rows have moved on since: left alone
    assert [e.op for e in store.concept_events()] == ["merge", "merge", "revert", "rename", "revert"]
    with pytest.raises(StoreError, match="reserved"):
        store.merge_concepts(["none", "petal"], "petal")
    with pytest.raises(StoreError, match="list"):
        store.merge_concepts("petal", "disk")


def test_labels_of_removed_concepts_stay_retrievable(seeded):
    """Removing a concept from the ontology does not touch the store: its labels are still listed."""
    store, ids = seeded
    store.set_label(ids[0], "leaf", source="person", author="alice")
    # ... the ontology drops "leaf"; nothing is called on the store ...
    assert [r.segment_id for r in store.labels("leaf")] == [ids[0]]
    assert store.counts()["leaf"] == 1


# -- suggestions -----------------------------------------------------------------------------------------------


def test_suggestions_are_resolved_by_a_persons_label(seeded):
    store, ids = seeded
    a, b, c = store.add_suggestions([(ids[0], "petal"), (ids[1], "disk"), (ids[2], "stem")], model="claude-x")
    assert [s.id for s in store.suggestions()] == [a, b, c]
    store.set_label(ids[0], "petal", source="person", author="alice")  # agrees
    store.set_label(ids[1], "petal", source="person", author="alice")  # disagrees
    store.set_label(ids[2], "stem", source="llm", author="claude-x")  # not a person: stays pending
    assert [s.id for s in store.suggestions()] == [c]
    statuses = {s.id: (s.status, s.resolved_by) for s in store.suggestions(pending_only=False)}
    assert statuses[a] == ("confirmed", "alice") and statuses[b] == ("rejected", "alice")
    assert store.suggestion_agreement() == {"confirmed": 1, "rejected": 1, "rate": 0.5}
    store.reject_suggestion(c, author="bob")
    assert store.suggestions() == []
    with pytest.raises(StoreError, match="no pending suggestion"):
        store.reject_suggestion(c, author="bob")
    assert store.suggestion_agreement(model="other")["rate"] is None


# -- export --------------------------------------------------------------------------------------------------


def test_export_csv_and_json(seeded, tmp_path):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice, the \"labeler\"")
    store.set_label(ids[0], "disk", source="person", author="alice")
    store.set_label(ids[7], NONE, source="ground_truth", author="masks:parts.json")
    store.set_image_label(store.images()[1].id, "daisy", source="person", author="alice")
    assert store.export_csv(tmp_path / "labels.csv") == 2
    with open(tmp_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["segment_id"]), r["concept"], r["author"]) for r in rows] == [
        (ids[0], "disk", "alice"),
        (ids[7], "none", "masks:parts.json"),
    ]
    assert rows[1]["image_path"] == "not_daisy/1.png"
    seg = store.segment(ids[7])
    assert tuple(int(rows[1][k]) for k in ("x0", "y0", "x1", "y1")) == seg.bbox
    assert store.export_csv(tmp_path / "history.csv", history=True) == 3
    with open(tmp_path / "history.csv", newline="") as f:
        assert next(csv.DictReader(f))["author"] == "alice, the \"labeler\""

    store.rename_concept("disk", "center")
    assert store.export_json(tmp_path / "labels.json") == 2
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert [r["concept"] for r in doc["segment_labels"]] == ["center", "none"]
    assert [r["class_label"] for r in doc["image_labels"]] == ["daisy"]
    assert doc["concept_events"][0]["target"] == "center"
    before = (tmp_path / "labels.json").read_bytes()
    store.export_json(tmp_path / "labels.json")
    assert (tmp_path / "labels.json").read_bytes() == before  # deterministic
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# -- schema, files, connections ---------------------------------------------------------------------------------


def test_newer_schema_is_refused_with_upgrade_hint(tmp_path):
    path = tmp_path / "labels.sqlite"
    LabelStore(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer workbench.*upgrade"):
        LabelStore(path)


def test_foreign_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a label store"):
        LabelStore(garbage)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a workbench label store"):
        LabelStore(other)
    with pytest.raises(StoreError, match="is a folder"):
        LabelStore(tmp_path)


def test_store_settings_and_integrity(store):
    con = store._conn
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert con.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert store.integrity_check() == ["ok"]
    assert store.schema_version == SCHEMA_VERSION


def test_closed_store_says_so(tmp_path):
    s = LabelStore(tmp_path / "l.sqlite")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.labels()


def test_two_connections_see_each_others_labels_and_backup_is_consistent(seeded, tmp_path):
    store, ids = seeded
    with LabelStore(store.path) as other:
        other.set_label(ids[0], "petal", source="person", author="bob")
        store.set_label(ids[1], "disk", source="person", author="alice")
        assert store.counts() == other.counts() == {"disk": 1, "petal": 1}
    store.backup(tmp_path / "backup" / "copy.sqlite")
    with LabelStore(tmp_path / "backup" / "copy.sqlite") as copy:
        assert copy.counts() == {"disk": 1, "petal": 1}
        assert copy.integrity_check() == ["ok"]


def test_threads_may_share_one_store(seeded):
    store, ids = seeded
    errors = []

    def work(k):
        try:
            for i in ids:
                store.set_label(i, f"c{k}", source="person", author=f"t{k}")
        except Exception as e:  # pragma: no cover - the assert below shows it
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.labels(history=True)) == 4 * len(ids)
    assert store.integrity_check() == ["ok"]


# -- durability: SIGKILL ---------------------------------------------------------------------------------------

_CHILD = """
import sys
from workbench.data.store import LabelStore
store = LabelStore(sys.argv[1])
ids = [int(x) for x in sys.argv[2].split(",")]
concepts = ["petal", "disk", "stem", "none"]
i = 0
while True:
    seg, concept = ids[i % len(ids)], concepts[i % len(concepts)]
    row = store.set_label(seg, concept, source="person", author="killed")
    print(row.id, seg, concept, flush=True)  # acknowledged: set_label has returned
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_acknowledged_labels_survive_sigkill(seeded):
    """A labelling process killed with SIGKILL at random moments loses no acknowledged label."""
    store, ids = seeded
    path = str(store.path)
    store.close()
    rng = random.Random(1234)
    for round_ in range(4):
        n_ack = rng.randint(1, 60)
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, path, ",".join(map(str, ids))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        acked = []
        try:
            while len(acked) < n_ack:
                line = proc.stdout.readline()
                if not line:
                    pytest.fail(f"child stopped early: {proc.stderr.read()}")
                acked.append(line.split())
            time.sleep(rng.random() * 0.02)  # kill at a random point of a later write
            proc.send_signal(signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        acked += [ln.split() for ln in rest.splitlines() if len(ln.split()) == 3]
        with LabelStore(path) as reopened:
            assert reopened.integrity_check() == ["ok"], f"round {round_}"
            history = {r.id: r for r in reopened.labels(history=True)}
            for label_id, seg, concept in acked:
                row = history.get(int(label_id))
                assert row is not None, f"round {round_}: acknowledged label {label_id} lost"
                assert (row.segment_id, row.concept) == (int(seg), concept)


# -- provenance: how a person's label was made (``via``) ---------------------------------------------------


def test_a_label_records_how_it_was_made_and_undo_restores_it(seeded, tmp_path):
    store, ids = seeded
    store.set_label(ids[0], "petal", source="person", author="alice")  # one at a time: no via
    with store.transaction():  # a grid page: one transaction, each label naming what ranked it
        store.set_label(ids[0], "disk", source="person", author="alice", via="grid: disk model")
        store.set_label(ids[1], NONE, source="person", author="alice", via="grid: disk model")
    assert [(r.concept, r.via) for r in store.label_history(ids[0])] == [("petal", None), ("disk", "grid: disk model")]
    assert store.label(ids[1]).via == "grid: disk model"
    assert {r.segment_id: r.via for r in store.labels()} == {ids[0]: "grid: disk model", ids[1]: "grid: disk model"}
    undo = store.undo(ids[0], author="alice")  # back to the one-at-a-time label, with its own (empty) via
    assert (undo.concept, undo.via) == ("petal", None)
    store.set_label(ids[0], "leaf", source="person", author="bob", via="suggestion: claude-x")
    store.set_label(ids[0], "stem", source="person", author="bob")
    assert (store.undo(ids[0], author="bob").via, store.label(ids[0]).concept) == ("suggestion: claude-x", "leaf")
    assert store.set_labels([(ids[2], "stem")], source="person", author="bob", via="grid: stem model") == 1
    assert store.label(ids[2]).via == "grid: stem model"
    store.export_csv(tmp_path / "labels.csv")
    rows = {int(r["segment_id"]): r for r in csv.DictReader((tmp_path / "labels.csv").open())}
    assert rows[ids[1]]["via"] == "grid: disk model" and rows[ids[0]]["via"] == "suggestion: claude-x"
    store.export_json(tmp_path / "labels.json", history=True)
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert [r["via"] for r in doc["segment_labels"] if r["segment_id"] == ids[2]] == ["grid: stem model"]


@pytest.mark.parametrize("via", ["", "  ", "a\nb", "x" * 201, 7])
def test_a_bad_via_is_refused_and_nothing_is_written(seeded, via):
    store, ids = seeded
    with pytest.raises(StoreError, match="via must be a short one-line text"):
        store.set_label(ids[0], "petal", source="person", author="alice", via=via)
    assert store.label_history(ids[0]) == []


def test_a_store_made_before_via_opens_gains_the_column_and_keeps_its_labels(tmp_path):
    """A store written by the release before ``via`` (its labels table without the column) opens, its
    rows read with ``via`` None, and new labels record it; opening it again changes nothing more."""
    import workbench.data.store as store_mod

    path = tmp_path / "old.sqlite"
    old_schema = store_mod._SCHEMA.replace(
        "elapsed_ms INTEGER,            -- time the person took for this label, when the labeler measured it\n"
        "    via TEXT ", "elapsed_ms INTEGER ")
    assert old_schema != store_mod._SCHEMA and "via" not in old_schema.split("CREATE TABLE labels")[1].split(");")[0]
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01')")
    conn.execute("INSERT INTO images (path, sha256, width, height, added_at) VALUES ('a.png', ?, 4, 4, 'x')", (SHA,))
    conn.execute("INSERT INTO segments (image_id, settings_hash, x0, y0, x1, y1, area, mask, mask_height, mask_width)"
                 " VALUES (1, 'h', 0, 0, 1, 1, 1, ?, 4, 4)", (b"",))
    conn.execute("INSERT INTO labels (segment_id, concept, source, author, created_at) VALUES (1, 'petal', 'person', 'old', 'x')")
    conn.commit()
    conn.close()
    with LabelStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        old = s.label(1)
        assert (old.concept, old.author, old.via) == ("petal", "old", None)
        s.set_label(1, "disk", source="person", author="new", via="grid: disk model")
    with LabelStore(path) as s:  # the second open finds the column and adds nothing
        assert [(r.concept, r.via) for r in s.label_history(1)] == [("petal", None), ("disk", "grid: disk model")]
        assert s.integrity_check() == ["ok"]
    cols = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(labels)")]
    assert cols.count("via") == 1
