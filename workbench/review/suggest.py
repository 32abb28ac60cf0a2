"""Suggesters: who proposes ontology edits for an image (``suggest``) or for the whole history (``refactor``).

Every suggester returns a :class:`~workbench.review.proposals.Proposal` (validated, pending); none writes
the ontology. They are registered by name in :data:`SUGGESTERS` and built with :func:`make_suggester`:

==========  ==========================================================================================
name        what it is
==========  ==========================================================================================
scripted    :class:`ScriptedSuggester`: plays steps authored by hand in a YAML file (e.g. the shipped
            ``ontologies/daisy.suggestions.yaml``), so demos run without a key. Named for what it
            is: its proposals say ``author: scripted:<file>``, never a model.
claude      :class:`workbench.review.claude.ClaudeSuggester` (imported only when asked for).
replay      :class:`ReplaySuggester`: replays the recorded exchange of saved proposals, offline.
==========  ==========================================================================================

>>> from workbench.ontology.graph import Ontology
>>> s = make_suggester("scripted")
>>> seed = Ontology.load(SHIPPED_SEED)
>>> p = s.suggest(seed, None, SuggestContext(image_id="daisy/0000.png"))
>>> p.author, [e.summary() for e in p.edits]
('scripted:daisy.suggestions.yaml', ['add_concept flower_head', 'add_concept petal', 'add_concept center'])
>>> s.refactor(seed, []).title.startswith("Refactor after three images")
True
"""
from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from workbench._yaml import read_yaml_file
from workbench.data.datasets import load_image
from workbench.errors import ProposalError, SuggesterError
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_file
from workbench.review.claude import ClaudeSuggester, parse_response
from workbench.review.decisions import accept
from workbench.review.proposals import Evidence, Proposal, make_proposal
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = [
    "Suggester",
    "SuggestContext",
    "SUGGESTERS",
    "make_suggester",
    "register_suggester",
    "ScriptedSuggester",
    "ScriptStep",
    "ReplaySuggester",
    "SHIPPED_SCRIPT",
    "SHIPPED_SEED",
    "suggest_images",
    "image_context",
    "refactor_workspace",
    "play_script",
]



#: The shipped scripted suggestions and the one-concept ontology they start from.
SHIPPED_SCRIPT = shipped_file("daisy.suggestions.yaml")
SHIPPED_SEED = shipped_file("daisy.seed.yaml")


@dataclass(frozen=True)
class SuggestContext:
    """What a suggester is told about the image besides its pixels (all optional, all data)."""

    image_id: str | None = None  #: data-set record id ("daisy/0003.png") or workspace-relative path
    image_sha256: str | None = None  #: sha256 of the image file
    class_label: str | None = None  #: the image's class, when known
    note: str = ""  #: a person's note for the suggester


@runtime_checkable
class Suggester(Protocol):
    """Proposes edits; never applies them."""

    name: str

    def suggest(self, ontology: Ontology, image: Any, context: SuggestContext) -> Proposal:
        """Edits that would let ``ontology`` account for ``image`` (an RGB array; scripted ones ignore it)."""
        ...

    def refactor(self, ontology: Ontology, history: Sequence[Proposal]) -> Proposal:
        """Merges, renames, splits, removals that keep ``ontology`` compact, given the proposals so far."""
        ...


# --------------------------------------------------------------------------------------------- scripted
@dataclass(frozen=True)
class ScriptStep:
    """One authored step of a script: a per-image suggestion or a refactor."""

    index: int
    kind: str  #: "suggest" | "refactor"
    title: str
    rationale: str
    edits: tuple[dict, ...]  #: {"op": {...}, "rationale": "..."}
    image: str | None = None  #: the record it was written for (suggest steps)


_STEP_KEYS = ("kind", "image", "title", "rationale", "edits")
_SCRIPT_KEYS = ("format", "name", "scripted", "seed", "target", "steps")


