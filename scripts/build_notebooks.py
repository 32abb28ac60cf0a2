"""Write the notebooks under ``notebooks/`` from the cell sources below (run: ``python scripts/build_notebooks.py``).

The notebooks are generated, not hand-edited, so that they stay clean in git: no outputs, no
execution counts, stable cell ids (``seg-03``...), and the same kernel metadata. A code cell marked
``# NBVAL_CHECK_OUTPUT`` here carries its expected stdout (``expect``, written by hand, never captured
from a run); it is written as ``with expect_output(expected):`` around the printing code, so a wrong
value fails the nbval run without any output stored in the notebook.

Usage::

    python scripts/build_notebooks.py            # (re)write every notebook
    python scripts/build_notebooks.py 02 03      # only those whose name starts with 02 or 03
    python scripts/build_notebooks.py --check    # exit 1 when a committed notebook differs from its source here
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat import v4

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT"

KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def md(cid: str, text: str) -> dict:
    return {"type": "markdown", "id": cid, "source": text.strip("\n")}


def code(cid: str, text: str, expect: str | None = None) -> dict:
    """A code cell; ``expect``: the exact stdout of a cell marked ``# NBVAL_CHECK_OUTPUT``."""
    src = text.strip("\n")
    if (expect is not None) != (CHECK in src):
        raise ValueError(f"cell {cid}: give `expect` exactly when the source holds {CHECK}")
    return {"type": "code", "id": cid, "source": src, "expect": expect}


def _checked(src: str, expect: str) -> str:
    """The cell with its printed output checked in code (committed notebooks carry no outputs): a
    whole-line marker checks the rest of the cell, a trailing one that line only."""
    lines = src.split("\n")
    head = "from workbench.jupyter.session import expect_output\n"
    if lines[0].strip() == CHECK:
        body = lines[1:]
        before: list[str] = []
    else:
        i = next(k for k, line in enumerate(lines) if line.rstrip().endswith(CHECK))
        before, body, after = lines[:i], [lines[i].rstrip()[: -len(CHECK)].rstrip()], lines[i + 1:]
        if after:
            raise ValueError(f"a trailing {CHECK} must be on the cell's last line")
    block = [f"with expect_output({expect!r}):  # checked when the notebook is tested"]
    block += ["    " + line if line.strip() else line for line in body]
    return "\n".join(before + [head.rstrip()] + block) if before else head + "\n".join(block)


def build(cells: list[dict]) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.metadata = dict(KERNEL)
    seen: set[str] = set()
    for n, c in enumerate(cells, start=1):
        if c["id"] in seen:
            raise ValueError(f"duplicate cell id {c['id']}")
        seen.add(c["id"])
        if c["type"] == "markdown":
            cell = v4.new_markdown_cell(c["source"], id=c["id"])
        else:
            cell = v4.new_code_cell(c["source"], id=c["id"])
            if c["expect"] is not None:
                cell.source = _checked(c["source"], c["expect"])
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


# ------------------------------------------------------------------------------------------ shared
SETUP_NOTE = """
Everything this notebook writes goes into a new temporary folder (set the environment variable
`WORKBENCH_NOTEBOOK_DIR` to a folder of yours to keep the results). Nothing needs a network, a key
or a GPU.
"""


def final_cell(cid: str, close: str = "ws.close()") -> dict:
    return code(cid, f'''
{close}
if not _base:   # a temporary folder of this run only: remove it (set WORKBENCH_NOTEBOOK_DIR to keep results)
    import shutil

    shutil.rmtree(HERE, ignore_errors=True)
print(f"done in {{time.perf_counter() - T0:.0f}} s")
''')


def setup_cell(cid: str, tag: str, extra_imports: str = "", keep: bool = False) -> dict:
    """The first code cell: imports, the clock, and ``HERE``, a new folder for this run. ``keep``: the
    folder lies in ``runs/`` next to the notebook (inside what JupyterLab serves, so the sidebar can
    show its workspace) and stays after the run; otherwise it is a temporary folder the last cell deletes."""
    if keep:
        where = '''# a new folder for this run, kept after it: in runs/ next to this notebook (inside the folder JupyterLab
# serves, so the Workbench sidebar can show its workspace), or inside $WORKBENCH_NOTEBOOK_DIR when set
_base = os.environ.get("WORKBENCH_NOTEBOOK_DIR") or "runs"
os.makedirs(_base, exist_ok=True)
HERE = Path(tempfile.mkdtemp(prefix="wb-{tag}-", dir=_base)).resolve()'''
    else:
        where = '''# a new folder for this run (inside $WORKBENCH_NOTEBOOK_DIR when set, else the system's temp folder)
_base = os.environ.get("WORKBENCH_NOTEBOOK_DIR")
if _base:
    os.makedirs(_base, exist_ok=True)
HERE = Path(tempfile.mkdtemp(prefix="wb-{tag}-", dir=_base))'''
    return code(cid, f'''
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from IPython.display import HTML, SVG, display
from PIL import Image

import workbench
{extra_imports}
T0 = time.perf_counter()
{where.replace("{tag}", tag)}
print("workbench", workbench.__version__, "- writing to", HERE)
'''.replace("\n\n\nT0", "\n\nT0"))


HTML_TABLE = '''
import html as _html


def table(rows, head):
    """A small HTML table; every value is escaped (concept names and labels are data)."""
    th = "".join(f"<th>{_html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return HTML(f"<table><tr>{th}</tr>{trs}</table>")


def pct(v):
    return "–" if v is None else f"{v:.1%}"
'''


