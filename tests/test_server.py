"""The Jupyter server extension (workbench/jupyter/server.py): plain functions, then the handlers on a real server.

Hostile paths (``..``, absolute, symlinks leading out, ``.git``) and oversized or malformed bodies
must be refused with a JSON error, and nothing may be written outside the workspace.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tornado.httpclient

from workbench.jupyter import server as _server
from workbench.jupyter.server import (
    BadRequest,
    PathRefused,
    check_relative,
    find_workspaces,
    history_entries,
    ontology_tree,
    parse_body,
    resolve_inside,
    resolve_workspace,
    settings_with,
)
from workbench.ontology.graph import Ontology
from workbench.workspace.folder import MARKER_FILE, Workspace

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parents[1]
DAISY = Ontology.load(REPO / "ontologies" / "daisy.yaml")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (not following symlinks) with its size and mtime."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(dirpath) / f
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A Jupyter root with a workspace ``ws`` and a notebook folder, and a folder outside the root."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    Workspace.create(root / "ws", DAISY).close()
    (root / "notebooks").mkdir()
    return {"root": root, "outside": outside, "ws": root / "ws"}


# ----------------------------------------------------------------------------------------- plain paths


@pytest.mark.parametrize(
    ("rel", "status"),
    [
        ("..", 403),
        ("../outside", 403),
        ("ws/../../outside", 403),
        ("/etc", 403),
        ("~/x", 403),
        ("C:/Windows", 403),
        ("ws/.git", 403),
        (".git/config", 403),
        ("ws\\..\\..", 400),
        ("ws\x00", 400),
        ("a" * 2000, 400),
        (3, 400),
    ],
)
def test_check_relative_refuses_hostile_paths(rel: object, status: int) -> None:
    with pytest.raises(PathRefused) as e:
        check_relative(rel)
    assert e.value.status == status


def test_check_relative_normalises_harmless_paths() -> None:
    assert check_relative("") == ()
    assert check_relative("./ws//models/") == ("ws", "models")


def test_resolve_workspace_finds_the_workspace_and_refuses_non_workspaces(layout: dict[str, Path]) -> None:
    root = layout["root"]
    assert resolve_workspace(root, "ws") == layout["ws"].resolve()
    assert resolve_workspace(root, "./ws/") == layout["ws"].resolve()
    for rel, status in [("notebooks", 404), ("nothing", 404), ("", 404), ("ws/ontology.yaml", 404)]:
        with pytest.raises(PathRefused) as e:
            resolve_workspace(root, rel)
        assert e.value.status == status, rel


def test_symlinks_leading_out_of_the_root_or_into_git_are_refused(layout: dict[str, Path]) -> None:
    root, ws, outside = layout["root"], layout["ws"], layout["outside"]
    Workspace.create(outside / "ws2", DAISY).close()
    (root / "escape").symlink_to(outside / "ws2")
    (root / "alias").symlink_to(ws)  # a symlink that stays inside is fine
    (ws / "leak.txt").symlink_to(outside / "secret.txt")
    (ws / "gitdir").symlink_to(ws / ".git")
    with pytest.raises(PathRefused, match="outside") as e:
        resolve_workspace(root, "escape")
    assert e.value.status == 403
    assert resolve_workspace(root, "alias") == ws.resolve()
    with pytest.raises(PathRefused, match="outside"):
        resolve_inside(ws, "leak.txt")
    with pytest.raises(PathRefused, match=r"\.git"):
        resolve_inside(ws, "gitdir/config")
    assert resolve_inside(ws, "ontology.yaml") == (ws / "ontology.yaml").resolve()
    with pytest.raises(PathRefused) as e:
        resolve_inside(ws, "missing.png")
    assert e.value.status == 404


def test_find_workspaces_looks_up_to_the_root_then_below_then_elsewhere(layout: dict[str, Path]) -> None:
    root, ws = layout["root"], layout["ws"]
    (ws / "notebooks").mkdir()
    assert find_workspaces(root, "") == ["ws"]
    assert find_workspaces(root, "ws/notebooks") == ["ws"]  # the enclosing workspace, nothing inside it
    assert find_workspaces(root, "notebooks") == ["ws"]  # elsewhere under the root
    (root / "escape").symlink_to(layout["outside"])
    Workspace.create(layout["outside"] / "ws3", DAISY).close()
    assert find_workspaces(root, "") == ["ws"]  # a symlinked folder is not searched
    with pytest.raises(PathRefused):
        find_workspaces(root, "escape/ws3")


def test_find_workspaces_searches_deeper_newest_first_and_skips_environments(layout: dict[str, Path]) -> None:
    """The tour writes runs/wb-00-XXXX/workspace next to the notebook: three levels down."""
    root = layout["root"]
    runs = root / "notebooks" / "runs"
    Workspace.create(runs / "wb-00-old" / "workspace", DAISY).close()
    Workspace.create(runs / "wb-00-new" / "workspace", DAISY).close()
    os.utime(runs / "wb-00-old" / "workspace" / MARKER_FILE, (1_000_000, 1_000_000))  # made long ago
    for hidden in (".venv/lib/ws", "node_modules/x/ws", ".hidden/ws", "notebooks/node_modules/ws"):
        Workspace.create(root / hidden, DAISY).close()
    Workspace.create(root / "a" / "b" / "c" / "d" / "e" / "too_deep", DAISY).close()
    found = find_workspaces(root, "notebooks")
    assert found == ["notebooks/runs/wb-00-new/workspace", "notebooks/runs/wb-00-old/workspace", "ws"]
    assert find_workspaces(root, "") == ["ws", "notebooks/runs/wb-00-new/workspace", "notebooks/runs/wb-00-old/workspace"]
    assert find_workspaces(root, "notebooks", seconds=0.0) == []  # out of time: nothing, no error


def test_the_kernel_registry_names_the_notebooks_workspace(layout: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """workbench.open in a kernel records the workspace beside the kernel's connection file; the server
    reads it back for that kernel id, refusing malformed ids and never serving a folder outside the root."""
    from workbench.jupyter import _registry
    from workbench.jupyter.server import kernel_workspace

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    kid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    monkeypatch.setattr(_registry, "kernel_connection", lambda: (kid, runtime))
    assert kernel_workspace(layout["root"], runtime, kid) == {}
    written = _registry.register(layout["ws"])
    assert written == runtime / f"workbench-kernel-{kid}.json"
    assert kernel_workspace(layout["root"], runtime, kid) == {"workspace": "ws"}
    assert kernel_workspace(layout["root"], runtime, "another-kernel") == {}
    with pytest.raises(BadRequest):
        kernel_workspace(layout["root"], runtime, "../../etc/passwd")
    Workspace.create(layout["outside"] / "ws2", DAISY).close()
    _registry.register(layout["outside"] / "ws2")  # the same kernel opened another workspace, outside the root
    assert kernel_workspace(layout["root"], runtime, kid)["outside"] == "ws2"
    written.write_text("{not json")
    assert kernel_workspace(layout["root"], runtime, kid) == {}


def test_outside_a_kernel_nothing_is_registered(layout: dict[str, Path]) -> None:
    from workbench.jupyter import _registry

    assert _registry.kernel_connection() is None and _registry.register(layout["ws"]) is None


# ----------------------------------------------------------------------------------------- plain bodies


def test_parse_body_checks_size_shape_keys_and_types() -> None:
    fields = {"workspace": (str, True), "settings": (dict, False), "n": (int, False)}
    assert parse_body(b'{"workspace": "ws", "n": 2}', fields) == {"workspace": "ws", "n": 2}
    cases = [
        (b"x" * (_server.MAX_BODY_BYTES + 1), 413, "over the limit"),
        (b"[1, 2]", 400, "JSON object"),
        (b"{not json", 400, "not UTF-8 JSON"),
        (b"\xff\xfe", 400, "not UTF-8 JSON"),
        (b'{"workspace": "ws", "path": "../x"}', 400, "unknown field"),
        (b'{"n": 1}', 400, "'workspace' is required"),
        (b'{"workspace": 1}', 400, "must be str"),
        (b'{"workspace": "ws", "n": true}', 400, "must be int"),
    ]
    for raw, status, message in cases:
        with pytest.raises(BadRequest, match=message) as e:
            parse_body(raw, fields)
        assert e.value.status == status


def test_settings_overrides_are_validated_and_never_take_a_key(layout: dict[str, Path]) -> None:
    with Workspace.open(layout["ws"]) as ws:
        s = settings_with(ws, {"claude_model": "claude-test-1", "gate_max_loss": 0.02, "llm_max_image_edge": None})
        assert (s.claude_model, s.gate_max_loss, s.llm_max_image_edge) == ("claude-test-1", 0.02, ws.settings.llm_max_image_edge)
        assert settings_with(ws, None) is ws.settings
        with pytest.raises(BadRequest, match="api_key"):
            settings_with(ws, {"api_key": "sk-ant-canary-0123456789"})
        with pytest.raises(BadRequest, match="dataset"):
            settings_with(ws, {"dataset": "/"})
        with pytest.raises(BadRequest, match="llm_max_image_edge"):
            settings_with(ws, {"llm_max_image_edge": "big"})
        with pytest.raises(BadRequest, match="looks like an API key") as e:
            settings_with(ws, {"claude_model": "sk-ant-canary-0123456789"})
        assert "canary" not in str(e.value)  # the refusal does not echo the secret
    assert "canary" not in (layout["ws"] / "workbench.yaml").read_text()


# ----------------------------------------------------------------------------------------- plain views


def test_ontology_tree_lists_every_concept_with_its_metrics(layout: dict[str, Path]) -> None:
    ws_path = layout["ws"]
    (ws_path / "models" / "petal.json").write_text(json.dumps(
        {"concept": "petal", "metrics": {"val_balanced_accuracy": 0.875, "val_examples": 40, "fit_seconds": 1.0}}
    ))  # fmt: skip
    (ws_path / "models" / "stem.json").write_text("{broken")
    with Workspace.open(ws_path) as ws:
        tree = ontology_tree(ws)
        assert tree["root"] == DAISY.root and tree["name"] == DAISY.name
        assert tree["head"] == ws.head()
        by_id = {c["id"]: c for c in tree["concepts"]}
        assert set(by_id) == set(DAISY.concepts)
        assert tree["concepts"][0]["id"] == DAISY.root
        for cid, c in by_id.items():
            assert c["parts"] == list(DAISY.parts(cid))
            assert c["kind"] == DAISY.kind(cid)
            assert c["implementation"] == DAISY.concepts[cid].implementation
        assert by_id["petal"]["metrics"] == {"val_balanced_accuracy": 0.875, "val_examples": 40}
        assert by_id["stem"]["metrics"] is None  # a damaged sidecar is shown as "no metrics", not an error
        assert by_id["leaf"]["metrics"] is None


def test_history_lists_the_newest_change_first(layout: dict[str, Path]) -> None:
    with Workspace.open(layout["ws"]) as ws:
        ws.apply_edits([{"op": "describe", "id": "leaf", "description": "A green leaf."}],
                       message="Describe the leaf more plainly")  # fmt: skip
        entries = history_entries(ws)
        assert len(entries) >= 2
        text = json.dumps(entries[0])
        assert ws.last_commit in text
        assert "Describe the leaf more plainly" in text


# ----------------------------------------------------------------------------------------- the server


@pytest.fixture
def jp_server_config(layout: dict[str, Path]) -> dict:
    return {"ServerApp": {"jpserver_extensions": {"workbench.jupyter.server": True}, "root_dir": str(layout["root"])}}


@pytest.fixture
def jp_root_dir(layout: dict[str, Path]) -> Path:
    return layout["root"]


async def _get(jp_fetch, *path: str, **params: str) -> tuple[int, dict]:
    try:
        r = await jp_fetch("workbench", "api", *path, params=params, method="GET")
    except tornado.httpclient.HTTPClientError as e:
        assert e.response is not None
        return e.code, json.loads(e.response.body)
    return r.code, json.loads(r.body)


async def _post(jp_fetch, path: str, body: bytes | dict) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        r = await jp_fetch("workbench", "api", path, method="POST", body=raw)
    except tornado.httpclient.HTTPClientError as e:
        assert e.response is not None
        return e.code, json.loads(e.response.body)
    return r.code, json.loads(r.body)


async def test_server_serves_the_ontology_and_history(jp_fetch, layout: dict[str, Path]) -> None:
    code, data = await _get(jp_fetch, "workspaces", path="notebooks/..")
    assert code == 400 or code == 403  # '..' even when it would stay inside
    code, data = await _get(jp_fetch, "workspaces", path="")
    assert (code, data) == (200, {"workspaces": ["ws"], "kernel": {}})
    code, data = await _get(jp_fetch, "ontology", workspace="ws")
    assert code == 200
    assert {c["id"] for c in data["concepts"]} == set(DAISY.concepts)
    code, data = await _get(jp_fetch, "history", workspace="ws")
    assert code == 200 and len(data["history"]) == 1
    code, data = await _get(jp_fetch, "images", workspace="ws")
    assert (code, data) == (200, {"images": []})


async def test_server_refuses_hostile_workspace_paths_with_json_errors(jp_fetch, layout: dict[str, Path]) -> None:
    root, outside = layout["root"], layout["outside"]
    Workspace.create(outside / "ws2", DAISY).close()
    (root / "escape").symlink_to(outside / "ws2")
    before = _snapshot(root.parent)
    cases = [
        ("../outside/ws2", 403),
        (str(outside / "ws2"), 403),
        ("escape", 403),
        ("ws/.git", 403),
        ("notebooks", 404),
        ("ws\\..", 400),
    ]
    for rel, status in cases:
        for endpoint in ("ontology", "proposals", "history", "images"):
            code, data = await _get(jp_fetch, endpoint, workspace=rel)
            assert code == status, (endpoint, rel, data)
            assert data["status"] == status and rel.split("/")[0] in data["error"] or data["error"]
    code, data = await _get(jp_fetch, "ontology")
    assert code == 400 and "?workspace=" in data["error"]
    assert _snapshot(root.parent) == before


async def test_server_refuses_bad_posts_and_writes_nothing(jp_fetch, layout: dict[str, Path]) -> None:
    root = layout["root"]
    (layout["ws"] / "leak.png").symlink_to(layout["outside"] / "secret.txt")
    before = _snapshot(root.parent)
    cases = [
        (b"x" * (_server.MAX_BODY_BYTES + 10), 413),
        (b"[]", 400),
        (json.dumps({"workspace": "ws", "image": "a.png", "path": "/etc/passwd"}).encode(), 400),
        (json.dumps({"workspace": "../outside", "image": "a.png"}).encode(), 403),
        (json.dumps({"workspace": "ws", "image": "../../outside/secret.txt"}).encode(), 403),
        (json.dumps({"workspace": "ws", "image": "/etc/passwd"}).encode(), 403),
        (json.dumps({"workspace": "ws", "image": ".git/config"}).encode(), 403),
        (json.dumps({"workspace": "ws", "image": "leak.png"}).encode(), 403),
        (json.dumps({"workspace": "ws", "image": "x.png", "settings": {"api_key": "sk-ant-canary-0123456789"}}).encode(), 400),
    ]
    for raw, status in cases:
        code, data = await _post(jp_fetch, "suggest", raw)
        assert code == status, (raw[:80], data)
        assert data["status"] == status and data["error"]
    code, data = await _post(jp_fetch, "refactor", {"workspace": "ws/../..", "suggester": "scripted"})
    assert code == 403
    assert _snapshot(root.parent) == before
    assert "canary" not in json.dumps(_snapshot(root.parent))


async def test_server_needs_an_authenticated_user(jp_serverapp, http_server_client, jp_base_url) -> None:
    for method, body in (("GET", None), ("POST", b"{}")):
        url = f"{jp_base_url}workbench/api/{'ontology?workspace=ws' if method == 'GET' else 'suggest'}"
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            await http_server_client.fetch(url, method=method, body=body)
        assert e.value.code == 403


def test_extension_points_name_this_module() -> None:
    assert _server._jupyter_server_extension_points() == [{"module": "workbench.jupyter.server"}]
    config = json.loads((REPO / "jupyter-config" / "jupyter_server_config.d" / "workbench.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"workbench.jupyter.server": True}}}


@pytest.fixture
def data_layout(layout: dict[str, Path]) -> dict[str, Path]:
    """Like ``layout``, with a generated data set in the root and a workspace ``dws`` pointing at it."""
    from workbench.data.datasets import generate_demo
    from workbench.workspace.settings import Settings

    root = layout["root"]
    generate_demo(root / "data", n_per_class=1, size=64, seed=3)
    Workspace.create(root / "dws", DAISY, Settings(dataset="../data")).close()
    return {**layout, "dws": root / "dws", "data": root / "data"}


async def test_suggest_saves_a_proposal_the_panel_lists_with_its_cells(jp_fetch, data_layout: dict[str, Path],
                                                                      monkeypatch) -> None:  # fmt: skip
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # the scripted suggester, no network
    image = sorted(p.relative_to(data_layout["data"]).as_posix() for p in (data_layout["data"] / "daisy").glob("*.png")
                   if not p.name.endswith(".parts.png"))[0]  # fmt: skip
    outside_before = _snapshot(data_layout["outside"])
    code, data = await _post(jp_fetch, "suggest", {"workspace": "dws", "image": image,
                                                   "settings": {"claude_model": "claude-test-1"}})  # fmt: skip
    assert code == 200, data
    pid = data["proposal"]["id"]
    assert data["proposal"]["author"].startswith("scripted:")
    assert (data_layout["dws"] / "proposals" / f"{pid}.yaml").is_file()
    code, data = await _get(jp_fetch, "proposals", workspace="dws")
    assert code == 200
    (listed,) = [p for p in data["proposals"] if p["id"] == pid]
    assert listed["status"] == "pending" and listed["edits"] >= 1 and listed["stale"] is False
    code, detail = await _get(jp_fetch, "proposals", pid, workspace="dws")
    assert code == 200 and detail["id"] == pid
    code_cells = [c for c in detail["cells"] if c["cell_type"] == "code"]  # rendered by workbench.review.cells
    assert any(f'proposals/{pid}.yaml' in c["source"] for c in code_cells)
    assert all(c["metadata"]["workbench"]["proposal"] == pid for c in detail["cells"])
    assert detail["diff"] and "+" in detail["diff"]
    code, data = await _get(jp_fetch, "proposals", "9999", workspace="dws")
    assert code == 404 and data["error"]
    code, data = await _get(jp_fetch, "proposals", workspace="dws", status="merged")
    assert code == 400 and "unknown status" in data["error"]
    code, data = await _post(jp_fetch, "refactor", {"workspace": "dws"})
    assert code in (200, 422), data  # the script may hold no refactor before more suggestions
    if code == 200:
        assert data["proposal"]["kind"] == "refactor"
    assert _snapshot(data_layout["outside"]) == outside_before


async def test_why_traces_a_concept_to_the_change_that_introduced_it(jp_fetch, layout: dict[str, Path]) -> None:
    with Workspace.open(layout["ws"]) as ws:
        ws.apply_edits([{"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"]}],
                       message="Add the sepal under the flower head")  # fmt: skip
        sha = ws.last_commit
    code, data = await _get(jp_fetch, "why", workspace="ws", concept="sepal")
    assert code == 200, data
    assert data["concept"] == "sepal" and data["introduced"]["sha"] == sha
    assert "Add the sepal under the flower head" in data["summary"]  # what the panel shows
    for bad in ("../x", "Sepal", "", "a" * 80):
        code, data = await _get(jp_fetch, "why", workspace="ws", concept=bad)
        assert code == 400 and "concept id" in data["error"]


async def test_suggest_never_reads_images_outside_the_jupyter_root(jp_fetch, layout: dict[str, Path]) -> None:
    """A workspace whose data set setting points outside the root cannot make the server read (or send
    to a model) an image there."""
    from workbench.data.datasets import generate_demo
    from workbench.workspace.settings import Settings

    generate_demo(layout["outside"] / "data", n_per_class=1, size=64, seed=3)
    Workspace.create(layout["root"] / "ows", DAISY, Settings(dataset=str(layout["outside"] / "data"))).close()
    image = next(p for p in (layout["outside"] / "data" / "daisy").glob("*.png") if not p.name.endswith(".parts.png"))
    before = _snapshot(layout["root"])
    code, data = await _post(jp_fetch, "suggest", {"workspace": "ows", "image": f"daisy/{image.name}"})
    assert code == 403 and "outside the Jupyter root" in data["error"]
    assert _snapshot(layout["root"]) == before


async def test_gate_records_a_verdict_in_a_pending_proposal(jp_fetch, layout: dict[str, Path]) -> None:
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    with Workspace.open(layout["ws"]) as ws:
        p = ProposalStore(ws).save(make_proposal(
            ws.ontology, [{"op": {"op": "describe", "id": "leaf", "description": "A matte green leaf."}}],
            kind="person", author="person:test", title="Plainer leaf"))  # fmt: skip
        settings_before = (layout["ws"] / "workbench.yaml").read_bytes()
    for body, status in [
        ({"workspace": "ws", "proposal": "../0001"}, 400),
        ({"workspace": "ws", "proposal": "0099"}, 404),
        ({"workspace": "ws", "proposal": p.id, "settings": {"gate_max_loss": "lots"}}, 400),
        ({"workspace": "ws", "proposal": p.id, "settings": {"segmenter": "sam"}}, 400),
    ]:
        code, data = await _post(jp_fetch, "gate", body)
        assert code == status, (body, data)
    code, data = await _post(jp_fetch, "gate", {"workspace": "ws", "proposal": p.id, "settings": {"gate_max_loss": 0.05}})
    assert code == 200, data
    assert data["gate"]["decision"] in ("merge", "reject", "inconclusive")
    with Workspace.open(layout["ws"]) as ws:
        saved = ProposalStore(ws).load(p.id)
        assert saved.gate is not None and saved.gate["decision"] == data["gate"]["decision"]
        assert saved.status == "pending"
    assert (layout["ws"] / "workbench.yaml").read_bytes() == settings_before  # the override was not saved
    code, data = await _get(jp_fetch, "proposals", workspace="ws")
    assert data["proposals"][0]["gate"]["decision"] == saved.gate["decision"]


async def test_the_state_stamp_changes_when_a_proposal_is_saved(jp_fetch, layout: dict[str, Path]) -> None:
    """The sidebar polls this stamp and re-reads the workspace only when it changes."""
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    code, first = await _get(jp_fetch, "state", workspace="ws")
    assert code == 200 and first["stamp"]
    assert (await _get(jp_fetch, "state", workspace="ws"))[1] == first  # nothing changed: the same stamp
    with Workspace.open(layout["ws"]) as ws:
        ProposalStore(ws).save(make_proposal(ws.ontology, [{"op": {"op": "describe", "id": "petal", "description": "white"},
                                                            "rationale": "r"}], kind="person", author="person:t",
                                             title="t"))  # fmt: skip
    code, second = await _get(jp_fetch, "state", workspace="ws")
    assert code == 200 and second["stamp"] != first["stamp"]
    code, refused = await _get(jp_fetch, "state", workspace="../outside")
    assert code == 403 and refused["error"]


async def test_the_concept_card_has_examples_metrics_and_its_origin(jp_fetch, data_layout: dict[str, Path]) -> None:
    from workbench.data.datasets import ImageFolder
    from workbench.data.labelers import label_from_masks
    from workbench.data.segment import WeightFreeSegmenter, segment_dataset

    with Workspace.open(data_layout["dws"]) as ws:
        segment_dataset(ws.store, ImageFolder(data_layout["data"]), WeightFreeSegmenter(), progress=False)
        label_from_masks(ws.store, ImageFolder(data_layout["data"]), ws.ontology)
        n_petal = ws.store.counts().get("petal", 0)
    assert n_petal > 0
    code, card = await _get(jp_fetch, "concept", workspace="dws", concept="petal")
    assert code == 200, card
    assert card["id"] == "petal" and card["kind"] == "part" and card["parents"] == ["flower_head"]
    assert card["labelled"] == n_petal and 1 <= len(card["examples"]) <= 6
    assert all(e["src"].startswith("data:image/png;base64,") for e in card["examples"])
    assert card["metrics"] is None and card["status"] is None  # not trained yet: said, not invented
    assert "petal" in card["why"]
    for bad, status in (("Petal", 400), ("sepal", 404), ("../x", 400)):
        code, data = await _get(jp_fetch, "concept", workspace="dws", concept=bad)
        assert code == status and data["error"]


async def test_workspaces_puts_the_kernels_workspace_first(jp_fetch, jp_serverapp, layout: dict[str, Path]) -> None:
    """What the sidebar asks with the notebook's kernel id: the workspace workbench.open recorded for it."""
    from workbench.jupyter import _registry

    root = layout["root"]
    Workspace.create(root / "notebooks" / "runs" / "wb-00-x" / "workspace", DAISY).close()
    kid = "1a2b3c4d-0000-1111-2222-333344445555"
    runtime = Path(jp_serverapp.kernel_manager.connection_dir)
    runtime.mkdir(parents=True, exist_ok=True)
    entry = _registry.entry_path(runtime, kid)
    entry.write_text(json.dumps({"workspace": str(root / "notebooks" / "runs" / "wb-00-x" / "workspace")}))
    try:
        code, data = await _get(jp_fetch, "workspaces", path="", kernel=kid)
        assert code == 200, data
        assert data["workspaces"][0] == "notebooks/runs/wb-00-x/workspace" and "ws" in data["workspaces"]
        assert data["kernel"] == {"workspace": "notebooks/runs/wb-00-x/workspace"}
        code, data = await _get(jp_fetch, "workspaces", path="", kernel="../../x")
        assert code == 400
    finally:
        entry.unlink()