def _load_script(path: Path) -> tuple[dict, list[ScriptStep]]:
    data = read_yaml_file(path, SuggesterError)
    src = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise SuggesterError(f"{src}: a suggestions script is a mapping with a `steps:` list")
    for k in data:
        if k not in _SCRIPT_KEYS:
            raise SuggesterError(f"{src}: unknown key {k!r} (allowed: {', '.join(_SCRIPT_KEYS)})")
    if data.get("format", 1) != 1:
        raise SuggesterError(f"{src}: unsupported script format {data.get('format')!r} (this workbench reads 1)")
    steps = []
    for i, s in enumerate(data["steps"]):
        where = f"{src}: steps[{i}]"
        if not isinstance(s, dict):
            raise SuggesterError(f"{where}: each step is a mapping with {', '.join(_STEP_KEYS)}")
        for k in s:
            if k not in _STEP_KEYS:
                raise SuggesterError(f"{where}: unknown key {k!r} (allowed: {', '.join(_STEP_KEYS)})")
        if s.get("kind") not in ("suggest", "refactor"):
            raise SuggesterError(f"{where}: `kind` must be suggest or refactor, got {s.get('kind')!r}")
        edits = s.get("edits")
        if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
            raise SuggesterError(f"{where}: `edits` must be a list of {{op: ..., rationale: ...}} mappings")
        for k in ("title", "rationale", "image"):
            if s.get(k) is not None and not isinstance(s[k], str):
                raise SuggesterError(f"{where}: `{k}` must be text")
        steps.append(ScriptStep(i, s["kind"], s.get("title") or "", s.get("rationale") or "", tuple(edits),
                                s.get("image")))
    return data, steps


class ScriptedSuggester:
    """Plays the steps of an authored YAML script, in order, as proposals (no model involved).

    ``suggest`` plays the suggest step written for ``context.image_id`` if there is an unplayed one,
    else the next unplayed suggest step; ``refactor`` plays the next unplayed refactor step. With a
    ``workspace``, steps already saved there as proposals by this script count as played, so
    separate ``workbench suggest`` runs go on where the last one stopped. When the script is used up
    the proposal has no edits and its title says so. The pixels are not looked at.
    """

    def __init__(self, path: str | Path = SHIPPED_SCRIPT, workspace: Workspace | None = None):
        self.path = Path(path)
        self.meta, self.steps = _load_script(self.path)
        self.name = f"scripted:{self.path.name}"
        self.workspace = workspace
        self._played: set[int] = set()

    def __repr__(self) -> str:
        return f"ScriptedSuggester({str(self.path)!r})"

    def played(self) -> set[int]:
        """Indices of the steps played by this object or saved in the workspace by this script."""
        done = set(self._played)
        if self.workspace is not None:
            for p in ProposalStore(self.workspace).list():
                step = _script_step(p)
                if p.author == self.name and step is not None:
                    done.add(step)
        return done

    def remaining(self, kind: str | None = None) -> list[ScriptStep]:
        done = self.played()
        return [s for s in self.steps if s.index not in done and (kind is None or s.kind == kind)]

    def play(self, step: ScriptStep, ontology: Ontology, context: SuggestContext | None = None) -> Proposal:
        """The proposal of one step against ``ontology`` (marks it played)."""
        context = context or SuggestContext()
        self._played.add(step.index)
        image = context.image_id or step.image
        return make_proposal(
            ontology, list(step.edits), kind=step.kind, author=self.name, title=step.title, rationale=step.rationale,
            evidence=Evidence(image=image, image_sha256=context.image_sha256) if step.kind == "suggest" else Evidence(),
            exchange={"request": {"script": self.path.name, "step": step.index, "image": image},
                      "response": {"title": step.title, "rationale": step.rationale, "edits": list(step.edits)}},
        )

    def suggest(self, ontology: Ontology, image: Any = None, context: SuggestContext | None = None) -> Proposal:
        context = context or SuggestContext()
        todo = self.remaining("suggest")
        match = [s for s in todo if context.image_id is not None and s.image == context.image_id]
        if match or todo:
            return self.play((match or todo)[0], ontology, context)
        return self._empty(ontology, "suggest", context)

    def refactor(self, ontology: Ontology, history: Sequence[Proposal] = ()) -> Proposal:
        todo = self.remaining("refactor")
        if todo:
            return self.play(todo[0], ontology)
        return self._empty(ontology, "refactor", SuggestContext())

    def _empty(self, ontology: Ontology, kind: str, context: SuggestContext) -> Proposal:
        return make_proposal(ontology, [], kind=kind, author=self.name,
                             title=f"{self.path.name}: no scripted {kind} step left",
                             rationale="Every step of this script has been played.",
                             evidence=Evidence(image=context.image_id, image_sha256=context.image_sha256))