# ----------------------------------------------------------------------------------------------- 00 tour
NB00 = [
    md("tour-01", """
# 00 · A tour of the Constructability Workbench

A classifier you can read, review and edit: an **ontology** of visual concepts (a daisy has a flower
head, a stem and leaves; a flower head has petals and a disk), **one tiny model per concept** (a net of
under 1,000 parameters, or a plain-code rule), composed bottom-up, and **every change to it a
reviewed diff**, like a pull request. This tour runs the whole loop on a small generated data set in
about a minute:

1. grow the ontology from one concept, with suggestions you review,
2. cut the images into segments,
3. label segments: most from the data set's ground-truth masks, the rest by hand in the labeler,
4. train one model per concept, and compose them,
5. see why it says "daisy", and compare it with an end-to-end CNN,
6. propose a refactor, let the merge gate test it, and merge it.

Each stage has its own notebook (01 to 04) that goes deeper. No key, network or GPU is needed. With
`ANTHROPIC_API_KEY` set, step 1 also shows what Claude proposes.

Everything this notebook writes goes into a new folder in `runs/` next to it (or inside
`WORKBENCH_NOTEBOOK_DIR` when that is set), and **stays there** after Run All: the labeler, the review
widget and the JupyterLab sidebar keep working on it. The last cell deletes it only when you ask.
"""),
    setup_cell("tour-02", "00", keep=True),
    code("tour-03", """
from workbench.data.datasets import generate_demo
from workbench.ontology.graph import Ontology
from workbench.workspace.settings import Settings
from workbench.review.suggest import SHIPPED_SEED
from workbench.workspace.folder import Workspace

folder = generate_demo(HERE / "data", n_per_class=20, seed=0)    # 20 daisies, 20 not-daisies, with part masks
Workspace.create(HERE / "workspace", Ontology.load(SHIPPED_SEED), Settings(dataset=str(folder.root))).close()
wb = workbench.open(HERE / "workspace", author="you")            # the notebook's handle on the workspace
ws = wb.workspace
display(wb)
display(Image.fromarray(np.hstack([folder.load(folder.records[i]) for i in (0, 1, 20, 21)])))
""" + HTML_TABLE),
    md("tour-04", """
## 1 · Grow the ontology

The workspace starts with one concept, `daisy`. A **suggester** looks at an image and the ontology and
proposes edits; here the *scripted* suggester, which plays steps written by hand for this demo (no
model involved, and its proposals say so). The review widget shows the proposal: each edit with its
rationale (escaped: suggester text is data), the diff and the graph before and after. Tick the edits
you want and press **Accept selected**; running unattended, the cell after it presses the button.
"""),
    code("tour-05", """
from workbench.review.suggest import make_suggester, suggest_images

suggester = make_suggester("scripted", workspace=ws)
(first,) = suggest_images(ws, suggester, [folder.root / "daisy" / "0000.png"])
review = wb.review(first.id)
display(review)
"""),
    code("tour-06", """
accepted = review.accept()     # what the "Accept selected" button does: one git commit of ontology.yaml
print(accepted.status, "->", sorted(ws.ontology.concepts))
"""),
    md("tour-07", """
The script has eight more steps: more images (a stem, leaves, pink petal tips, a *stalk*...) and two
**refactors** that clean up what the suggestions got wrong (`stalk` is the `stem`; a pink tip is not a
part; "probably used for photosynthesis" is not something a camera sees). Accepted in order, they end at
the shipped `ontologies/daisy.yaml`. Notebook 01 reviews them one by one; here they go in a loop.
"""),
    code("tour-08", """
from workbench.review.decisions import accept
from workbench.review.store import ProposalStore
from workbench.review.suggest import SuggestContext

for step in suggester.remaining():
    p = ProposalStore(ws).save(suggester.play(step, ws.ontology, SuggestContext(image_id=step.image)))
    accept(ws, p, by="you")
    print(f"{p.id} {p.kind:<8} {p.title}")
display(wb.graph())
"""),
    code("tour-09", """
# NBVAL_CHECK_OUTPUT
print("parts of daisy:", ws.ontology.parts("daisy"), "| of flower_head:", ws.ontology.parts("flower_head"))
print("the disk is a rule:", ws.ontology.concepts["disk"].implementation == "rule")
""", expect="parts of daisy: ('flower_head', 'leaf', 'stem') | of flower_head: ('disk', 'petal')\nthe disk is a rule: True\n"),
    code("tour-10", """
from workbench.errors import SuggesterError
from workbench.review.render import proposal_html

if os.environ.get("ANTHROPIC_API_KEY"):   # Claude's view of one image, for comparison (not accepted)
    try:
        (cp,) = suggest_images(ws, make_suggester("claude", workspace=ws), [folder.root / "daisy" / "0006.png"])
        display(HTML(proposal_html(cp)))
    except SuggesterError as e:
        print("Claude could not answer:", e)
else:
    print("no ANTHROPIC_API_KEY: the scripted suggester did all the suggesting")
"""),
    md("tour-11", """
## 2 · Segment

The weight-free segmenter (Felzenszwalb superpixels, no model weights) cuts each image into about 40
regions; the label store keeps them, and a cache makes a second run free.
"""),
    code("tour-12", """
from workbench.data.segment import make_segmenter, segment_dataset

seg = make_segmenter(ws.settings.segmenter, **ws.settings.segmenter_options)
print(segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments", progress=False).summary())
"""),
    md("tour-13", """
## 3 · Label

Labels come from two places, and the store records which: the data set's **ground-truth masks**
label the segments of most images (recorded as `ground_truth`, never as a person's work), and four
images are **left for you** to label by hand in the labeler below.
"""),
    code("tour-14", """
import copy

from workbench.data.labelers import label_from_masks

FOR_YOU = ["daisy/0018.png", "daisy/0019.png", "not_daisy/0018.png", "not_daisy/0019.png"]  # labelled by hand
from_masks = copy.copy(folder)                      # the same data set, without the four images left for you
from_masks.records = [r for r in folder.records if r.id not in FOR_YOU]
print(label_from_masks(ws.store, from_masks, ws.ontology).summary())
"""),
    md("tour-15", """
Running unattended, a stand-in labels 15 segments of those four images through the same widget
method a keypress calls, reading the answer from the part mask, under the author name `stand-in`.
"""),
    code("tour-16", """
from workbench.data.labelers import concept_for_segment

records = {r.id: r for r in folder.records}
index_to_concept = {i: c for i, c in folder.parts_map.items() if c in ws.ontology.concepts}
stand_in = wb.label(author="stand-in", grid=False)   # one segment at a time
for _ in range(15):
    row = ws.store.segment(stand_in.segment_id)
    parts = folder.load_parts(records[ws.store.image(row.image_id).path])
    x0, y0, x1, y1 = row.bbox
    stand_in.label(concept_for_segment(row.crop_mask(), parts[y0:y1, x0:x1], index_to_concept))
stand_in.close()
print("by hand:", ws.store.counts(source="person"))
"""),
    md("tour-17", """
**Your turn.** The labeler shows one segment at a time, outlined on its image, with one key per
concept: `1` disk, `2` leaf, `3` petal, `4` stem, `n` none, `s` skip, `u` undo. Click into it and label
a few: each keypress is stored before the next segment shows, and the count moves. The filter menu
switches to *least certain* (once trained, below), to the segments of one concept, to check them, or to
a *grid review* (section 4 shows it).
"""),
    code("tour-17b", """
labeler = wb.label(grid=False)   # one segment at a time (without grid=False: a grid page, see below)
display(labeler)
done, total = ws.store.progress()
assert labeler.segment_id is not None, "nothing left to label: the four images above should be"
print(f"{total - done} segments of {len(FOR_YOU)} images are left for you ({done} / {total} labelled)")
"""),
    md("tour-18", """
## 4 · Train and compose

One model per concept, leaves first: three tiny nets (petal, stem, leaf) and the disk rule, then the
flower head over its parts' scores, then the daisy over its parts'. The dashboard shows each concept
as it trains; a second run retrains only what changed, and says why.
"""),
    code("tour-19", """
dash = wb.train()
display(dash)
outcome = dash.outcome
assert outcome is not None, "training failed: the dashboard above says why"
"""),
    code("tour-20", """
# NBVAL_CHECK_OUTPUT
print([(c, m["kind"], m["implementation"]) for c, m in outcome["concepts"].items()])
""", expect="[('disk', 'part', 'rule'), ('leaf', 'part', 'net'), ('petal', 'part', 'net'), ('stem', 'part', 'net'), "
             "('flower_head', 'composite', 'net'), ('daisy', 'root', 'net')]\n"),
    md("tour-20b", """
**Labels in pages: grid review.** Once a part concept has a few labels (5) or a trained model, the
labeler ranks the unlabelled segments by how much they look like it (its model's score and the
similarity to its labelled segments) and shows a page of 24 at once, all selected. You deselect the
wrong ones (click, or arrow keys and space / `x`; a concept key gives a tile that concept instead) and
press Enter: the page is stored in one step (selected → petal, the rest → none), each label saying it
came from the grid and what ranked it. `u` undoes the whole page. While you look at a page the next one
is prepared, and every 20 labels of a concept retrain that concept alone in the background. This is
what `wb.label()` opens when a concept can be ranked; `grid=False` labels one at a time.
"""),
    code("tour-20c", """
grid = wb.label(concept="petal", grid=True)
display(grid)
unlabelled = all(ws.store.label(s) is None for s in grid.page_ids)
print(grid.mode, grid.grid["concept"], len(grid.page_ids), unlabelled)  # NBVAL_CHECK_OUTPUT
""", expect="grid petal 24 True\n"),
    md("tour-21", """
## 5 · Why "daisy"? And is it any good?

For one validation image: every concept's score and, for each part, the segment that fired. Then the
hybrid against an end-to-end CNN with one part net's budget (< 1,000 parameters), trained on whole images,
both on the validation images. On 8 validation images one image is 12.5 points, so read these numbers
loosely; the workspace also keeps 8 test images aside that only `workbench run`'s report scores, with the
CNN at the total budget, part-blind baselines, ablation and swap; notebook 03 adds a shuffled-labels
control.
"""),
    code("tour-22", """
images = outcome["images"]
val = [i for i in np.flatnonzero(images.mask("val"))]
name = images.paths[val[0]]
display(wb.explain(name))   # the picture with each fired part boxed, and every concept's score
"""),
    code("tour-23", """
from workbench.evaluation.evaluate import baseline_metrics, load_images
from workbench.models.train import TrainConfig

pixels, _ = load_images(images, folder.root)
s = ws.settings
base = baseline_metrics(ws.ontology, images, pixels, TrainConfig(random_state=s.random_state, torch_threads=s.torch_threads))
hyb = outcome["hybrid"]
display(table([["hybrid (segments)", pct(hyb["val_balanced_accuracy"]), hyb["params"]],
               ["CNN, per-net budget", pct(base["val_balanced_accuracy"]), base["params"]]],
              ["classifier", "validation balanced accuracy", "parameters"]))
"""),
    md("tour-24", """
## 6 · Propose a refactor, gate it, merge it

A person (you) proposes a simplification: the stem is a thin green line, so replace its 935-parameter
net by the plain-code rule `green_elongated`. `wb.apply` runs the **merge gate** first: it retrains
only what the change affects (the stem and the daisy above it) and compares the root's balanced
accuracy with and without it on the same validation images, with a paired bootstrap interval. A
simplification merges when it loses no more than the allowed 1 point, and only then: a *reject* or an
*inconclusive* verdict merges nothing (`override="why"` merges anyway, and the reason goes into the
commit). The verdict goes into the commit message, and the review widget above shows the outcome. The
same proposal could come from Claude (`refactor_workspace(ws, make_suggester("claude"))`).
"""),
    code("tour-25", """
from workbench.review.proposals import make_proposal

prop = ProposalStore(ws).save(make_proposal(
    ws.ontology,
    [{"op": {"op": "describe", "id": "stem", "implementation": "rule", "rule": "green_elongated"},
      "rationale": "A stem is a thin green line; a two-line rule says that, a net does not need to learn it."}],
    kind="refactor", author="person:you", title="The stem as a plain-code rule",
    rationale="Fewer parameters for the same answer, if the gate agrees."))
display(wb.review(prop.id))
"""),
    code("tour-26", """
from workbench.review.gate import GateRejected

try:
    applied = wb.apply(prop.id)  # the gate, then a merge only on a "merge" verdict
except GateRejected as e:       # "reject" or "inconclusive": the ontology is unchanged, the verdict is in the proposal
    applied = None
    print(e)
applied                         # shown once: merged, the commit, the verdict
"""),
    code("tour-27", """
for change in wb.history(limit=3):
    print(change.summary(), "|", change.gate or "no gate")
print()
print(wb.why("stem"))
"""),
    md("tour-28", """
## Where next

- `01_grow_ontology.ipynb`: proposals in depth (partial accepts, invalid edits, rejection, replay, Claude).
- `02_segment_and_label.ipynb`: segmenting and labelling, your own image folder, SAM, Dask.
- `03_train_and_compose.ipynb`: training, explanations, the baseline and the shuffled-labels control.
- `04_pull_request_loop.ipynb`: the gate, history, `why`, revert, proposals as notebook cells.
- `workshop/`: a 90-minute course with exercises.

The **Workbench sidebar** in JupyterLab (the tree icon in the left bar) shows this workspace by
itself: `workbench.open` tells it which workspace the notebook uses, no setting needed. It lists the
ontology with each concept's balanced accuracy (click a concept for its card: examples, status, where it
came from, and a button that opens the labeler on it), the proposals (a labeler's "New concept…"
appears there within seconds; *Insert as cells*, *Run gate*) and the history. To show another
workspace, set *Settings › Constructability Workbench › Workspace folder*.
"""),
    code("tour-29", """
wb.refresh()   # the widgets above as the workspace is now (apply and train did this already)
print(f"done in {time.perf_counter() - T0:.0f} s; this run's workspace stays in {ws.path}")
"""),
    md("tour-30", """
Run All stops here: the workspace stays, so the labeler above still takes keys and the sidebar still
shows it. To delete this run's folder when you are done, set `CLEAN_UP = True` and run the next cell.
"""),
    code("tour-31", """
CLEAN_UP = False   # True deletes this run's folder (the widgets above stop working)
if CLEAN_UP:
    import shutil

    wb.close()
    shutil.rmtree(HERE, ignore_errors=True)
    print("deleted", HERE)
"""),
]


