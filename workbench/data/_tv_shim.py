"""Private: a pure torch/PIL stand-in for the four torchvision functions segment-anything imports.

segment-anything imports ``torchvision.ops.boxes.batched_nms`` / ``box_area`` and
``torchvision.transforms.functional.resize`` / ``to_pil_image`` at load time. Where torchvision is
missing or broken (its PyPI wheel fails at import on a CPU-only torch: ``operator torchvision::nms
does not exist``), :func:`ensure_torchvision` registers these stand-ins in ``sys.modules`` so the import
succeeds. Where the real torchvision imports, it is used and nothing is installed.

>>> import torch
>>> boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
>>> scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
>>> batched_nms(boxes, scores, torch.tensor([0, 0, 0, 1]), iou_threshold=0.5).tolist()
[3, 0, 2]
>>> box_area(boxes).tolist()
[100.0, 81.0, 100.0, 100.0]
"""
from __future__ import annotations

import sys
import types
from collections.abc import Sequence

import numpy as np

__all__ = ["ensure_torchvision", "batched_nms", "nms", "box_area", "resize", "to_pil_image"]

#: Marks the stand-in modules so tests and error messages can tell them from the real torchvision.
SHIM_ATTR = "__workbench_shim__"


def box_area(boxes):
    """Areas of ``(x1, y1, x2, y2)`` boxes (N x 4 tensor) -> N tensor."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression: indices kept, by decreasing score (same contract as torchvision)."""
    import torch

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    b = boxes.detach().to("cpu", torch.float64).numpy()
    order = np.argsort(-scores.detach().to("cpu", torch.float64).numpy(), kind="stable")
    b = b[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area[:, None] + area[None, :] - inter)
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.as_tensor(order[keep], dtype=torch.int64, device=boxes.device)


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """NMS done independently per category ``idxs``: boxes of different categories never suppress
    each other (the usual coordinate-offset trick)."""
    if boxes.numel() == 0:
        return nms(boxes, scores, iou_threshold)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_pil_image(pic, mode=None):
    """H x W x C uint8 array, or C x H x W tensor, -> PIL image."""
    from PIL import Image

    if hasattr(pic, "detach"):  # a tensor: C x H x W, float in [0, 1] or uint8
        t = pic.detach().cpu()
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        arr = t.numpy()
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    else:
        arr = np.asarray(pic)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)


def resize(img, size: int | Sequence[int], interpolation=None, max_size=None, antialias=True):
    """Resize a PIL image; ``size`` is ``(h, w)``, or an int for the shorter edge (bilinear)."""
    from PIL import Image

    if not isinstance(img, Image.Image):
        raise TypeError("the torchvision stand-in only resizes PIL images (segment-anything's use)")
    w, h = img.size
    if isinstance(size, int) or len(size) == 1:
        s = size if isinstance(size, int) else size[0]
        if w <= h:
            new_w, new_h = s, int(s * h / w)
        else:
            new_w, new_h = int(s * w / h), s
    else:
        new_h, new_w = int(size[0]), int(size[1])
    return img.resize((new_w, new_h), Image.BILINEAR)


def ensure_torchvision() -> bool:
    """Make ``import torchvision.ops.boxes`` and ``torchvision.transforms.functional`` work.

    Returns ``True`` when the stand-in was installed, ``False`` when the real torchvision works.
    """
    existing = sys.modules.get("torchvision")
    if existing is not None and getattr(existing, SHIM_ATTR, False):
        return True
    try:
        import torchvision.ops.boxes  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401

        return False
    except Exception:  # noqa: BLE001 - missing (ImportError) or broken (RuntimeError at import time)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
    me = sys.modules[__name__]
    mods = {}
    for name in ("torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms", "torchvision.transforms.functional"):
        m = types.ModuleType(name, "workbench stand-in for torchvision (see workbench.data._tv_shim)")
        setattr(m, SHIM_ATTR, True)
        m.__path__ = []  # a package, so submodule imports resolve through sys.modules
        mods[name] = m
    for fn in ("batched_nms", "nms", "box_area"):
        setattr(mods["torchvision.ops.boxes"], fn, getattr(me, fn))
        setattr(mods["torchvision.ops"], fn, getattr(me, fn))
    for fn in ("resize", "to_pil_image"):
        setattr(mods["torchvision.transforms.functional"], fn, getattr(me, fn))
    mods["torchvision"].ops = mods["torchvision.ops"]
    mods["torchvision"].transforms = mods["torchvision.transforms"]
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    sys.modules.update(mods)
    return True