def _script_step(p: Proposal) -> int | None:
    req = (p.exchange or {}).get("request") if isinstance(p.exchange, Mapping) else None
    step = req.get("step") if isinstance(req, Mapping) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def play_script(
    ws: Workspace, script: str | Path = SHIPPED_SCRIPT, *, by: str, refactor: bool = True,
    on_step: Callable[[Proposal], None] | None = None,
) -> list[Proposal]:
    """Play every step of a script into workspace ``ws``, each saved and accepted by ``by``.

    ``refactor=False`` skips the refactor steps (the growth-without-refactor benchmark). Returns the
    decided proposals. Refactor steps come from :meth:`ScriptedSuggester.refactor` and suggest steps
    from :meth:`ScriptedSuggester.suggest`, exactly as the CLI plays them.
    """
    s = ScriptedSuggester(script, workspace=ws)
    store = ProposalStore(ws)
    out = []
    for step in s.steps:
        if step.kind == "refactor" and not refactor:
            continue
        p = s.play(step, ws.ontology, SuggestContext(image_id=step.image))
        p = store.save(p)
        if p.valid_edits:
            p = accept(ws, p, p.valid_edits, by=by)
        out.append(p)
        if on_step is not None:
            on_step(p)
    return out


# ----------------------------------------------------------------------------------------------- replay
class ReplaySuggester:
    """Replays saved proposals offline: the recorded exchange, parsed again against the given ontology.

    ``proposal_files``: :class:`Proposal` objects, paths to proposal YAML files, or (with
    ``workspace``) refs such as ``"0007"``. ``suggest`` replays the next recorded suggest proposal
    (or the one made for ``context.image_id``), ``refactor`` the next refactor. A Claude proposal
    (author ``claude:...``) is re-parsed from its recorded response by
    :func:`workbench.review.claude.parse_response` (no network); any other is re-played from its stored
    edits. Same recording, same ontology → the same edits, problems and lint.
    """

    name = "replay"

    def __init__(self, proposal_files: Sequence[Any], workspace: Workspace | None = None):
        self.workspace = workspace
        self.recorded: list[Proposal] = [self._load(x) for x in proposal_files]
        self._used: set[int] = set()

    def __repr__(self) -> str:
        return f"ReplaySuggester({len(self.recorded)} recorded)"

    def _load(self, ref: Any) -> Proposal:
        if isinstance(ref, Proposal):
            return ref
        if self.workspace is not None:
            try:
                return ProposalStore(self.workspace).load(ref)
            except ProposalError:
                if not Path(str(ref)).is_file():
                    raise
        path = Path(ref)
        try:
            return Proposal.from_dict(read_yaml_file(path, ProposalError), str(path))
        except ProposalError as e:
            raise SuggesterError(f"replay: cannot read {path}: {e}") from None

    def _next(self, kinds: tuple[str, ...], image_id: str | None = None) -> Proposal | None:
        todo = [(i, p) for i, p in enumerate(self.recorded) if i not in self._used and p.kind in kinds]
        match = [(i, p) for i, p in todo if image_id is not None and p.evidence.image == image_id]
        pick = (match or todo or [None])[0]
        if pick is None:
            return None
        self._used.add(pick[0])
        return pick[1]

    def replay(self, ontology: Ontology, recorded: Proposal) -> Proposal:
        """The proposal ``recorded`` reproduced against ``ontology`` from its recording."""
        if recorded.author.startswith("claude:"):
            response = (recorded.exchange or {}).get("response") if isinstance(recorded.exchange, Mapping) else None
            if not isinstance(response, Mapping):
                raise SuggesterError(f"{recorded.ref}: no recorded response to replay (exchange.response missing)")
            kwargs = {"author": recorded.author, "evidence": recorded.evidence, "exchange": recorded.exchange,
                      "kind": recorded.kind, "title": recorded.title}
            accepted = inspect.signature(parse_response).parameters
            return parse_response(ontology, response, **{k: v for k, v in kwargs.items() if k in accepted})
        raw = [{"op": e.op, "rationale": e.rationale} for e in recorded.edits]
        return make_proposal(ontology, raw, kind=recorded.kind, author=recorded.author, title=recorded.title,
                             rationale=recorded.rationale, evidence=recorded.evidence, exchange=recorded.exchange)

    def suggest(self, ontology: Ontology, image: Any = None, context: SuggestContext | None = None) -> Proposal:
        context = context or SuggestContext()
        rec = self._next(("suggest",), context.image_id)
        if rec is None:
            raise SuggesterError("replay: no recorded suggest proposal left to replay")
        return self.replay(ontology, rec)

    def refactor(self, ontology: Ontology, history: Sequence[Proposal] = ()) -> Proposal:
        rec = self._next(("refactor",))
        if rec is None:
            raise SuggesterError("replay: no recorded refactor proposal left to replay")
        return self.replay(ontology, rec)