# ------------------------------------------------------------------------------------ 01 grow ontology
NB01 = [
    md("grow-01", """
# 01 · Grow the ontology

The ontology is a file (`ontology.yaml`): the concepts the classifier is made of, what each looks like
(a description a person and an LLM can read), and which concept is a part of which. It grows by
**proposals**, like pull requests: a *suggester* looks at an image and the current ontology and
proposes edits (add a concept, add a part, rename, merge, split, describe, remove); a person previews
each proposal as a diff, accepts all or some of its edits (or edits them first), or rejects it. Every
accepted proposal is one git commit of `ontology.yaml`, with who proposed it and who accepted it.

Suggesters:

- **scripted** plays steps written by hand in `ontologies/daisy.suggestions.yaml`: it grows a
  one-concept seed into the shipped daisy ontology, and on purpose makes the mistakes an LLM makes
  (redundant concepts, speculative ones, non-visual wording) so the refactors have something to clean
  up. Its proposals say `scripted:...`, never a model's name. This notebook uses it: no key needed.
- **claude** asks Claude (key in `ANTHROPIC_API_KEY`, never in a file): see the end of this notebook.
- **replay** re-plays recorded exchanges of saved proposals, offline.
""" + SETUP_NOTE),
    setup_cell("grow-02", "01"),
    code("grow-03", """
from workbench.data.datasets import generate_demo
from workbench.ontology.graph import Ontology
from workbench.workspace.settings import Settings
from workbench.review.suggest import SHIPPED_SEED, SuggestContext, make_suggester, suggest_images
from workbench.workspace.folder import Workspace

folder = generate_demo(HERE / "data", n_per_class=6, seed=0)      # 12 small images are enough here
ws = Workspace.create(HERE / "workspace", Ontology.load(SHIPPED_SEED), Settings(dataset=str(folder.root)))
print(ws.ontology.dumps())
""" + HTML_TABLE),
    code("grow-04", """
# NBVAL_CHECK_OUTPUT
print(sorted(ws.ontology.concepts), ws.ontology.root)
""", expect="['daisy'] daisy\n"),
    md("grow-05", """
## 1 · A suggestion for one image

`suggest_images` shows each image to the suggester with the current ontology and saves what comes back
as a pending proposal in `proposals/NNNN.yaml`. Each edit is validated against the ontology as the
earlier valid edits of the same proposal leave it: an invalid one is kept (you see what was proposed)
but marked with its problem and can never be accepted. Concept **lint** flags wording a camera cannot
see. Everything a suggester writes is shown as data: escaped, never rendered as Markdown, never run.
"""),
    code("grow-06", """
from workbench.review.decisions import accept, preview, reject
from workbench.review.render import proposal_html
from workbench.review.store import ProposalStore

suggester = make_suggester("scripted", workspace=ws)
image = folder.root / "daisy" / "0000.png"
display(Image.open(image).resize((192, 192)))
(p,) = suggest_images(ws, suggester, [image])
display(HTML(proposal_html(p)))   # every piece of text in it is escaped
"""),
    md("grow-07", """
`preview` says what accepting would do before anything is done: the text diff of `ontology.yaml`,
concepts added, removed and changed, labelled segments an edit would move, and which concept models
would retrain.
"""),
    code("grow-08", """
pv = preview(ws, p)
print(pv.diff)
print("added:", pv.added, "| retrain:", pv.retrain)
"""),
    code("grow-09", """
import subprocess

p = accept(ws, p, by="you")
print(p.status, "as commit", p.commit[:12], "- its message:\\n")
print(subprocess.run(["git", "-C", str(ws.path), "show", "-s", "--format=%B", p.commit],
                     capture_output=True, text=True, check=True).stdout)
"""),
    md("grow-10", """
## 2 · Two more images: a stem, leaves, and some wobbles

The next two steps add a stem and leaves, then pink petal tips and a *stalk* (the same green line as the
stem, under another name). Accepting them is fine for now: the refactor comes next. Note the lint on
the leaf: "probably used for photosynthesis" is function, not appearance.
"""),
    code("grow-11", """
for name in ("0001.png", "0002.png"):
    (p,) = suggest_images(ws, suggester, [folder.root / "daisy" / name])
    display(HTML(proposal_html(p)))
    accept(ws, p, by="you")
print(len(ws.ontology.concepts), "concepts:", sorted(ws.ontology.concepts))
"""),
    md("grow-12", """
## 3 · A refactor

`refactor` looks at the whole ontology and its history and proposes to clean it up: merge `stalk`
into `stem`, drop the `petal_tip` colour variant, rename the centre to `disk` and make it a
plain-code rule, and describe the leaf by what it looks like. The preview counts the labelled
segments each rename or merge would move (none yet: nothing is labelled in this notebook).

Here you accept only some of its edits first, then the rest: `accept(ws, p, [0, 1], by=...)`
records a *partial* decision, and the remaining edits stay in the same proposal.
"""),
    code("grow-13", """
from workbench.review.suggest import refactor_workspace

r = refactor_workspace(ws, suggester)
display(HTML(proposal_html(r)))
pv = preview(ws, r)
print("removed:", pv.removed, "| changed:", pv.changed, "| labels moved per edit:", pv.labels_touched)
print(pv.diff[:1500])
"""),
    code("grow-14", """
r = accept(ws, r, [0, 1, 2], by="you", note="merge and removal first")
print(r.status, [e.decision for e in r.edits])
"""),
    md("grow-15", """
A partially accepted proposal is decided (the edits left out are recorded as not accepted): to take
the rest later, make them a new proposal (here by hand, as a person's proposal, from the same ops)
and accept that.
"""),
    code("grow-16", """
from workbench.review.proposals import make_proposal

rest = make_proposal(ws.ontology, [{"op": e.op, "rationale": e.rationale} for e in r.edits if e.decision != "accepted"],
                     kind="person", author="person:you", title="The rest of the refactor",
                     rationale="Rename the centre to disk with its rule, and visual wording for the leaf.")
rest = accept(ws, ProposalStore(ws).save(rest), by="you")
print(rest.status, len(ws.ontology.concepts), "concepts:", sorted(ws.ontology.concepts))
"""),
    md("grow-17", """
## 4 · The rest of the script, and where it ends

Three more images (a leaf rosette, a small daisy in a lawn, "pollen on the petals") and a second
refactor. Played and accepted in order, the script ends exactly at the shipped `ontologies/daisy.yaml`:
the ontology that notebooks 02 and 03 train.
"""),
    code("grow-18", """
for name in ("0003.png", "0004.png", "0005.png"):
    (p,) = suggest_images(ws, suggester, [folder.root / "daisy" / name])
    print(f"{p.id}: {p.title} -> {[e.summary() for e in p.edits]}", *(f"  lint: {w}" for e in p.edits for w in e.lint), sep="\\n")
    accept(ws, p, by="you")
r2 = refactor_workspace(ws, suggester)
print(f"{r2.id}: {r2.title} -> {[e.summary() for e in r2.edits]}")
r2 = accept(ws, r2, by="you")
"""),
    code("grow-19", """
# NBVAL_CHECK_OUTPUT
from workbench.ontology.shipped import shipped_ontology

print(sorted(ws.ontology.concepts))
print("same as ontologies/daisy.yaml:", ws.ontology.dumps() == Ontology.load(shipped_ontology("daisy")).dumps())
""", expect="['daisy', 'disk', 'flower_head', 'leaf', 'petal', 'stem']\nsame as ontologies/daisy.yaml: True\n"),
    md("grow-20", """
## 5 · Invalid edits, rejection, and the history

A proposal can hold edits that cannot apply (a part of a concept that does not exist, a cycle, an op
that is not on the whitelist). They are kept, marked `invalid` with the reason, and can never be
accepted. A whole proposal can be rejected with a reason; the ontology file is not touched.
"""),
    code("grow-21", """
bad = make_proposal(ws.ontology, [
    {"op": {"op": "add_part", "parent": "flower_head", "part": "sepal"}, "rationale": "green cup under the head"},
    {"op": {"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
            "description": "A small green leaf-like cup under the flower head."}, "rationale": "seen from the side"},
    {"op": {"op": "delete_everything"}, "rationale": "not an operation"},
], kind="person", author="person:you", title="A sepal (in the wrong order), and a bogus op")
bad = ProposalStore(ws).save(bad)
display(HTML(proposal_html(bad)))
print([(e.decision, e.problem) for e in bad.edits])
before = ws.ontology_path.read_bytes()
reject(ws, bad, by="you", reason="sepals are too small to see in these images")
print("ontology.yaml untouched:", ws.ontology_path.read_bytes() == before)
"""),
    code("grow-22", """
from workbench.review.history import history, why

for change in history(ws):
    print(change.summary())
print()
print(why(ws, "stem"))
"""),
    code("grow-23", """
# NBVAL_CHECK_OUTPUT
print(sorted({p.status for p in ProposalStore(ws).list()}))
""", expect="['accepted', 'partial', 'rejected']\n"),
    md("grow-24", """
## Claude, with a key

With `ANTHROPIC_API_KEY` set in the environment of the Jupyter server (`export ANTHROPIC_API_KEY=...`
before `jupyter lab`; never in a notebook or a file), the same calls ask Claude. The request holds the
current ontology (as a cached prefix), the image downscaled to `llm_max_image_edge` (1568 px by
default) and a forced tool whose schema allows only the whitelisted edit operations. The answer
becomes a pending proposal like any other, with the exchange recorded for replay (image hash and size,
never the pixels, never the key). Refusals, cut-offs and API errors are errors with a reason, never
half a proposal. Claude can also **pre-sort** an image's segments into concepts: stored as
*suggestions* the labeler shows, which only a person's keypress turns into labels.

Without a key this cell says so and does nothing; with one it costs a request (about a cent; see
`workbench.review.claude.estimate_cost`).
"""),
    code("grow-25", """
from workbench.errors import SuggesterError

if os.environ.get("ANTHROPIC_API_KEY"):
    claude = make_suggester("claude", workspace=ws)
    try:
        (cp,) = suggest_images(ws, claude, [folder.root / "not_daisy" / "0000.png"])
        display(HTML(proposal_html(cp)))
        print(preview(ws, cp).diff if cp.valid_edits else "no valid edits")
        # accept(ws, cp, by="you")   # if you agree; or reject(ws, cp, by="you", reason="...")
    except SuggesterError as e:
        print("Claude could not answer:", e)
else:
    print("ANTHROPIC_API_KEY is not set: skipped (the scripted suggester needs no key)")
"""),
    md("grow-26", """
## Replay: the recorded exchanges, offline

Each saved proposal keeps its exchange. `replay` runs them again against an ontology, without a network:
a Claude proposal is re-parsed from its recorded response, so the same recording and the same ontology
give the same edits, problems and lint. Here: the first scripted proposal, replayed against the seed.
"""),
    code("grow-27", """
from workbench.review.suggest import ReplaySuggester

replay = ReplaySuggester([ProposalStore(ws).load("0001")])
again = replay.suggest(Ontology.load(SHIPPED_SEED))
print([e.summary() for e in again.edits])
"""),
    code("grow-28", """
# NBVAL_CHECK_OUTPUT
print([e.summary() for e in again.edits] == [e.summary() for e in ProposalStore(ws).load("0001").edits])
""", expect="True\n"),
    md("grow-29", """
From the command line: `workbench suggest --workspace WS --suggester scripted IMAGE`,
`workbench proposals list|show|accept|reject`, `workbench refactor --workspace WS`. In JupyterLab the
Workbench sidebar lists the proposals; `workbench.open(WS).review()` reviews one with checkboxes per
edit. Next: `02_segment_and_label.ipynb`.
"""),
    final_cell("grow-30"),
]