async def test_proposals_carry_their_review_and_a_review_can_be_asked_for(jp_fetch, data_layout: dict[str, Path],
                                                                         monkeypatch) -> None:  # fmt: skip
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    image = sorted(p.relative_to(data_layout["data"]).as_posix() for p in (data_layout["data"] / "daisy").glob("*.png")
                   if not p.name.endswith(".parts.png"))[0]  # fmt: skip
    code, data = await _post(jp_fetch, "suggest", {"workspace": "dws", "image": image})
    assert code == 200, data
    pid = data["proposal"]["id"]
    review = data["proposal"]["review"]  # reviewed when saved (the default reviewer: scripted)
    assert review["scripted"] is True and review["reviewer"] == "scripted:daisy.reviews.yaml"
    code, data = await _get(jp_fetch, "proposals", workspace="dws")
    (listed,) = [p for p in data["proposals"] if p["id"] == pid]
    assert listed["review"]["scripted"] and set(listed["review"]["counts"]) == {"serious", "warning", "info"}
    assert all({"kind", "severity", "message"} <= set(f) for f in listed["review"]["findings"])
    code, detail = await _get(jp_fetch, "proposals", pid, workspace="dws")
    assert detail["review"]["reviewer"] == listed["review"]["reviewer"] and "exchange" not in detail["review"]
    path = data_layout["dws"] / "proposals" / f"{pid}.yaml"
    text = path.read_text()
    edits = text[text.index("edits:"):text.index("decisions:")]
    ontology = (data_layout["dws"] / "ontology.yaml").read_bytes()
    code, data = await _post(jp_fetch, "review", {"workspace": "dws", "proposal": pid, "reviewer": "scripted"})
    assert code == 200 and data["review"]["reviewer"] == "scripted:daisy.reviews.yaml"
    after = path.read_text()
    assert after[after.index("edits:"):after.index("decisions:")] == edits and "status: pending" in after
    assert (data_layout["dws"] / "ontology.yaml").read_bytes() == ontology
    code, data = await _post(jp_fetch, "review", {"workspace": "dws", "proposal": pid, "reviewer": "oracle"})
    assert code == 400 and "unknown reviewer" in data["error"]
    code, data = await _post(jp_fetch, "review", {"workspace": "dws", "proposal": "../x"})
    assert code == 400
    code, data = await _post(jp_fetch, "review", {"workspace": "dws", "proposal": pid, "decision": "accept"})
    assert code == 400 and "unknown field" in data["error"]


def test_the_ontology_tree_and_card_mark_provisional_concepts(layout: dict[str, Path]) -> None:
    from workbench.jupyter.server import concept_card, ontology_tree

    ws = Workspace.open(layout["root"] / "ws")
    try:
        assert not any(c["provisional"] for c in ontology_tree(ws)["concepts"])
        # a concept accepted after the first train is provisional (ontology.yaml version 2, `provisional: true`)
        text = ws.ontology_path.read_text().replace("version: 1", "version: 2", 1)
        text = text.replace("- id: petal\n", "- id: petal\n  provisional: true\n", 1)
        ws.ontology_path.write_text(text)
        ws.close()
        ws = Workspace.open(layout["root"] / "ws")
        assert {c["id"] for c in ontology_tree(ws)["concepts"] if c["provisional"]} == {"petal"}
        assert concept_card(ws, "petal")["provisional"] is True and concept_card(ws, "leaf")["provisional"] is False
    finally:
        ws.close()
