"""Concept models: one shared contract test over every implementation, then each model against a reference."""
from __future__ import annotations

import importlib
import json
import pickle
import pkgutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

import workbench.models
from workbench.errors import ModelError, NotFittedError
from workbench.models.baseline import BaselineCNN
from workbench.models.contract import ConceptModel
from workbench.models.files import (
    MODEL_FILE_VERSION,
    RENAMED_PARAMETERS,
    model_config,
    read_model_info,
)
from workbench.models.loading import MODEL_CLASSES, load_model
from workbench.models.nets import CompositeNet, PartNet
from workbench.models.prototype_nets import (
    PrototypeLeafNet,
    PrototypeParentNet,
    center_crop_maps,
    prototype_map_side,
)
from workbench.models.rules import RuleModel


# ------------------------------------------------------------------------------------------ toy data
def square_crops(rng: np.random.Generator, n: int, colour: tuple[int, int, int], size: int = 32) -> np.ndarray:
    """Solid squares of ``colour`` plus noise, on black, at a random place and size."""
    x = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        s = int(rng.integers(size // 3, size // 2 + 1))
        y0, x0 = rng.integers(0, size - s, 2)
        patch = np.array(colour) + rng.normal(0, 25, (s, s, 3))
        x[i, y0 : y0 + s, x0 : x0 + s] = np.clip(patch, 20, 255)
    return x


def red_blue(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.concatenate([square_crops(rng, n, (200, 40, 40), size), square_crops(rng, n, (40, 40, 200), size)])
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    order = rng.permutation(len(y))
    return X[order], y[order]


def disc_bar(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Yellow discs (disk) vs white bars (petal), 32×32 crops on black."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    X = np.zeros((2 * n, 32, 32, 3), np.uint8)
    for i in range(n):
        r = rng.uniform(7, 13)
        X[i][(yy - 16) ** 2 + (xx - 16) ** 2 < r * r] = (230, 190, 20)
        w = int(rng.integers(3, 6))
        X[n + i, 16 - w // 2 : 16 + w - w // 2, 2:30] = (240, 240, 235)
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    return X, y


def child_maps(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two children's 7×7 maps; the parent is on when both children fire somewhere near the centre."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.2, (n, 2, 7, 7)).astype(np.float32)
    a, b = rng.random(n) < 0.5, rng.random(n) < 0.5
    X[a, 0, 3, 3] += 2.0
    X[b, 1, 2, 3] += 2.0
    return X, (a & b).astype(int)


def and_scores(n: int, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) < 0.5, rng.random(n) < 0.5
    X = np.clip(np.column_stack([a, b]).astype(float) + rng.normal(0, noise, (n, 2)), 0, 1)
    return X, (a & b).astype(int)


# ------------------------------------------------------------------------ one contract, every model
Case = tuple[Callable[..., ConceptModel], Callable[[], tuple[Any, Any, Any, Any]]]


def _split(X: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    k = int(len(y) * 0.75)
    return X[:k], y[:k], X[k:], y[k:]


CASES: dict[str, Case] = {
    "PartNet": (lambda **kw: PartNet("disk", max_epochs=3, **kw), lambda: _split(*red_blue(24))),
    "PrototypeLeafNet": (
        lambda **kw: PrototypeLeafNet("petal", input_size=64, pool=2, max_epochs=2, **kw),
        lambda: _split(*red_blue(12, size=64)),
    ),
    "PrototypeParentNet": (
        lambda **kw: PrototypeParentNet("flower_head", n_children=2, max_epochs=5, **kw),
        lambda: _split(*child_maps(64)),
    ),
    "CompositeNet": (
        lambda **kw: CompositeNet("flower_head", children=("disk", "petal"), interactions=True, **kw),
        lambda: _split(*and_scores(80)),
    ),
    "RuleModel": (lambda **kw: RuleModel("yellow_disk", "disk", **kw), lambda: _split(*disc_bar(8))),
    "BaselineCNN": (
        lambda **kw: BaselineCNN("daisy", image_size=32, max_epochs=3, **kw),
        lambda: _split(*red_blue(16, size=48)),
    ),
}


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request: pytest.FixtureRequest) -> tuple[str, Callable[..., ConceptModel], tuple[Any, Any, Any, Any], ConceptModel]:
    make, data = CASES[request.param]
    d = data()
    fitted = make().fit(*d)
    return request.param, make, d, fitted


def _learned(m: ConceptModel) -> list[str]:
    return [a for a in vars(m) if a.endswith("_") and not a.startswith("__")]


def test_unfitted_model_has_no_learned_state_and_refuses_to_predict(case, tmp_path: Path) -> None:
    name, make, (X, y, Xv, yv), _ = case
    m = make()
    assert _learned(m) == []
    assert not m.is_fitted
    with pytest.raises(NotFittedError, match="not fitted yet"):
        m.predict_proba(Xv)
    with pytest.raises(NotFittedError):
        m.save(tmp_path / "m.safetensors")


def test_fit_returns_self_and_leaves_params_alone(case) -> None:
    name, make, (X, y, Xv, yv), _ = case
    m = make()
    before = m.get_params()
    assert m.fit(X, y, Xv, yv) is m
    assert m.get_params() == before
    assert _learned(m), "fit must leave learned attributes ending in _"
    p = m.predict_proba(Xv)
    assert p.shape == (len(yv),) and p.dtype == np.float64
    assert np.all((p >= 0) & (p <= 1))
    for key in ("train_accuracy", "train_balanced_accuracy", "val_accuracy", "val_balanced_accuracy", "fit_seconds"):
        assert key in m.metrics_
    assert m.metrics_["val_examples"] == len(yv)
    assert m.metrics_["n_params"] == m.n_params > 0
    assert m.data_hash_.startswith("sha256:")


def test_same_random_state_same_model(case) -> None:
    name, make, (X, y, Xv, yv), fitted = case
    again = make().fit(X, y, Xv, yv)
    np.testing.assert_array_equal(again.predict_proba(Xv), fitted.predict_proba(Xv))
    assert again.data_hash_ == fitted.data_hash_


def test_clone_is_unfitted_with_the_same_params(case) -> None:
    name, make, data, fitted = case
    c = fitted.clone(random_state=7)
    assert not c.is_fitted and _learned(c) == []
    assert c.get_params() == {**fitted.get_params(), "random_state": 7}
    with pytest.raises(ModelError, match="no parameter"):
        fitted.clone(no_such_knob=1)


def test_save_then_load_predicts_the_same(case, tmp_path: Path) -> None:
    name, make, (X, y, Xv, yv), fitted = case
    path = fitted.save(tmp_path / "concept.safetensors")
    for loaded in (load_model(path), type(fitted).load(path), ConceptModel.load(path)):
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        np.testing.assert_array_equal(loaded.predict_proba(Xv), fitted.predict_proba(Xv))
        assert loaded.metrics_ == json.loads(json.dumps(fitted.metrics_))
        assert loaded.data_hash_ == fitted.data_hash_
    info = read_model_info(path)
    assert info["model"] == name and info["version"] == MODEL_FILE_VERSION and info["n_params"] == fitted.n_params


def _rewrite_header(path: Path, out: Path, **changes: Any) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    tensors_meta = json.loads(data[8 : 8 + n])
    header = json.loads(tensors_meta["__metadata__"]["workbench"])
    header.update(changes)
    from safetensors.torch import load as st_load

    out.write_bytes(st_save(st_load(data), metadata={"workbench": json.dumps(header)}))


def test_file_from_another_version_is_refused_by_name(case, tmp_path: Path) -> None:
    name, make, data, fitted = case
    good = fitted.save(tmp_path / "good.safetensors")
    bad = tmp_path / "future.safetensors"
    _rewrite_header(good, bad, version=MODEL_FILE_VERSION + 1)
    with pytest.raises(ModelError) as e:
        load_model(bad)
    msg = str(e.value)
    assert "future.safetensors" in msg and f"version {MODEL_FILE_VERSION + 1}" in msg
    assert f"reads version {MODEL_FILE_VERSION}" in msg


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "bad_json", "shape"])
def test_corrupt_file_is_refused(case, tmp_path: Path, damage: str) -> None:
    name, make, data, fitted = case
    path = fitted.save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "bad_json":
        path.write_bytes(raw[:8] + b"[" + raw[9:])
    else:  # a well-formed file whose weights do not fit the config
        _rewrite_header(path, path, state={"threshold": 7.0, "n_children": 5, "intercept": 0.0},
                        config={**json.loads(json.dumps(fitted.get_params())), **_shape_breaking(name)})
    with pytest.raises(ModelError, match="m.safetensors"):
        load_model(path)


def _shape_breaking(name: str) -> dict[str, Any]:
    return {
        "PartNet": {"channels": [5, 8, 6]},
        "PrototypeLeafNet": {"input_size": 128},
        "PrototypeParentNet": {"n_children": 3},
        "CompositeNet": {"children": []},
        "RuleModel": {},
        "BaselineCNN": {"channels": [6, 8, 3]},
    }[name]


class _Payload:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_payload_is_refused_and_never_run(case, tmp_path: Path) -> None:
    name, make, data, fitted = case
    evil, marker = tmp_path / "evil.safetensors", tmp_path / "pwned"
    torch.save({"state_dict": _Payload(marker), "version": 1}, evil)
    with pytest.raises(ModelError, match="evil.safetensors"):
        load_model(evil)
    with pytest.raises(ModelError):
        type(fitted).load(evil)
    assert not marker.exists()
    # the payload is live: an unsafe loader would have run it
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(proof))).close()
    assert proof.exists()


def test_loading_a_file_as_the_wrong_class_is_refused(case, tmp_path: Path) -> None:
    name, make, data, fitted = case
    path = fitted.save(tmp_path / "m.safetensors")
    other = CompositeNet if name != "CompositeNet" else PartNet
    with pytest.raises(ModelError, match=f"holds a {name}, not a {other.__name__}"):
        other.load(path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nothere.safetensors: model file not found"):
        load_model(tmp_path / "nothere.safetensors")


# ------------------------------------------------------------------- files written by older code
#: One small model file of every class, written by the workbench before the models were split into
#: modules (commit 180d9ec), and what each predicted then on a fixed probe input.
OLD_FILES = Path(__file__).resolve().parent / "fixtures" / "model_files_v1"
OLD_EXPECTED: dict[str, Any] = json.loads((OLD_FILES / "expected.json").read_text(encoding="utf-8"))["models"]


def _probe(shape: list[int], kind: str) -> np.ndarray:
    """The fixed input the old models were asked about (no random generator: the same on any numpy)."""
    if kind == "discs":  # yellow discs of growing radius and paleness, on black
        yy, xx = np.mgrid[: shape[1], : shape[2]]
        X = np.zeros(shape, np.uint8)
        for i in range(shape[0]):
            X[i][(yy - shape[1] // 2) ** 2 + (xx - shape[2] // 2) ** 2 < (5 + 2 * i) ** 2] = (230, 200, 20 + 12 * i)
        return X
    v = (np.arange(int(np.prod(shape)), dtype=np.int64) * 2654435761) % 4093
    if kind == "uint8":
        return (v % 256).astype(np.uint8).reshape(shape)
    return (v / 4092.0).astype(np.float32 if kind == "float32" else np.float64).reshape(shape)


@pytest.mark.parametrize("name", sorted(OLD_EXPECTED))
def test_model_files_written_before_the_split_load_and_predict_the_same(name: str) -> None:
    path = OLD_FILES / f"{name}.safetensors"
    info = read_model_info(path)
    assert info["model"] == name and info["version"] == MODEL_FILE_VERSION
    for loaded in (load_model(path), ConceptModel.load(path), MODEL_CLASSES[name].load(path)):
        assert type(loaded).__name__ == name
        params = json.loads(json.dumps(loaded.get_params()))
        assert params == json.loads(json.dumps(model_config(info)))  # old parameter names read as today's
        assert loaded.metrics_ == info["metrics"] and loaded.data_hash_ == info["data_hash"]
        want = OLD_EXPECTED[name]
        got = loaded.predict_proba(_probe(want["probe_shape"], want["probe_dtype"]))
        np.testing.assert_allclose(got, want["proba"], rtol=1e-5, atol=1e-7)
    # the stored files predate the thread-count rename, so they exercise reading the old name
    assert set(RENAMED_PARAMETERS) & set(info["config"])


def _model_classes_defined_in_the_package() -> set[type[ConceptModel]]:
    for mod in pkgutil.iter_modules(workbench.models.__path__):
        importlib.import_module(f"workbench.models.{mod.name}")
    found, todo = set(), [ConceptModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("workbench.") and "__init__" in vars(sub):  # concrete, not a shared base
                found.add(sub)
    return found


def test_every_model_class_is_loadable_by_the_name_its_files_carry() -> None:
    """The header's ``model`` is the key: every name an old file carries, and every class the package
    defines, maps to that class, so no file becomes unloadable when a class moves between modules."""
    assert set(OLD_EXPECTED) <= set(MODEL_CLASSES)
    assert {cls.__name__: cls for cls in _model_classes_defined_in_the_package()} == dict(MODEL_CLASSES)


def test_the_model_store_loads_every_class_in_a_fresh_process() -> None:
    """Reading a model needs no import of the class's module first, and the store stays torch-free
    until it loads one (the server extension imports it)."""
    script = textwrap.dedent(f"""
        import sys
        from workbench.models.store import ModelStore
        assert "torch" not in sys.modules, "importing the model store imported torch"
        store = ModelStore({str(OLD_FILES)!r})
        print(" ".join(type(store.load(name)).__name__ for name in {sorted(OLD_EXPECTED)!r}))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == sorted(OLD_EXPECTED)


# ----------------------------------------------------------------------------------- budgets, inputs
def test_part_budget_is_checked_at_construction_and_names_concept_and_count() -> None:
    assert PartNet("disk").n_params < 1000
    with pytest.raises(ModelError, match=r"concept 'disk': PartNet has 1,231 parameters, over the budget of fewer than 1,000"):
        PartNet("disk", channels=(6, 8, 8), kernel_sizes=(3, 3, 3))
    with pytest.raises(ModelError, match=r"concept 'stem': PartNet has 4 conv layers, over the limit of 3"):
        PartNet("stem", channels=(2, 2, 2, 2), kernel_sizes=(1, 1, 1, 1), pools=(1, 1, 1, 1))
    with pytest.raises(ModelError, match="one entry per conv layer"):
        PartNet("leaf", channels=(4, 4), kernel_sizes=(3,), pools=(1, 1))
    changed = PartNet("disk")
    changed.channels = (16, 16, 16)  # after construction: fit checks again, before any training
    with pytest.raises(ModelError, match=r"concept 'disk': PartNet has 4,785 parameters, over the budget"):
        changed.fit(*red_blue(8))


def test_composite_budget() -> None:
    assert CompositeNet("r", children=tuple("abcde"), interactions=True).n_params == 1 + 5 + 10
    with pytest.raises(ModelError, match=r"concept 'root': CompositeNet over 12 children has 79 parameters"):
        CompositeNet("root", children=tuple(f"c{i}" for i in range(12)), interactions=True)
    with pytest.raises(ModelError, match="parameter count unknown"):
        CompositeNet("root").n_params


def test_inputs_are_checked_with_the_concept_named() -> None:
    X, y = red_blue(8)
    with pytest.raises(ModelError, match=r"concept 'disk': X must be 32×32 segment crops, got 16×16"):
        PartNet("disk").fit(X[:, :16, :16], y)
    with pytest.raises(ModelError, match="uint8"):
        PartNet("disk").fit(X.astype(np.float32), y)
    with pytest.raises(ModelError, match=r"concept 'disk': training needs positive and negative examples, got 0 positive"):
        PartNet("disk").fit(X, np.zeros(len(y), int))
    with pytest.raises(ModelError, match="one label per row"):
        PartNet("disk").fit(X, y[:-1])


def test_thread_count_is_a_parameter_and_is_restored() -> None:
    before = torch.get_num_threads()
    X, y = red_blue(8)
    PartNet("disk", max_epochs=1, torch_threads=1).fit(X, y).predict_proba(X)
    assert torch.get_num_threads() == before


def test_fit_does_not_touch_the_global_rng() -> None:
    X, y = red_blue(8)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PartNet("disk", max_epochs=1).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_other_seed_gives_another_model() -> None:
    X, y = red_blue(16)
    a = PartNet("disk", max_epochs=2, random_state=0).fit(X, y).predict_proba(X)
    b = PartNet("disk", max_epochs=2, random_state=1).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, b)


# ------------------------------------------------------------------------------------- references
def test_part_net_separates_red_from_blue_crops() -> None:
    X, y = red_blue(150, seed=1)
    Xt, yt = red_blue(100, seed=2)
    m = PartNet("red", max_epochs=15).fit(X[:200], y[:200], X[200:], y[200:])
    assert m.evaluate(Xt, yt)["accuracy"] >= 0.99
    assert m.metrics_["val_accuracy"] >= 0.99


def test_part_net_separates_shapes_of_one_colour() -> None:
    """Colour alone cannot do it: white discs vs white bars (shape), rotated by the augmentation."""
    X, y = disc_bar(60, seed=0)
    X[:, :, :, :] = np.where(X.max(axis=3, keepdims=True) > 0, np.uint8(235), np.uint8(0))
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    m = PartNet("disk", max_epochs=25).fit(X[:90], y[:90], X[90:], y[90:])
    assert m.evaluate(X[90:], y[90:])["accuracy"] >= 0.95


def _reference_logistic(D: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> np.ndarray:
    """Newton's method on mean_w(log loss) + l2/2·|beta|² with an unpenalised intercept (last column)."""
    A = np.column_stack([D, np.ones(len(D))])
    theta = np.zeros(A.shape[1])
    reg = np.r_[np.full(D.shape[1], l2), 0.0]
    for _ in range(100):
        p = 1 / (1 + np.exp(-A @ theta))
        grad = A.T @ (w * (p - y)) / w.sum() + reg * theta
        H = (A * (w * p * (1 - p))[:, None]).T @ A / w.sum() + np.diag(reg)
        step = np.linalg.solve(H, grad)
        theta -= step
        if np.abs(step).max() < 1e-12:
            break
    return theta


@pytest.mark.parametrize("gate", ["and", "or"])
@pytest.mark.parametrize("interactions", [False, True])
def test_composite_matches_a_closed_form_logistic_regression(gate: str, interactions: bool) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(300) < 0.5, rng.random(300) < 0.5
    X = np.clip(np.column_stack([a, b]) + rng.normal(0, 0.15, (300, 2)), 0, 1)
    y = (a & b) if gate == "and" else (a | b)
    m = CompositeNet("flower_head", children=("disk", "petal"), interactions=interactions, l2=0.01).fit(X, y.astype(int))
    D = np.column_stack([X, X[:, 0] * X[:, 1]]) if interactions else X
    npos = y.sum()
    w = np.where(y, len(y) / (2 * npos), len(y) / (2 * (len(y) - npos)))
    theta = _reference_logistic(D, y.astype(float), w, 0.01)
    np.testing.assert_allclose(np.r_[m.coef_, m.interaction_coef_], theta[:-1], atol=1e-5)
    np.testing.assert_allclose(m.intercept_, theta[-1], atol=1e-5)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    truth = [False, False, False, True] if gate == "and" else [False, True, True, True]
    assert m.predict(corners).tolist() == truth
    assert "flower_head = σ(" in m.formula() and "·disk" in m.formula()


def test_composite_checks_the_number_of_children() -> None:
    m = CompositeNet("flower_head", children=("disk", "petal"))
    with pytest.raises(ModelError, match=r"concept 'flower_head': X must be the children's scores, finite floats N×2"):
        m.fit(np.zeros((4, 3)), np.array([0, 1, 0, 1]))
    fitted = CompositeNet("x").fit(*and_scores(40))
    assert fitted.n_params == 3
    with pytest.raises(ModelError, match="N×2"):
        fitted.predict_proba(np.zeros((2, 3)))


# -------------------------------------------------------------------------- the source study's nets
def test_prototype_leaf_has_the_studys_960_parameters() -> None:
    net = PrototypeLeafNet("petal")
    assert net.n_params == 960
    counts = {n: p.numel() for n, p in net._meta_module().named_parameters()}
    # conv 3→8 5×5, conv 8→4 3×3, conv 4→1 3×3, no bias; BN scale+shift; Linear(9→1) with bias
    assert counts == {
        "features.0.weight": 600, "features.1.weight": 8, "features.1.bias": 8,
        "features.4.weight": 288, "features.5.weight": 4, "features.5.bias": 4,
        "features.8.weight": 36, "features.9.weight": 1, "features.9.bias": 1,
        "head.weight": 9, "head.bias": 1,
    }
    assert prototype_map_side(256) == 3 and prototype_map_side(512) == 7


@pytest.mark.parametrize("k, expected", [(2, 25), (3, 34), (1, 16)])
def test_prototype_parent_parameters(k: int, expected: int) -> None:
    net = PrototypeParentNet("flower_head", n_children=k)
    assert net.n_params == expected  # conv k→1 3×3 (9k) + BN (2) + Linear(4→1) (5)


def test_prototype_input_size_is_checked() -> None:
    with pytest.raises(ModelError, match=r"concept 'petal': input_size=64 is too small .* use input_size >= 108"):
        PrototypeLeafNet("petal", input_size=64)
    with pytest.raises(ModelError, match="over the budget"):
        PrototypeLeafNet("petal", input_size=96, pool=2)  # a 9×9 map: Linear(81→1)


def test_prototype_leaf_applied_convolutionally_matches_the_crop_score() -> None:
    """At the study's size: trained on 256² crops, the score map of a 256² image is its crop score,
    and a 512² image gives a 7×7 feature map (5×5 windows)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([square_crops(rng, 4, (200, 40, 40), 256), square_crops(rng, 4, (40, 40, 200), 256)])
    y = np.r_[np.ones(4, int), np.zeros(4, int)]
    m = PrototypeLeafNet("petal", max_epochs=1, batch_size=8).fit(X, y)
    p = m.predict_proba(X[:3])
    s = m.score_map(X[:3])
    assert s.shape == (3, 1, 1)
    np.testing.assert_allclose(s[:, 0, 0], p, rtol=1e-5, atol=1e-6)
    big = np.zeros((2, 512, 512, 3), np.uint8)
    big[:, :256, :256] = X[:2]
    assert m.feature_map(big).shape == (2, 7, 7)
    smap = m.score_map(big)
    assert smap.shape == (2, 5, 5) and np.all((smap >= 0) & (smap <= 1))
    with pytest.raises(ModelError, match="at least 256×256"):
        m.feature_map(X[:, :128, :128])


def test_center_crop_maps_follows_torchvision() -> None:
    x = torch.arange(49.0).view(1, 7, 7)
    np.testing.assert_array_equal(center_crop_maps(x, 6)[0], x[0, :6, :6])  # round(0.5) == 0
    x9 = torch.arange(81.0).view(9, 9)
    np.testing.assert_array_equal(center_crop_maps(x9, 6), x9[2:8, 2:8])  # round(1.5) == 2
    padded = center_crop_maps(torch.ones(1, 1, 2, 2), 6)
    assert padded.shape == (1, 1, 6, 6) and padded.sum() == 4 and padded[0, 0, 2:4, 2:4].sum() == 4


def test_prototype_parent_learns_and_from_maps() -> None:
    X, y = child_maps(400, seed=1)
    Xt, yt = child_maps(200, seed=2)
    m = PrototypeParentNet("flower_head", max_epochs=60).fit(X, y, Xt, yt)
    assert m.evaluate(Xt, yt)["balanced_accuracy"] >= 0.95
    assert m.feature_map(Xt[:5]).shape == (5, 2, 2)
    with pytest.raises(ModelError, match=r"2 children's maps"):
        m.predict_proba(Xt[:, :1])


def test_early_stopping_waits_until_a_net_has_beaten_chance():
    """A net still at chance on validation (here: labels that carry no signal) is not stopped by its
    patience: some part nets sit on a first plateau for several epochs before they start to learn."""
    from workbench.models.fitting import CHANCE_LOSS
    from workbench.models.nets import PartNet

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (64, 16, 16, 3), dtype=np.uint8)
    y, yv = rng.integers(0, 2, 64), rng.integers(0, 2, 64)
    net = PartNet("noise", crop_size=16, max_epochs=8, patience=1, random_state=0).fit(X, y, X[::-1].copy(), yv)
    assert net.metrics_["val_balanced_loss"] >= CHANCE_LOSS  # it never learned (there is nothing to learn) ...
    assert net.metrics_["epochs"] == 8  # ... so patience never stopped it