# ------------------------------------------------------------------------------------ 04 pull-request loop
NB04 = [
    md("pr-01", """
# 04 · The pull-request loop

Every change to the ontology goes through the same loop as a code change:

```
proposal (suggester or person) ──second reviewer: findings (advice)──▶ a person reviews
      ──▶ merge gate (retrain what it touches, compare, run the pins) ──▶ apply: one git commit
      ▲                                                                        │
      └──────────── history · why · revert (a new commit) ◀────────────────────┘
```

This notebook starts from a trained daisy workspace that does not know leaves yet, and goes round
the loop: a description change (nothing to retrain); **pins**, tests a person writes for single
segments; a harmful simplification that a pin blocks (a recorded override merges it anyway) and its
revert; a new concept that goes in **provisional**, is labelled, judged by the gate, then confirmed
or removed; a **second reviewer**'s findings beside a diff, and proposals as notebook cells; a stale
proposal; and how to do it all from the command line, with Claude, and on a cluster.
""" + SETUP_NOTE),
    setup_cell("pr-02", "04"),
    code("pr-03", """
from workbench.data.datasets import generate_demo
from workbench.data.labelers import label_from_masks
from workbench.ontology.edits import RemoveConcept
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.data.segment import make_segmenter, segment_dataset
from workbench.workspace.settings import Settings
from workbench.jupyter.widgets.dashboard import train_workspace
from workbench.workspace.folder import Workspace

folder = generate_demo(HERE / "data", n_per_class=20, seed=0)
# the shipped daisy ontology without its leaf: section 5 proposes the leaf as a new concept
ontology = RemoveConcept("leaf").apply(Ontology.load(shipped_ontology("daisy")))
Workspace.create(HERE / "workspace", ontology, Settings(dataset=str(folder.root))).close()
wb = workbench.open(HERE / "workspace", author="you")
ws = wb.workspace
seg = make_segmenter(ws.settings.segmenter, **ws.settings.segmenter_options)
print(segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments", progress=False).summary())
print(label_from_masks(ws.store, folder, ws.ontology).summary())
trained = train_workspace(ws)          # what `workbench train` and wb.train() run, without the dashboard
print(trained["result"].summary())
print("root balanced accuracy:", trained["hybrid"]["balanced_accuracy"])
"""),
    md("pr-04", """
## 1 · A change that retrains nothing

A person sharpens the petal's description. `wb.apply(ref)` runs the gate first: descriptions are not
seen by any model, so no fingerprint changes, nothing retrains, and the verdict is *merge* at once. The
commit message carries the title, the rationale, the edits and the trailers `Proposal:`,
`Proposed-by:`, `Accepted-by:` and `Gate:`.
"""),
    code("pr-05", """
import subprocess

from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore

store = ProposalStore(ws)


def propose(ops, title, rationale=""):
    \"\"\"A person's proposal, saved as proposals/NNNN.yaml (ops: edit dicts, each with a rationale).\"\"\"
    return store.save(make_proposal(ws.ontology, [{"op": op, "rationale": why} for op, why in ops],
                                    kind="person", author="person:you", title=title, rationale=rationale))


def commit_message(sha):
    \"\"\"The full message of one commit of the workspace's git repository.\"\"\"
    return subprocess.run(["git", "-C", str(ws.path), "show", "-s", "--format=%B", sha],
                          capture_output=True, text=True, check=True).stdout


desc = propose([({"op": "describe", "id": "petal", "description": ws.ontology.concepts["petal"].description
                  + " Seen edge-on, a petal is a thin white line."}, "Petals seen from the side look different.")],
               "Petals seen edge-on")
applied = wb.apply(desc.id)
verdict = applied.verdict
print(applied)
print(commit_message(store.load(desc.id).commit))
"""),
    code("pr-06", """
# NBVAL_CHECK_OUTPUT
print(verdict.decision, verdict.kind, list(verdict.retrained), store.load(desc.id).status)
""", expect="merge neutral [] accepted\n"),
    md("pr-30", """
## 2 · Pins: a test for one segment

The gate's main evidence is the root's accuracy on a few validation images, and that can miss a change
that breaks one part. A **pin** is a test a person writes for one segment: *the petal model must score
this segment as a petal* (`"must"`), or *must not* (`"must_not"`). Here a person reads an explanation
and pins two segments that fired: the white petal must stay a petal, and the yellow disk must never
be taken for one. Each pin is a commit to `pins/petal.yaml` (reviewable YAML; the labeler's `!` key
and `workbench pin add` make the same). `wb.test()` runs every pin against the saved models and says
what each one scored.
"""),
    code("pr-31", """
from workbench.models.inference import explain_image

image = "daisy/0000.png"
display(wb.explain(image))                      # each fired part boxed on the image, with its score
_, explanation, _ = explain_image(ws, image)    # the same explanation as data
fired = explanation.concepts
assert fired["petal"].score >= 0.5 and fired["disk"].score >= 0.5, "pick an image where petal and disk fired"
wb.pin((image, fired["petal"].bbox), "petal", note="a white petal: it must stay a petal")
wb.pin((image, fired["disk"].bbox), "petal", "must_not", note="the yellow disk is never a petal")
print((ws.path / "pins" / "petal.yaml").read_text())
print(wb.test())
"""),
    md("pr-32", """
A pinned segment is a test, never data: its label is taken out of training and out of every
measurement (the segment stays in its image). So the concepts whose training data changed retrain on
the next train, and `wb.test()` runs the pins again against the new models.
"""),
    code("pr-33", """
print(train_workspace(ws)["result"].summary())
report = wb.test()
print(report)
"""),
    code("pr-34", """
# NBVAL_CHECK_OUTPUT
print(sorted(p.expectation for p in wb.pins("petal")), report.ok)
""", expect="[\"must be 'petal'\", \"must not be 'petal'\"] True\n"),
    md("pr-10", """
## 3 · A harmful simplification, blocked by a pin

Someone proposes to find petals with the disk's rule (`yellow_disk`) instead of a net: fewer
parameters, but white petals are not yellow. The gate retrains what the change affects (petal, then
flower head and daisy above it; everything else is reused from the saved models), compares the
root's balanced accuracy with and without it on the same validation images with a paired bootstrap
interval, and runs the pins of every concept it retrained, with the old and with the new models. A
simplification may lose at most `gate_max_loss` (1 point), and **a pin that passed and now fails
blocks the merge**, whatever the accuracy says. `wb.apply` then merges nothing, records the verdict
in the proposal file and raises `NotMerged` (a `GateRejected`); the verdict reads in words: how many
images, what changed, which pins.
"""),
    code("pr-11", """
from workbench.review.gate import GateRejected, Verdict

harm = propose([({"op": "describe", "id": "petal", "implementation": "rule", "rule": "yellow_disk"},
                 "One rule for both parts of the flower head: fewer parameters.")], "Petals by rule")
blocked = None
try:
    print(wb.apply(harm.id))
except GateRejected as e:   # the gate said no: show its verdict, not a traceback
    blocked = e.verdict
    print(blocked)
recorded = store.load(harm.id)
print("\\nstatus:", recorded.status, "| recorded verdict:", (recorded.gate or {}).get("summary"))
"""),
    code("pr-35", """
# NBVAL_CHECK_OUTPUT
print(blocked.decision, blocked.pins_newly_failing > 0, recorded.status)
""", expect="reject True pending\n"),
    md("pr-12", """
A person can still merge against the gate, but only with a reason, which goes into the commit
(`Gate-override:`) and the proposal's decisions. (`wb.apply(ref, override="why")` does it in one
call, running the gate again; `override(...)` reuses the verdict already recorded.)
"""),
    code("pr-13", """
from workbench.review.gate import override

if store.load(harm.id).status == "pending":
    merged = override(ws, harm.id, by="you", reason="trying it on the bigger data set next week",
                      verdict=Verdict.from_dict(store.load(harm.id).gate))
    print(merged.status, "- commit", merged.commit[:12])
    print("\\n".join(line for line in commit_message(merged.commit).splitlines() if line.startswith("Gate")))
print("petal is now a", ws.ontology.concepts["petal"].implementation)
"""),
    md("pr-14", """
## 4 · History, why, revert

`wb.history()` reads the workspace's git log back as changes (proposal, who proposed, who accepted,
the gate); `wb.why(concept)` finds the change that introduced a concept and the one that last changed
it, following renames and merges. `wb.revert(ref)` undoes one change as a **new** commit (history is
never rewritten); it is refused when a later change edited what it would undo.
"""),
    code("pr-15", """
for change in wb.history():
    print(change.summary(), "|", change.gate_override or change.gate or "")
print()
print(wb.why("petal"))
"""),
    code("pr-16", """
back = wb.revert(harm.id, reason="the gate was right: petals are not yellow")
print(back.summary())
print("petal is a", ws.ontology.concepts["petal"].implementation, "again")
"""),
    code("pr-17", """
# NBVAL_CHECK_OUTPUT
print(ws.ontology.concepts["petal"].implementation, back.reverts == store.load(harm.id).commit)
""", expect="net True\n"),
    md("pr-07", """
## 5 · A new concept: provisional, labelled, judged, then confirmed or removed

An addition must *gain* accuracy to merge, but a concept nobody has labelled yet cannot be trained,
so the gate cannot judge it. `wb.apply` then accepts it as **provisional**: it is in the ontology (a
commit; the file says `provisional: true`), it gets a labeler key and its own model, but no parent
combines its score yet, so the classifier is what it was. Here a person adds the leaf.
"""),
    code("pr-08", """
leaf = propose([({"op": "add_concept", "id": "leaf", "label": "Leaf", "parents": ["daisy"],
                  "description": "A matte green leaf, spoon- or lance-shaped, low at the foot of the stem."},
                 "Daisies have leaves at the foot of the stem; the classifier does not look at them.")], "Leaves")
print(wb.apply(leaf.id))
for st in wb.provisional(gate=False):
    print(st.line())
"""),
    md("pr-36", """
**Label it.** In the labeler (`wb.label()` has a key for *leaf* now) or, here, from the data set's
part masks: ground-truth labels that said *none* become *leaf*. With `provisional_min_labels` (10)
labels on training images, a train trains the leaf's own model (nothing else changes), and the gate
judges it: the composition with the leaf against the composition without it, on the validation
images. `wb.train()` runs that gate by itself after training; `wb.provisional()` runs it now.
"""),
    code("pr-37", """
print(label_from_masks(ws.store, folder, ws.ontology).summary())
print(train_workspace(ws)["result"].summary())
[leaf_status] = wb.provisional()   # the gate, for each provisional concept with enough labels; recorded
assert leaf_status.ready, leaf_status.line()
print(leaf_status.line())
print(leaf_status.verdict)
"""),
    md("pr-38", """
**Decide.** The verdict is recorded in the leaf's proposal file. On *merge* the person confirms the
leaf: a commit whose message holds the verdict, and the daisy combines the leaf from then on. Without
a gain the person removes it (a commit; its labels stay in the store), or confirms it anyway with a
reason, `wb.confirm("leaf", override="why")`, recorded as `Gate-override:`. The cell below does what
the measured verdict allows.
"""),
    code("pr-39", """
if leaf_status.verdict.decision == "merge":
    wb.confirm("leaf")
    print("confirmed: the daisy now combines the leaf")
else:
    wb.remove("leaf", reason=f"the gate measured no gain: {leaf_status.verdict.line()}")
    print("removed: the classifier stays as it was")
print(commit_message(store.load(leaf.id).decisions[-1]["commit"]))   # the decision's commit
"""),
    code("pr-09", """
# NBVAL_CHECK_OUTPUT
steps = [d["action"] for d in store.load(leaf.id).decisions if d.get("concept") == "leaf"]
merged = leaf_status.verdict.decision == "merge"
print(steps == ["gate", "confirm" if merged else "remove"], ("leaf" in ws.ontology.composed_parts("daisy")) == merged,
      ws.ontology.provisional())
""", expect="True True []\n"),
    md("pr-40", """
## 6 · A second reviewer, beside the diff

Before a person reads a proposal, a **second reviewer** writes findings: is each new concept visual
at the scale of one segment; does it duplicate a concept the ontology has (label overlap in the store,
similar descriptions); does an edit contradict the ontology; does the evidence image bear the
rationale out. Findings are advice stored beside the edits: a reviewer can never accept, reject or
change a proposal. Reviewers form a registry like the suggesters: `scripted` (findings written by
hand for the shipped demo suggestions, **marked as scripted: not model output**), `replay`
(recorded reviews, offline) and `claude` (with `ANTHROPIC_API_KEY`). Here the demo script suggests
pink petal tips and a stalk, and the scripted reviewer reviews the proposal (`workbench review ID
--workspace WS` does the same; `workbench suggest` and the review widget run the workspace's
`reviewer` setting by themselves).
"""),
    code("pr-41", """
from workbench.review.reviewers import review_proposal
from workbench.review.suggest import ScriptedSuggester

script = ScriptedSuggester(workspace=ws)
tips = store.save(script.play(script.steps[2], ws.ontology))   # the demo script's third suggestion
tips = review_proposal(ws, tips.id, "scripted")                 # the findings go into proposals/NNNN.yaml
print(tips.title, "|", tips.review.line())
print(tips.review.summary)
for f in tips.review.findings:
    print("-", f.line(), f"({'workbench check' if f.source == 'check' else 'reviewer'})")
display(wb.review(tips.id))   # the review widget: the edits to tick, the diff, the findings beside it
"""),
    md("pr-20", """
The same findings appear in the proposal's notebook cells: `wb.propose_cells(ref)` shows a proposal as
a Markdown review (title, who proposed it, rationale, each edit with its lint, problems and findings,
the diff, the second reviewer's block; with `gate=True` the verdict and before/after pictures of the
retrained concepts) and puts a code cell `wb.apply("proposals/NNNN.yaml")` below the current cell,
to run deliberately. The JupyterLab sidebar's *Insert proposal as cells* does the same. Model text in
the Markdown is escaped: it can load nothing and run nothing. `workbench.review.cells.proposal_cells`
returns the cells as data (stable ids, so inserting again replaces them in place). The person
decides: here, a rejection that cites the findings.
"""),
    code("pr-21", """
from IPython.display import Markdown

from workbench.review.cells import proposal_cells
from workbench.review.decisions import reject

cells = proposal_cells(ws, tips.id)
print([(c["cell_type"], c["id"]) for c in cells])
print(cells[1]["source"])
display(Markdown(cells[0]["source"]))
rejected = reject(ws, tips.id, by="you",
                  reason="as the reviewer says: a tip is part of a petal, and a stalk is the stem")
print(rejected.status, "by", rejected.decisions[-1].get("by"))
"""),
    code("pr-42", """
# NBVAL_CHECK_OUTPUT
judged = sorted({f.kind for f in tips.review.findings if f.source == "reviewer"})
print(tips.review.scripted, judged, "petal_tip" in ws.ontology.concepts, store.load(tips.id).status)
""", expect="True ['not_visual', 'overlap'] False rejected\n"),
    md("pr-18", """
## 7 · A stale proposal

Proposals are made against one version of the ontology (their `base` hash). When the ontology has
changed since, accepting re-validates every chosen edit against the current one: what still applies
is applied, and an edit that no longer applies stops the whole proposal with `ProposalConflict`,
naming it. (`accept` here is the gate-less path; `wb.apply(ref, gate=False)` is the same.)
"""),
    code("pr-19", """
from workbench.errors import ProposalConflict
from workbench.review.decisions import accept

rename = propose([({"op": "rename", "old": "stem", "new": "stalk"}, "Gardeners say stalk.")], "stem → stalk")
describe = propose([({"op": "describe", "id": "stem", "description": "A thin green line under the flower head."},
                     "Shorter.")], "A shorter stem description")
accept(ws, rename.id, by="you")
try:
    accept(ws, describe.id, by="you")
except ProposalConflict as e:
    print("conflict:", e)
"""),
    md("pr-22", """
## From the command line

```bash
workbench proposals list --workspace WS
workbench review 0007 --workspace WS [--reviewer scripted|replay|claude]   # findings, stored in the proposal
workbench proposals show 0007 --workspace WS          # the diff, the findings, what would retrain
workbench pin add 812 petal --workspace WS --by ana   # a pin (--not: must not; or --image P --at X,Y)
workbench test --workspace WS                         # run the pins: exit 1 when one fails
workbench gate 0007 --workspace WS                    # exit 0 only for "merge"
workbench gate 0007 --workspace WS --merge --by ana   # gate, then accept (an addition it cannot judge: provisional)
workbench provisional --workspace WS --gate           # provisional concepts; judge those with enough labels
workbench confirm leaf --workspace WS --by ana        # or: workbench remove leaf --workspace WS --by ana
workbench history --workspace WS
workbench why petal --workspace WS
workbench revert 0007 --workspace WS --by ana --reason "..."
```

## A refactor from Claude

With `ANTHROPIC_API_KEY` set, Claude reads the ontology and the proposal history and proposes a
refactor (merges of redundant concepts, visual wording, rules for simple parts). It goes through the
same gate; nothing is applied until `wb.apply` (or a person in the review widget) says so.
"""),
    code("pr-23", """
from workbench.errors import SuggesterError
from workbench.review.suggest import make_suggester, refactor_workspace

if os.environ.get("ANTHROPIC_API_KEY"):
    try:
        r = refactor_workspace(ws, make_suggester("claude", workspace=ws))
        print(r.id, r.title, [e.summary() for e in r.edits])
        # wb.apply(r.id)                # gate, then merge only if the gate says merge
    except SuggesterError as e:
        print("Claude could not answer:", e)
else:
    print("ANTHROPIC_API_KEY is not set: skipped")
"""),
    md("pr-24", """
## More seeds, or a cluster, for the gate

One training seed per side is the default; `seeds=(0, 1, 2)` averages out training noise (each seed is
one more retrain of the affected concepts). Leaves retrain on any executor: a local process pool or a
Dask cluster (`executor(scheduler="tcp://host:8786")`, workers reading the same data path).
"""),
    code("pr-25", """
from workbench.parallel import executor
from workbench.review.gate import gate

SCHEDULER = os.environ.get("WORKBENCH_SCHEDULER")   # e.g. "tcp://10.0.0.5:8786"
if SCHEDULER:
    p = propose([({"op": "describe", "id": "disk", "implementation": "net"},
                  "A net might find disks the rule misses.")], "The disk by a net")
    with executor(scheduler=SCHEDULER) as ex:
        v = gate(ws, p.id, seeds=(0, 1, 2), executor=ex)
    print(v.summary())
    # or gate and merge in one call: apply_proposal(ws, p.id, by="you", seeds=(0, 1, 2), executor=ex)
else:
    print("WORKBENCH_SCHEDULER is not set: skipped")
"""),
    final_cell("pr-26", close="wb.close()"),
]