# --------------------------------------------------------------------------------------------- registry
def _scripted(workspace: Workspace | None = None, path: str | Path | None = None, **options: Any) -> ScriptedSuggester:
    if options:
        raise SuggesterError(f"scripted suggester: unknown option(s) {', '.join(sorted(options))} (it takes path)")
    return ScriptedSuggester(path or SHIPPED_SCRIPT, workspace=workspace)


def _claude(workspace: Workspace | None = None, **options: Any) -> Suggester:
    if workspace is not None:
        options.setdefault("model", workspace.settings.claude_model)
        options.setdefault("max_image_edge", workspace.settings.llm_max_image_edge)
    return ClaudeSuggester(**options)


def _replay(workspace: Workspace | None = None, proposal_files: Sequence[Any] | None = None, **options: Any) -> ReplaySuggester:
    if options:
        raise SuggesterError(f"replay suggester: unknown option(s) {', '.join(sorted(options))} (it takes proposal_files)")
    if proposal_files is None:
        if workspace is None:
            raise SuggesterError("replay needs proposal_files (saved proposals to replay) or a workspace")
        proposal_files = [p for p in ProposalStore(workspace).list() if p.exchange]
    return ReplaySuggester(proposal_files, workspace=workspace)


#: Suggester factories by name: ``factory(workspace=None, **options) -> Suggester``.
SUGGESTERS: dict[str, Callable[..., Suggester]] = {"scripted": _scripted, "claude": _claude, "replay": _replay}


def register_suggester(name: str, factory: Callable[..., Suggester]) -> None:
    """Add a suggester under ``name`` (a plugin's own provider)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise SuggesterError(f"a suggester name is an identifier, got {name!r}")
    SUGGESTERS[name] = factory


def make_suggester(name: str, workspace: Workspace | None = None, **options: Any) -> Suggester:
    """Build the suggester registered as ``name`` ("scripted", "claude", "replay")."""
    if name not in SUGGESTERS:
        raise SuggesterError(f"unknown suggester {name!r}; choose one of {', '.join(SUGGESTERS)}")
    return SUGGESTERS[name](workspace=workspace, **options)


# ------------------------------------------------------------------------------------------- workspace
def image_context(ws: Workspace, path: Path) -> SuggestContext:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    image_id = None
    root = getattr(ws.settings, "dataset", None)
    candidates = ([Path(root).expanduser()] if root else []) + [Path(ws.path)]
    for base in candidates:
        try:
            image_id = path.resolve().relative_to(base.resolve()).as_posix()
            break
        except ValueError:
            continue
    if image_id is None:
        image_id = "/".join(path.parts[-2:])  # <class>/<name>, the data-set record id form
    cls = image_id.split("/")[0] if "/" in image_id else None
    return SuggestContext(image_id=image_id, image_sha256=sha, class_label=cls)


def suggest_images(ws: Workspace, suggester: Suggester, images: Sequence[str | Path], *, save: bool = True) -> list[Proposal]:
    """One ``suggest`` per image file against the workspace's current ontology; saved (unless ``save=False``).

    A proposal with no edits (e.g. a used-up script) is returned but not saved.
    """
    out = []
    for img in images:
        path = Path(img)
        context = image_context(ws, path)
        pixels = load_image(path)
        p = suggester.suggest(ws.ontology, pixels, context)
        if save and p.edits:
            p = ProposalStore(ws).save(p)
        out.append(p)
    return out


def refactor_workspace(ws: Workspace, suggester: Suggester, *, save: bool = True) -> Proposal:
    """One ``refactor`` over the workspace's proposal history; saved unless it has no edits."""
    history = ProposalStore(ws).list()
    p = suggester.refactor(ws.ontology, history)
    if save and p.edits:
        p = ProposalStore(ws).save(p)
    return p