# ------------------------------------------------------------------------------ 02 segment and label
NB02 = [
    md("seg-01", """
# 02 · Segment and label

The workbench learns each visual concept (petal, disk, stem, leaf...) from **segments**: regions the
image is cut into. Every segment gets a **label**: a concept id of the ontology, or `none`. This
notebook goes through that stage in depth:

1. generate the demo data set (daisies and not-daisies, with ground-truth part masks),
2. segment one image and look at its segments,
3. segment the whole set into a workspace's label store (with a cache, so a second run is free),
4. label a few segments by hand, undo one, and read a segment's label history,
5. label the rest from the ground-truth part masks (recorded as such, never as a person's work),
6. check progress and export the labels as text.

At the end: your own image folder, the SAM segmenter with a checkpoint, and a Dask cluster.
""" + SETUP_NOTE),
    setup_cell("seg-02", "02", "from workbench.data.datasets import generate_demo\n"),
    md("seg-03", """
## 1 · The data set

`generate_demo` draws a small, deterministic data set: `daisy/NNNN.png` (white petals around a
yellow disk, a stem, leaves) and `not_daisy/NNNN.png` (other flowers, suns, plants without flowers,
white pebbles: scenes that share parts with daisies). Each image has a pixel-exact part mask
`NNNN.parts.png`, and `parts.json` maps mask values to concept ids. Your own data uses the same layout
(`<root>/<class>/<image>.png|jpg`, masks optional).
"""),
    code("seg-04", """
folder = generate_demo(HERE / "data", n_per_class=20, seed=0)
print(folder.classes, len(folder))  # NBVAL_CHECK_OUTPUT
""", expect="['daisy', 'not_daisy'] 40\n"),
    code("seg-05", """
print(folder.parts_map)
rec = folder.records[0]
image = folder.load(rec)            # RGB uint8, H x W x 3
parts = folder.load_parts(rec)      # one mask value per pixel, 0 = background

# colour the part mask: one colour per mask value
palette = np.array([[40, 40, 40], [255, 255, 255], [255, 200, 0], [40, 160, 40], [20, 90, 20],
                    [230, 80, 160], [130, 70, 20], [255, 120, 0], [200, 200, 255], [0, 0, 0]], np.uint8)
print(rec.id, image.shape)
display(Image.fromarray(np.hstack([image, palette[np.clip(parts, 0, len(palette) - 1)]])))
"""),
    md("seg-06", """
## 2 · Segment one image

The default segmenter, `weightfree`, needs no model weights: scikit-image's Felzenszwalb superpixels on a
lightly blurred image, with tiny and huge regions dropped. Its settings (`scale`, `sigma`, `min_size`...)
are part of a **settings hash**: segments made with other settings are kept apart, and changing a
setting re-segments. Each segment is a full-image boolean mask plus its bounding box; the part nets see
a *crop*: the segment's pixels on black, padded to a square.
"""),
    code("seg-07", """
from skimage.segmentation import mark_boundaries

from workbench.data.segment import make_segmenter, settings_hash

seg = make_segmenter("weightfree")
print(seg, "settings hash", settings_hash(seg))
segments = seg.segment(image)
overlay = (mark_boundaries(image, seg.labels(image), color=(1, 0, 0)) * 255).astype(np.uint8)
print(len(segments), "segments")
display(Image.fromarray(np.hstack([image, overlay])))
"""),
    code("seg-08", """
# the 12 largest segments as the part nets see them (here at 64 px; training uses 32 px)
largest = sorted(segments, key=lambda s: -s.area)[:12]
display(Image.fromarray(np.hstack([s.crop(image, 64) for s in largest])))
print([s.area for s in largest])
"""),
    md("seg-09", """
## 3 · A workspace, and every image segmented into its label store

A **workspace** is one folder and a git repository: `ontology.yaml` (the concept graph, every change a
commit), `workbench.yaml` (settings), `labels.sqlite` (the label store: images, segments, every label
ever written), `models/`, `proposals/` and `cache/`. `segment_dataset` segments each image (in
parallel when given an executor, see the end) and stores its segments; results are cached by image
content and segmenter settings, so running it again costs almost nothing.
"""),
    code("seg-10", """
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.data.segment import segment_dataset
from workbench.workspace.settings import Settings
from workbench.workspace.folder import Workspace

ontology = Ontology.load(shipped_ontology("daisy"))
ws = Workspace.create(HERE / "workspace", ontology, Settings(dataset=str(folder.root)))
print(ws)
print(ontology.root, "leaves:", ontology.leaves(), "composites:", ontology.composites())  # NBVAL_CHECK_OUTPUT
""", expect="daisy leaves: ['disk', 'leaf', 'petal', 'stem'] composites: ['daisy', 'flower_head']\n"),
    code("seg-11", """
report = segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments")
print(report.summary())
again = segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments", progress=False)
print(again.summary())
"""),
    code("seg-12", """
# NBVAL_CHECK_OUTPUT
shash = settings_hash(seg)
done, total = ws.store.progress(shash)
print("second run came from the cache:", again.cached == again.images == len(folder))
print("labelled so far:", done, "of", "all" if total == report.segments else "?", "segments")
""", expect="second run came from the cache: True\nlabelled so far: 0 of all segments\n"),
    md("seg-13", """
## 4 · Label a few segments by hand

In a live notebook you label with the labeler widget (next cell): it shows one segment at a time (its
crop, and where it sits in the image) with one key per part concept (`1` disk, `2` leaf, `3` petal,
`4` stem), `n` for none, `u` to undo. Each keypress is one call to the label store, committed to disk
before the next segment shows:

```python
ws.store.set_label(segment_id, "petal", source="person", author="your name")
```

Running unattended (as in CI, or under *Run All*), the cell after it plays your part: it reads each
segment's answer from the part mask (what you would click) and records it through the same call,
under the author name `stand-in`, so these labels can always be told apart from real ones.
"""),
    code("seg-13b", """
wb = workbench.open(ws.path)   # the notebook facade over the same workspace
display(wb.label())            # click into it, then press keys
"""),
    code("seg-14", """
from workbench.data.labelers import concept_for_segment
from workbench.data.segment import Segment

index_to_concept = {i: c for i, c in folder.parts_map.items() if c in ontology.concepts}
first = ws.store.find_image(rec.id)                        # the store keys images by their path in the data set
mine = sorted(ws.store.segments(image_id=first.id, settings_hash=shash), key=lambda s: -s.area)[:8]
hand = {}
for s in mine:
    x0, y0, x1, y1 = s.bbox
    concept = concept_for_segment(s.crop_mask(), parts[y0:y1, x0:x1], index_to_concept)   # "your" answer
    ws.store.set_label(s.id, concept, source="person", author="stand-in")
    hand[s.id] = concept
display(Image.fromarray(np.hstack([Segment(s.mask(), s.bbox, s.area).crop(image, 64) for s in mine])))
print(hand)
"""),
    md("seg-15", """
Nothing in the store is ever overwritten: a new label appends a row, and **undo** appends a row that
reverts the last one. The history of a segment says who labelled it what, when, and from which source
(`person`, `llm` for a model's pre-sort that a person accepted, `ground_truth` for part masks).
"""),
    code("seg-16", """
sid = mine[0].id
ws.store.set_label(sid, "leaf", source="person", author="stand-in")   # a slip...
ws.store.undo(sid, author="stand-in")                                # ...taken back
for row in ws.store.label_history(sid):
    print(row.id, row.concept, row.source, row.author, "(undoes row %s)" % row.reverts if row.reverts else "")
"""),
    code("seg-17", """
# NBVAL_CHECK_OUTPUT
current = ws.store.label(sid)
print("after undo the label is the first one again:", current.concept == hand[sid], current.source)
""", expect="after undo the label is the first one again: True person\n"),
    md("seg-18", """
## 5 · The rest from ground truth

`label_from_masks` gives each segment the concept whose mask covers at least half of its pixels (else
`none`). Those labels are recorded with `source="ground_truth"` and the author `masks:parts.json`, and
**a person's label is never replaced**: the summary counts them as kept.
"""),
    code("seg-19", """
from workbench.data.labelers import label_from_masks

lrep = label_from_masks(ws.store, folder, ws.ontology, settings_hash=shash)
print(lrep.summary())
"""),
    code("seg-20", """
# NBVAL_CHECK_OUTPUT
print("kept every hand label:", lrep.kept_person == len(hand))
done, total = ws.store.progress(shash)
print("all segments labelled:", done == total)
print("sources:", sorted({row.source for row in ws.store.labels()}))
""", expect="kept every hand label: True\nall segments labelled: True\nsources: ['ground_truth', 'person']\n"),
    code("seg-21", """
print("segments per concept:", ws.store.counts())
print("by a person:         ", ws.store.counts(source="person"))
json_path, csv_path = ws.export_labels()   # text you can commit and diff (the SQLite store is not in git)
print(csv_path.relative_to(ws.path))
print("".join(csv_path.read_text().splitlines(keepends=True)[:4]))
"""),
    md("seg-22", """
The next notebook, `03_train_and_compose.ipynb`, trains one tiny net (or rule) per concept from these
labels. From the command line the same stage is `workbench segment --workspace WS --dataset DIR` and
`workbench label --workspace WS --from-masks`.

## Your own images

An image folder `<root>/<class>/<image>.png|jpg`: the class folder named like the ontology's root
(`daisy`) holds the positives, any other class folder the negatives. Part masks are optional; without
them you label by hand (and with an LLM's pre-sort, see `01_grow_ontology.ipynb`). `check_dataset`
lists unreadable images (truncated, empty, not an image, decompression bombs) by name; they are
skipped, never fatal. Set `WORKBENCH_IMAGES` to your folder and run the cell.
"""),
    code("seg-23", """
MY_IMAGES = os.environ.get("WORKBENCH_IMAGES")   # e.g. "/data/flowers"
if MY_IMAGES:
    from workbench.data.datasets import ImageFolder, check_dataset

    print(check_dataset(MY_IMAGES))
    my_folder = ImageFolder(MY_IMAGES)
    my_ws = Workspace.create(HERE / "my-workspace", ontology, Settings(dataset=str(my_folder.root)))
    print(segment_dataset(my_ws.store, my_folder, seg, cache_dir=my_ws.cache_dir / "segments").summary())
    if my_folder.has_parts:
        print(label_from_masks(my_ws.store, my_folder, ontology).summary())
    else:
        print("no part masks: label by hand with workbench.open(my_ws.path).label()")
else:
    print("WORKBENCH_IMAGES is not set: skipped")
"""),
    md("seg-24", """
## SAM with a checkpoint

`segment-anything` cuts images into object-like masks; it needs a checkpoint file (e.g.
`sam_vit_b_01ec64.pth`, ~375 MB, from the segment-anything repository) and is slow on a CPU (seconds per
image; a GPU is used when present). It does not fit in Binder's memory. Set `WORKBENCH_SAM_CHECKPOINT`
to the `.pth` file (or pass `checkpoint=`); the segmenter's settings hash holds the checkpoint's
SHA-256, so its segments never mix with the weight-free ones.
"""),
    code("seg-25", """
SAM_CHECKPOINT = os.environ.get("WORKBENCH_SAM_CHECKPOINT")
if SAM_CHECKPOINT:
    sam = make_segmenter("sam", checkpoint=SAM_CHECKPOINT, points_per_side=16)
    sam_segments = sam.segment(image)
    print(sam, len(sam_segments), "segments")
    display(Image.fromarray(np.hstack([s.crop(image, 64) for s in sorted(sam_segments, key=lambda s: -s.area)[:12]])))
else:
    print("WORKBENCH_SAM_CHECKPOINT is not set: skipped (the weight-free segmenter is the default)")
"""),
    md("seg-26", """
## A Dask cluster (or local processes)

`segment_dataset` accepts any `concurrent.futures.Executor`. `workbench.parallel.executor` gives one:
`workers=N` for a local process pool, or `scheduler="tcp://host:8786"` for a Dask distributed cluster
(start one with `dask scheduler` and `dask worker tcp://host:8786`). On a cluster, the image folder and
the cache folder must be on storage every worker can read at the same path. From the command line:
`workbench segment --workspace WS --dataset DIR --scheduler tcp://host:8786`.
"""),
    code("seg-27", """
from workbench.parallel import executor

SCHEDULER = os.environ.get("WORKBENCH_SCHEDULER")   # e.g. "tcp://10.0.0.5:8786"
if SCHEDULER:
    with executor(scheduler=SCHEDULER) as ex:
        print(segment_dataset(ws.store, folder, seg, executor=ex, cache_dir=ws.cache_dir / "segments").summary())
else:
    print("WORKBENCH_SCHEDULER is not set: skipped (with workers=2 instead: "
          "`with executor(workers=2) as ex: segment_dataset(..., executor=ex)`)")
"""),
    final_cell("seg-28", close="wb.close()\nws.close()"),
]


# ----------------------------------------------------------------------------- 03 train and compose
NB03 = [
    md("tr-01", """
# 03 · Train and compose

From labelled segments to a classifier you can read. Each **leaf** concept of the ontology (petal,
disk, stem, leaf) gets its own tiny model: a net of at most 3 conv layers and under 1,000 parameters, or
a **plain-code rule** (the daisy's disk is `yellow_disk`: deep yellow, roundish, compact). Each
**composite** (flower head, then daisy) is a tiny net over its parts' image-level scores (the best
segment per part). Composed bottom-up, they make the **hybrid classifier**; it is then measured
honestly: per concept, against an end-to-end CNN with one part net's budget, and against a control whose
segment labels were shuffled.

This notebook: set up (data, workspace, segments and ground-truth labels, as in notebook 02), plan and
train, read the per-concept table, explain predictions, compare with the baseline and the control,
retrain only what changed after a few labels change, and read the models on disk. At the end: training
on a Dask cluster, and the full report from the command line.
""" + SETUP_NOTE),
    setup_cell("tr-02", "03"),
    code("tr-03", """
from workbench.data.datasets import generate_demo
from workbench.data.labelers import label_from_masks
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.data.segment import make_segmenter, segment_dataset, settings_hash
from workbench.workspace.settings import Settings
from workbench.workspace.folder import Workspace

folder = generate_demo(HERE / "data", n_per_class=20, seed=0)
ontology = Ontology.load(shipped_ontology("daisy"))
ws = Workspace.create(HERE / "workspace", ontology, Settings(dataset=str(folder.root)))
seg = make_segmenter("weightfree")
shash = settings_hash(seg)
print(segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments", progress=False).summary())
print(label_from_masks(ws.store, folder, ontology, settings_hash=shash).summary())
""" + HTML_TABLE),
    md("tr-04", """
## 1 · From the store to training tables

`collect` reads every segment and its current label from the store and cuts its crop (cached).
`split_images` splits **by image**, never by segment, so no image feeds both sides, and the
validation set is class-balanced. `TrainConfig` holds how models are trained; it is part of every
concept's fingerprint.
"""),
    code("tr-05", """
from workbench.models.train import TrainConfig, collect, plan_training, split_images, train_hybrid

config = TrainConfig(max_epochs=25, random_state=0)
images, segments = collect(ws.store, shash, config.crop_size, image_root=folder.root, cache_dir=ws.cache_dir)
images.split = split_images(images, config.val_fraction, config.random_state)
print(len(images), "images:", {s: int(images.mask(s).sum()) for s in ("train", "val")},
      "|", len(segments), "segments, crops", segments.crops.shape)
"""),
    md("tr-06", """
## 2 · Plan, then train

`plan_training` says, per concept, whether it trains and **why**: a new concept, changed labels, a
changed child, other settings. A concept whose fingerprint (implementation, settings, training data,
children's fingerprints) matches its saved model is loaded instead.
"""),
    code("tr-07", """
for c, p in plan_training(ontology, images, segments, config, ws.models_dir, shash).items():
    print(f"{c:<12} {'train' if p.retrain else 'keep '}  {p.reason}")
"""),
    code("tr-08", """
t = time.perf_counter()
result = train_hybrid(ontology, images, segments, config, models_dir=ws.models_dir, settings_hash=shash)
print(result.summary())
print(f"trained in {time.perf_counter() - t:.1f} s")
"""),
    md("tr-09", """
## 3 · Per concept

Leaves are scored on the labelled segments of validation images, composites and the root on
validation images. The table shows *balanced* accuracy: most segments are `none`, so a net that never
fires would still score a high plain accuracy, while its balanced 50% says exactly that; the status
column calls such a concept `dead` (or `weak` below 65%) and says what it lacks. On a data
set this small (28 training images) a part net can stop early without learning its concept; more
labelled segments, or a rule for it, are the fixes, and the table is where you see which concept needs
them.
"""),
    code("tr-10", """
from workbench.evaluation.evaluate import concept_metrics, hybrid_metrics

metrics = concept_metrics(ontology, result.models, images, segments)
display(table([[c, m["kind"], m["implementation"], pct(m["val_balanced_accuracy"]),
                m["status"] + (": " + m["status_reason"] if m["status_reason"] else ""),
                m["params"], result.examples.get(c)] for c, m in metrics.items()],
              ["concept", "kind", "implementation", "val balanced accuracy", "status", "parameters", "train examples"]))
"""),
    code("tr-11", """
# NBVAL_CHECK_OUTPUT
print([(c, m["kind"], m["implementation"]) for c, m in metrics.items()])
print("parameters per leaf net < 1000:", all(m["params"] < 1000 for m in metrics.values()))
""", expect="[('disk', 'part', 'rule'), ('leaf', 'part', 'net'), ('petal', 'part', 'net'), ('stem', 'part', 'net'), "
             "('flower_head', 'composite', 'net'), ('daisy', 'root', 'net')]\nparameters per leaf net < 1000: True\n"),
    code("tr-12", """
from workbench.evaluation.report import ontology_svg

display(SVG(ontology_svg(ontology, metrics)))   # the concept graph, coloured by validation accuracy
"""),
    md("tr-13", """
## 4 · Compose and explain

`result.hybrid()` composes the models along the ontology. For one image, `explain` gives every
concept's score and, for parts, the segment that fired: the classifier's reasoning, concept by concept.
"""),
    code("tr-14", """
import io

from workbench.evaluation.evaluate import load_images
from workbench.evaluation.report import render_explanation

hybrid = result.hybrid()
pixels, _problems = load_images(images, folder.root)
val_rows = np.flatnonzero(images.mask("val"))
for i in (val_rows[0], val_rows[-1]):
    rows = segments.of_image(int(i))
    ex = hybrid.explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
    print(images.paths[i], "- class:", images.classes[i])
    print(ex)
    display(Image.open(io.BytesIO(render_explanation(pixels[i], ex))))
"""),
    md("tr-15", """
## 5 · Against a baseline and a control

- **Same-budget CNN**: an end-to-end CNN with about as many parameters as one part net, trained on
  whole images. If it wins, the concepts are not (yet) paying for themselves.
- **Shuffled-labels control**: the same hybrid, retrained with segment labels permuted between
  segments. If the control scores like the real hybrid, the concepts are decoration.

On 40 generated images (12 for validation: one image is 8 points) these numbers are noisy; the
README's table is measured on more.
"""),
    code("tr-16", """
from workbench.evaluation.evaluate import baseline_metrics, shuffled_control

hyb = hybrid_metrics(ontology, result.models, images, segments)
base = baseline_metrics(ontology, images, pixels, config, max_epochs=30)
base.pop("_model")
ctl = shuffled_control(ontology, images, segments, config)
rows = [["hybrid (segments)", pct(hyb["val_balanced_accuracy"]), hyb["params"]],
        ["CNN, per-net budget", pct(base["val_balanced_accuracy"]), base["params"]],
        ["control: shuffled segment labels", pct(ctl.get("val_balanced_accuracy")), "–"]]
display(table(rows, ["classifier", "validation balanced accuracy", "parameters"]))
"""),
    code("tr-17", """
# NBVAL_CHECK_OUTPUT
print([r[0] for r in rows], len(rows[0]))
print("validation images:", hyb["val_images"] == int(images.mask("val").sum()))
""", expect="['hybrid (segments)', 'CNN, per-net budget', 'control: shuffled segment labels'] 3\n"
             "validation images: True\n"),
    md("tr-18", """
## 6 · Change a few labels, retrain only what changed

A person corrects three `leaf` labels (here: to `none`). Only `leaf` and the concepts above it
(`daisy`) have a new fingerprint; `petal`, `disk`, `stem` and `flower_head` are loaded from disk.
"""),
    code("tr-19", """
leaf_rows = [r for r, lab in enumerate(segments.labels) if lab == "leaf" and images.split[segments.image_index[r]] == "train"]
for r in leaf_rows[:3]:
    ws.store.set_label(int(segments.segment_ids[r]), "none", source="person", author="stand-in")
images2, segments2 = collect(ws.store, shash, config.crop_size, image_root=folder.root, cache_dir=ws.cache_dir)
images2.split = split_images(images2, config.val_fraction, config.random_state)
t = time.perf_counter()
result2 = train_hybrid(ontology, images2, segments2, config, models_dir=ws.models_dir, settings_hash=shash)
print(result2.summary())
print(f"retrained in {time.perf_counter() - t:.1f} s")
"""),
    code("tr-20", """
# NBVAL_CHECK_OUTPUT
print("retrained:", result2.retrained)
""", expect="retrained: ['leaf', 'daisy']\n"),
    md("tr-21", """
## 7 · The models on disk

Each concept is one `safetensors` file (no pickles) plus a JSON sidecar with its fingerprint and
metrics, in the workspace's `models/`, so a model change is a reviewable file change too.
`load_model` reads one back.
"""),
    code("tr-22", """
from workbench.models.loading import load_model

print(sorted(p.name for p in ws.models_dir.iterdir() if not p.name.startswith(".")))
petal = load_model(ws.models_dir / "petal.safetensors")
print(type(petal).__name__, petal.n_params, "parameters")
"""),
    md("tr-23", """
## Training on a Dask cluster (or local processes)

Leaves are independent, so `train_hybrid(..., executor=ex)` fits them in parallel on any executor: a
local process pool (`executor(workers=2)`) or a Dask cluster (`executor(scheduler="tcp://host:8786")`).
Composites are tiny and train in this process. The trained models are identical to inline training.
"""),
    code("tr-24", """
from workbench.parallel import executor

SCHEDULER = os.environ.get("WORKBENCH_SCHEDULER")   # e.g. "tcp://10.0.0.5:8786"
if SCHEDULER:
    with executor(scheduler=SCHEDULER) as ex:
        r = train_hybrid(ontology, images2, segments2, config, settings_hash=shash, executor=ex, force=True)
    print(r.summary())
else:
    print("WORKBENCH_SCHEDULER is not set: skipped")
"""),
    md("tr-25", """
## The whole report

`workbench demo --quick` (or `workbench run --dataset DIR --ontology FILE --out DIR`) runs every stage on
80 images and writes `report.json` and a self-contained `report.html`: this table plus the source
study's prototype composition, a swap test (one part retrained with another seed and swapped in) and
where each part fires outside its concept. It takes about a minute and a half on two cores.
"""),
    final_cell("tr-26"),
]

# ------------------------------------------------------------------------------------------- workshop
# Each exercise: (number, task markdown, answer template for the participant, solution code, check call).
# The exercise notebook gets the template; the solution notebook (solutions/) the solution, with the
# check run strict (a wrong solution fails the test run).


def _workshop_setup(block: int, solution: bool) -> str:
    path = ('import sys\n\nsys.path.insert(0, str(Path.cwd().parent))   # checks.py and course.py live one folder up\n'
            if solution else "")
    return f"""
import os
from pathlib import Path

from IPython.display import HTML, display

{path}import checks as check          # check.ex{block}_1(...) says whether an answer is right; check.hint("{block}.1") helps
import course

wb, folder = course.start({block})   # a fresh workspace for this block, in a temporary folder
ws = wb.workspace
display(wb)
"""


def _workshop_final() -> str:
    return """
import shutil

wb.close()
if not os.environ.get("WORKBENCH_NOTEBOOK_DIR"):
    shutil.rmtree(wb.here, ignore_errors=True)
print("block done")
"""


WORKSHOP = {
    1: {
        "file": "ex1_ontology.ipynb",
        "title": "Block 1 · The ontology, and changing it by proposal (25 min)",
        "intro": """
The workspace holds the shipped daisy ontology and one pending proposal from a suggester. You will
read the ontology, propose a concept yourself, fix a description the lint rejects, and review someone
else's proposal. Each exercise has a cell for your answer (replace the `...`) and a check cell that
tells you whether it is right. `check.hint("1.2")` prints a hint.
""",
        "exercises": [
            ("1.1", """
### 1.1 · Read the ontology (3 min)

Which concepts is the flower head made of? Put their ids in `parts_of_flower_head` (a list).
""", """
print(wb.ontology.dumps())
parts_of_flower_head = ...
""", """
print(wb.ontology.dumps())
parts_of_flower_head = list(wb.ontology.parts("flower_head"))
""", "check.ex1_1(wb, parts_of_flower_head{strict})"),
            ("1.2", """
### 1.2 · Propose a concept (8 min)

From the side, a daisy's flower head sits in a cup of small green *sepals*. Make a proposal that adds a
concept `sepal` as a part of `flower_head`, with a description of what a camera sees, and save it for
review (do not accept it). The proposal shows each edit's lint warnings: there should be none.
""", """
from workbench.review.proposals import make_proposal
from workbench.review.render import proposal_html
from workbench.review.store import ProposalStore

sepal_proposal = ...   # make_proposal(wb.ontology, [{"op": {...}, "rationale": "..."}], kind="person", author="person:you", title="..."), then save it
""", """
from workbench.review.proposals import make_proposal
from workbench.review.render import proposal_html
from workbench.review.store import ProposalStore

sepal_proposal = ProposalStore(ws).save(make_proposal(
    wb.ontology,
    [{"op": {"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
             "description": "Small green pointed leaves under the flower head, shorter than the petals, "
                            "seen as a green ring or points when the flower is viewed from the side."},
      "rationale": "Green points show under the petals in side views."}],
    kind="person", author="person:you", title="A sepal under the flower head"))
display(HTML(proposal_html(sepal_proposal)))
""", "check.ex1_2(wb, sepal_proposal{strict})"),
            ("1.3", """
### 1.3 · A description a camera can check (5 min)

The lint (`workbench.ontology.lint.lint_concept`) flags descriptions that talk about function or hedge, because
neither a person labelling segments nor a model can check them. This one fails:
`"A green leaf near the ground, probably used for photosynthesis."` Write one for the leaf that passes
and says what a leaf looks like.
""", """
from workbench.ontology.lint import lint_concept

print(lint_concept("Leaf", "A green leaf near the ground, probably used for photosynthesis."))
leaf_description = ...
""", """
from workbench.ontology.lint import lint_concept

print(lint_concept("Leaf", "A green leaf near the ground, probably used for photosynthesis."))
leaf_description = ("A matte green leaf, spoon- or lance-shaped with a smooth or slightly toothed edge, "
                    "mostly in a low rosette at the foot of the stem.")
print(lint_concept("Leaf", leaf_description))
""", "check.ex1_3(wb, leaf_description{strict})"),
            ("1.4", """
### 1.4 · Review someone else's proposal (9 min)

A suggester proposed three edits for a side view of a daisy. Review them in the widget (or with
`preview`). Beside the diff, a *second reviewer* has left findings before you: here the workbench's
own checks (a duplicate description, an edit that cannot apply). Findings are advice; you decide.
Accept only what deserves to go in, and say `reviewed = True`. Think: is each edit valid? Does the
ontology already have what it adds?
""", """
from workbench.review.decisions import accept, preview

to_review = next(p for p in ProposalStore(ws).list(status="pending") if p.title == course.REVIEW_TITLE)
display(wb.review(to_review.id))
reviewed = ...   # accept(ws, to_review, [...], by="you"), then reviewed = True
""", """
from workbench.review.decisions import accept, preview

to_review = next(p for p in ProposalStore(ws).list(status="pending") if p.title == course.REVIEW_TITLE)
display(wb.review(to_review.id))   # the widget asks the second reviewer first; its findings sit beside the diff
for finding in ProposalStore(ws).load(to_review.id).review.findings:
    print(finding.line())
print([(e.summary(), e.decision, e.problem) for e in to_review.edits])
print(preview(ws, to_review, [0]).diff)
accept(ws, to_review, [0], by="you", note="stalk is the stem; the sepal part needs the concept first (1.2)")
reviewed = True
""", "check.ex1_4(wb, reviewed{strict})"),
        ],
    },
    2: {
        "file": "ex2_label_and_train.ipynb",
        "title": "Block 2 · Label, train, read the result (25 min)",
        "intro": """
The workspace holds the daisy ontology and 40 generated images, already cut into segments; nothing is
labelled. You will label some segments by hand, fill in the rest from the data set's part masks,
train one model per concept, and find out what retrains when labels change. Stuck on a step?
`course.catch_up(wb, folder, "2.1")` does it for you, so you can go on.
""",
        "exercises": [
            ("2.1", """
### 2.1 · Label by hand (8 min)

Run the cell, click into the labeler and label at least 10 segments with the keyboard: one key per
concept (shown on the buttons), `n` for none, `u` to undo. Each keypress is stored at once.
""", """
labeler = wb.label()
display(labeler)
""", """
labeler = wb.label()
display(labeler)
# unattended, a stand-in presses the keys: the answer read from the part mask, through the same method
stand_in = wb.label(author="stand-in")
for _ in range(12):
    stand_in.label(course.stand_in_answer(wb, folder, stand_in.segment_id))
""", "check.ex2_1(wb{strict})"),
            ("2.2", """
### 2.2 · The rest from the masks (2 min)

Label every remaining segment from the ground-truth part masks, in one call, without overwriting your
hand labels.
""", """
from workbench.data.labelers import label_from_masks

...
""", """
from workbench.data.labelers import label_from_masks

print(label_from_masks(wb.store, folder, wb.ontology).summary())
""", "check.ex2_2(wb{strict})"),
            ("2.3", """
### 2.3 · Train, and find the weakest part (8 min)

Train (the dashboard shows each concept as it trains), then name the part (a leaf concept of the
ontology) with the lowest *balanced* validation accuracy.
""", """
dash = wb.train()
display(dash)
outcome = dash.outcome
weakest_part = ...
""", """
dash = wb.train()
display(dash)
outcome = dash.outcome
parts = {c: m["val_balanced_accuracy"] for c, m in outcome["concepts"].items() if m["kind"] == "part"}
print(parts)
weakest_part = min(parts, key=lambda c: (parts[c], c))
""", "check.ex2_3(wb, weakest_part, outcome{strict})"),
            ("2.4", """
### 2.4 · What retrains? (7 min)

The next cell corrects three `stem` labels to `none`. Before training again, predict which concepts
will retrain: put their ids in `will_retrain`. Then the check trains and compares.
""", """
for row in wb.store.labels(concept="stem")[:3]:
    wb.store.set_label(row.segment_id, "none", source="person", author="you")
will_retrain = ...
""", """
for row in wb.store.labels(concept="stem")[:3]:
    wb.store.set_label(row.segment_id, "none", source="person", author="you")
will_retrain = ["stem", "daisy"]   # the stem's data changed, and the daisy is built on the stem
""", """again = wb.train().outcome
check.ex2_4(wb, will_retrain, again["result"].retrained if again else None{strict})"""),
        ],
    },
    3: {
        "file": "ex3_pull_requests.ipynb",
        "title": "Block 3 · Change it like code: gate, merge, trace, revert (25 min)",
        "intro": """
The workspace holds the daisy ontology, every segment labelled and every concept trained. You will
propose a simplification, let the merge gate judge it, merge it, trace it with `why`, revert it, and
write a test for one segment (a *pin*) that stops a harmful change. (The set-up trains the models
first: it takes about half a minute.)
""",
        "exercises": [
            ("3.1", """
### 3.1 · Propose, gate, merge (9 min)

Propose to replace the petal net by the plain-code rule `white_elongated` (a petal: white, longer than
wide) and run it through the gate with `wb.apply`. If the gate refuses, merge it anyway with a reason
(`override="..."`): in 3.3 you will revert it. Read the verdict: how many points did the root gain or
lose, and how sure is the gate?
""", """
from workbench.review.gate import GateRejected
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore

...
""", """
from workbench.review.gate import GateRejected
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore

petal_rule = ProposalStore(ws).save(make_proposal(
    wb.ontology, [{"op": {"op": "describe", "id": "petal", "implementation": "rule", "rule": "white_elongated"},
                   "rationale": "A petal is white and longer than wide; a rule says so in two lines."}],
    kind="refactor", author="person:you", title="Petals by rule"))
try:
    applied = wb.apply(petal_rule.id)
except GateRejected as e:
    print("the gate refused:", e)
    applied = wb.apply(petal_rule.id, override="workshop: merged to practise the revert")
print(applied)
""", "check.ex3_1(wb{strict})"),
            ("3.2", """
### 3.2 · Why is the petal a rule? (4 min)

Which proposal last changed the petal? Put its id (e.g. `"0001"`) in `last_petal_change`.
""", """
last_petal_change = ...
""", """
print(wb.why("petal"))
last_petal_change = wb.why("petal").last_changed.proposal
""", "check.ex3_2(wb, last_petal_change{strict})"),
            ("3.3", """
### 3.3 · Revert (4 min)

Undo the petal change with a reason. The revert is a new commit; the history keeps both.
""", """
...
""", """
back = wb.revert(last_petal_change, reason="back to the net after the workshop")
print(back.summary())
for change in wb.history(limit=3):
    print(change.summary())
""", "check.ex3_3(wb{strict})"),
            ("3.4", """
### 3.4 · A test for one segment (6 min)

The gate judges a change mostly by the root's accuracy on a few validation images, which can miss a
change that breaks one part. A *pin* is a test you write for one segment: "the petal model must (or
must not) call this a petal". Someone wants to find petals with the disk's yellow rule; the proposal
is made for you below. First pin the yellow disk of `daisy/0000.png` as *must not be a petal*, check
with `wb.test()` that your pin passes, then run the proposal through the gate with `wb.apply`. Read
the verdict: what does the accuracy say, and what do the pins say? Leave the proposal unmerged.
""", """
from workbench.models.inference import explain_image
from workbench.review.gate import GateRejected

display(wb.explain("daisy/0000.png"))
_, explanation, _ = explain_image(ws, "daisy/0000.png")
disk_box = explanation.concepts["disk"].bbox   # the box of the segment the disk fired on
disk_rule = course.petals_by_disk_rule(wb)     # the proposal to gate
...   # wb.pin(("daisy/0000.png", disk_box), "petal", "must_not"), print(wb.test()), then wb.apply(disk_rule.id)
""", """
from workbench.models.inference import explain_image
from workbench.review.gate import GateRejected

display(wb.explain("daisy/0000.png"))
_, explanation, _ = explain_image(ws, "daisy/0000.png")
disk_box = explanation.concepts["disk"].bbox   # the box of the segment the disk fired on
disk_rule = course.petals_by_disk_rule(wb)     # the proposal to gate
wb.pin(("daisy/0000.png", disk_box), "petal", "must_not", note="the yellow disk is never a petal")
print(wb.test())
try:
    wb.apply(disk_rule.id)
except GateRejected as e:   # the gate said no: its verdict, in words
    print(e.verdict)
""", "check.ex3_4(wb{strict})"),
        ],
        "outro": ("""
### One more thing: a new concept goes in *provisional* (2 min, nothing to answer)

An addition must *gain* accuracy to merge, and nobody has labelled a new concept yet, so the gate
cannot judge it. `wb.apply` then takes it in as *provisional*: it gets a labeler key and its own
model, but the classifier leaves it out until it has enough labels, the gate has measured a gain,
and a person confirms it (`wb.confirm`). Notebook 04, section 5, follows one all the way.
""", """
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore

bud = ProposalStore(ws).save(make_proposal(
    wb.ontology, [{"op": {"op": "add_concept", "id": "bud", "label": "Bud", "parents": ["daisy"],
                          "description": "A small closed green bud on its own stem, round, with white showing at the tip."},
                   "rationale": "Some daisies have buds beside the open flower."}],
    kind="person", author="person:you", title="Buds"))
print(wb.apply(bud.id))
for status in wb.provisional(gate=False):
    print(status.line())
wb.remove("bud", reason="no buds in these pictures yet")
print("bud" in wb.ontology.concepts)
"""),
    },
}


def workshop_notebook(block: int, solution: bool) -> list[dict]:
    spec = WORKSHOP[block]
    pre = f"ws{block}{'s' if solution else ''}"
    what = "solutions" if solution else "exercises"
    cells = [md(f"{pre}-01", f"# {spec['title']}" + (" · solutions" if solution else "") + "\n" + spec["intro"]
                + ("\nThese are the **solutions**, run as a test: each check is strict." if solution else "")),
             code(f"{pre}-02", _workshop_setup(block, solution))]
    n = 3
    for number, task, template, sol, check_call in spec["exercises"]:
        cells.append(md(f"{pre}-{n:02d}", task))
        cells.append(code(f"{pre}-{n + 1:02d}", sol if solution else template))
        call = check_call.format(strict=", strict=True" if solution else "") + ";"   # ";": no True/False echo
        if not solution:
            call = f"# check.hint(\"{number}\")   # a hint, if you want one\n" + call
        cells.append(code(f"{pre}-{n + 2:02d}", call))
        n += 3
    if "outro" in spec:   # something to watch, not an exercise: no template, no check
        cells.append(md(f"{pre}-{n:02d}", spec["outro"][0]))
        cells.append(code(f"{pre}-{n + 1:02d}", spec["outro"][1]))
        n += 2
    cells.append(md(f"{pre}-{n:02d}", f"That was block {block} ({what})." + (
        " Next: the next block's notebook." if block < 3 else
        " That's the workshop: the tour and notebooks 01-04 go deeper; `FACILITATOR.md` lists what to try next.")))
    cells.append(code(f"{pre}-{n + 1:02d}", _workshop_final()))
    return cells




NOTEBOOKS: dict[str, list[dict]] = {
    "00_tour.ipynb": NB00,
    "01_grow_ontology.ipynb": NB01,
    "02_segment_and_label.ipynb": NB02,
    "03_train_and_compose.ipynb": NB03,
    "04_pull_request_loop.ipynb": NB04,
    **{f"workshop/{spec['file']}": workshop_notebook(b, False) for b, spec in WORKSHOP.items()},
    **{f"workshop/solutions/{spec['file']}": workshop_notebook(b, True) for b, spec in WORKSHOP.items()},
}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    only = [a for a in argv if not a.startswith("--")]
    bad = 0
    for name, cells in NOTEBOOKS.items():
        if only and not any(name.startswith(o) for o in only):
            continue
        path = NB_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = text_of(build(cells))
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{path.relative_to(ROOT)} differs from scripts/build_notebooks.py")
                bad = 1
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({len(cells)} cells)")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
