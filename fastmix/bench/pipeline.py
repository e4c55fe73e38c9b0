"""``python -m fastmix bench --pipeline``: a DataLoader's throughput, measured the way users train.

A real ``torch.utils.data.DataLoader`` over a built-in set of JPEG images (made on the fly, nothing
downloaded), decoded with Pillow in the workers, batched by each pipeline's collate and consumed
by a loop in the main process that touches every batch. Every row is timed in images per second
for each ``num_workers``; the rows of one ``num_workers`` run epoch by epoch, interleaved round by
round, so that machine noise hits all of them alike.

    1   default_collate of uint8 CHW tensors (torchvision's PILToTensor), no mixing: the floor
    2   fastmix.MixupCollate -> uint8, from numpy HWC samples
    3   fastmix.MixupCollate -> float32 normalised, from numpy HWC samples
    4   timm's FastCollateMixup, from numpy CHW samples (timm's ToNumpy), when timm loads
    5a  default_collate of float32 normalised CHW tensors made in the worker, no mixing
    5   5a, then fastmix.Mixup in place in the main loop
    6   5a, then torchvision v2's MixUp / CutMix formulas in the main loop (the same draws as 5)
"""
from __future__ import annotations

import gc
import io
import os
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..collate import MixupCollate
from ..mixup import Mixup
from ..sampling.params import MixKind, MixParams
from .baselines import IMAGENET_MEAN, IMAGENET_STD
from .peers import load_timm_mixup
from .timing import ProgressCallback, aligned_columns, interleaved_medians, wall_seconds

DEFAULT_IMAGES = 1024
DEFAULT_BATCH = 128
DEFAULT_SIZE = 224
DEFAULT_ROUNDS = 7
DEFAULT_WORKERS = (0, 1, 2)
JPEG_QUALITY = 90
# The knobs of every mixing row (timm's ImageNet recipe).
MIX_KNOBS = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)

FLOOR = "1"  # every row's ratio is taken against row 1 with the same num_workers
FLOAT_FLOOR = "5a"  # rows whose batch is float32 normalised also against 5a: the float conversion is not mixing cost
FLOAT_ROWS = ("3", "5a", "5", "6")

_PIN_MEMORY_WARNING = r".*'pin_memory' argument is set as true but no accelerator is found.*"


@dataclass
class PipelineRow:
    key: str  # "1", "2", ..., "5a"
    pipeline: str
    num_workers: int
    images_per_s: float  # images of an epoch / median epoch seconds
    median_epoch_ms: float
    ratio_to_floor: float  # images/s over row 1's, same num_workers
    ratio_to_float_floor: Optional[float]  # images/s over row 5a's (rows 3, 5a, 5, 6), same num_workers
    round_images_per_s: List[float]  # each timed epoch, in order: the spread behind the median


# ---- the built-in images -------------------------------------------------------------------------

def make_jpegs(count: int, size: int, seed: int = 0) -> List[bytes]:
    """``count`` smooth procedural RGB images of ``size`` x ``size``, each JPEG-encoded once (quality 90)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 2.0 * np.pi, size, dtype=np.float32)
    jpegs = []
    for _ in range(count):
        channels = []
        for _c in range(3):
            # sin(fx x + fy y + p) as two outer products of 1-D waves: cheap, and smooth like a photo's
            # large areas; a second, finer wave and a gradient give the encoder something to code.
            value = np.zeros((size, size), dtype=np.float32)
            for amplitude, top in ((80.0, 3.0), (30.0, 12.0)):
                fx, fy = rng.uniform(0.5, top, 2)
                phase = rng.uniform(0.0, 2.0 * np.pi)
                u, v = fx * axis + phase, fy * axis
                value += amplitude * (np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u)))
            value += rng.uniform(-40.0, 40.0) * axis[None, :] / axis[-1] + 127.5
            channels.append(value)
        pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        jpegs.append(buffer.getvalue())
    return jpegs


# ---- what each pipeline's dataset returns for one decoded image (module level: picklable) ----------

def pil_to_tensor_uint8(image: Any) -> torch.Tensor:
    """uint8 (C, H, W), a view of an HWC copy: torchvision's ``pil_to_tensor``."""
    return torch.as_tensor(np.array(image, copy=True)).permute(2, 0, 1)


def numpy_hwc_uint8(image: Any) -> np.ndarray:
    """uint8 (H, W, C), as PIL gives it (``np.asarray``: read-only): what fastmix's README says to return."""
    return np.asarray(image)


def timm_to_numpy_chw_uint8(image: Any) -> np.ndarray:
    """uint8 (C, H, W): timm's ``ToNumpy`` (``np.array`` then ``np.rollaxis(a, 2)``, a strided view)."""
    return np.rollaxis(np.array(image, dtype=np.uint8), 2)


_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def float32_normalised_chw(image: Any) -> torch.Tensor:
    """float32 (C, H, W), ``(x / 255 - mean) / std``: torchvision's PILToTensor, ToDtype(scale=True), Normalize."""
    return pil_to_tensor_uint8(image).to(torch.float32).mul_(1.0 / 255.0).sub_(_MEAN).div_(_STD)


class JpegDataset(Dataset):
    """JPEG bytes and int labels; ``__getitem__`` decodes with Pillow and applies ``transform``."""

    def __init__(self, jpegs: Sequence[bytes], labels: Sequence[int], transform: Callable[[Any], Any]) -> None:
        self.jpegs = list(jpegs)
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        from PIL import Image

        image = Image.open(io.BytesIO(self.jpegs[index])).convert("RGB")
        return self.transform(image), self.labels[index]


# ---- mixing in the main loop ---------------------------------------------------------------------

class TorchvisionMixUpCutMix:
    """torchvision v2's ``RandomChoice([MixUp, CutMix])`` formulas on a float batch, fed fastmix's
    draws (a ``Mixup(seed=0)`` stream: the same lambdas, choices and boxes as row 5's ``Mixup(seed=0)``):

        MixUp:  out = x.roll(1, 0).mul_(1 - lam).add_(x.mul(lam))
        CutMix: out = x.clone(); out[..., y0:y1, x0:x1] = x.roll(1, 0)[..., y0:y1, x0:x1]
        targets: t = smoothed one_hot(labels); t.roll(1, 0).mul_(1 - lam).add_(t.mul(lam))

    images (B, C, H, W) float, labels (B,) int64 -> (new images, (B, num_classes) float32)."""

    def __init__(self, num_classes: int, seed: int = 0) -> None:
        self.draws = Mixup(num_classes=num_classes, seed=seed, **MIX_KNOBS)
        self.num_classes = num_classes
        self.smoothing = MIX_KNOBS["label_smoothing"]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        params: MixParams = self.draws.sample(images.shape[0], images.shape[-2], images.shape[-1])
        lam = float(params.lam[0])  # batch mode: one draw for the whole batch
        if int(params.kind[0]) == MixKind.PASTE:
            y0, y1, x0, x1 = (int(v) for v in params.box[0])
            rolled = images.roll(1, 0)
            images = images.clone()
            images[..., y0:y1, x0:x1] = rolled[..., y0:y1, x0:x1]
        elif int(params.kind[0]) == MixKind.BLEND:
            images = images.roll(1, 0).mul_(1.0 - lam).add_(images.mul(lam))
        targets = torch.nn.functional.one_hot(labels, self.num_classes).float()
        targets.mul_(1.0 - self.smoothing).add_(self.smoothing / self.num_classes)
        return images, targets.roll(1, 0).mul_(1.0 - lam).add_(targets.mul(lam))


PAGE_BYTES = 4096


def touch(images: torch.Tensor, targets: torch.Tensor) -> float:
    """Read one element per 4 KiB page of the (contiguous) batch, and every 8th target row: cheap,
    but the data must exist here. Every page, because a worker's batch arrives in shared memory
    that this process maps page by page on first access: a training loop's copy to the GPU pays
    that for every row, so a touch that skipped pages would leave it to whichever row mixes in
    the main loop (7-8 ms of a 77 MB float32 batch's 10-12 ms full read, measured here)."""
    step = max(1, PAGE_BYTES // images.element_size())
    return float(images.reshape(-1)[::step].sum()) + float(targets[::8].sum())


def consume_epoch(loader: DataLoader, mix: Optional[Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]]) -> int:
    """The training loop without the model: every batch of one epoch, mixed here when ``mix`` is
    given, then touched. Returns the number of images."""
    count = 0
    for images, targets in loader:
        if mix is not None:
            images, targets = mix(images, targets)
        touch(images, targets)
        count += images.shape[0]
    return count


# ---- the rows ------------------------------------------------------------------------------------

@dataclass
class Pipeline:
    """One row: what the dataset returns, how the DataLoader collates, what the main loop mixes."""

    key: str
    name: str
    transform: Callable[[Any], Any]
    collate: Callable[[List[Any]], Any]
    mix: Optional[Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]] = None


def build_pipelines(batch: int, num_classes: int, notes: List[str]) -> List[Pipeline]:
    """The rows, in table order (1, 2, 3, 4, 5a, 5, 6); timm's row only when timm loads, else a note."""
    normalised = dict(dtype=torch.float32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    pipelines = [
        Pipeline("1", "default_collate, uint8 CHW tensors (PILToTensor), no mixing", pil_to_tensor_uint8, default_collate),
        Pipeline("2", "fastmix MixupCollate -> uint8, numpy HWC samples", numpy_hwc_uint8,
                 MixupCollate(Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS), dtype=torch.uint8)),
        Pipeline("3", "fastmix MixupCollate -> float32 normalised, numpy HWC samples", numpy_hwc_uint8,
                 MixupCollate(Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS), **normalised)),
    ]
    timm_mixup, timm_how = load_timm_mixup()
    if timm_mixup is None:
        notes.append(f"no timm row (4): {timm_how}")
    elif batch % 2:
        notes.append(f"no timm row (4): timm's FastCollateMixup asserts an even batch size, got {batch}")
    else:
        notes.append(f"row 4 is {timm_how}")
        pipelines.append(Pipeline("4", "timm FastCollateMixup -> uint8, numpy CHW samples (ToNumpy)", timm_to_numpy_chw_uint8,
                                  timm_mixup.FastCollateMixup(num_classes=num_classes, **MIX_KNOBS)))
    pipelines += [
        Pipeline("5a", "default_collate, float32 normalised CHW tensors, no mixing", float32_normalised_chw, default_collate),
        Pipeline("5", "5a + fastmix Mixup in place in the main loop", float32_normalised_chw, default_collate,
                 Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS)),
        Pipeline("6", "5a + torchvision v2 MixUp/CutMix formulas in the main loop", float32_normalised_chw,
                 default_collate, TorchvisionMixUpCutMix(num_classes, seed=0)),
    ]
    return pipelines


def make_loader(dataset: Dataset, batch: int, num_workers: int, collate: Callable[[List[Any]], Any]) -> DataLoader:
    """The DataLoader users train with: shuffled, pinned, persistent workers, full batches only."""
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=num_workers, collate_fn=collate,
                      pin_memory=True, drop_last=True, persistent_workers=num_workers > 0,
                      generator=torch.Generator().manual_seed(0))


def pin_memory_status() -> str:
    if torch.accelerator.is_available():
        return f"pin_memory=True: batches are pinned for the {torch.accelerator.current_accelerator()} (a copy in the main process)"
    return ("pin_memory=True, but no accelerator here: torch does not pin (its warning about it is "
            "suppressed), so no row pays a pinning copy")


def run(
    images: int = DEFAULT_IMAGES,
    batch: int = DEFAULT_BATCH,
    size: int = DEFAULT_SIZE,
    rounds: int = DEFAULT_ROUNDS,
    workers: Sequence[int] = DEFAULT_WORKERS,
    num_classes: int = 1000,
    progress: Optional[ProgressCallback] = None,
    notes: Optional[List[str]] = None,
) -> List[PipelineRow]:
    """Images per second of every row for each ``num_workers`` in ``workers``: ``images`` JPEGs of
    ``size`` x ``size``, batches of ``batch`` (full batches only), one untimed warm-up epoch, then
    ``rounds`` epochs per row interleaved round by round; median epoch time per row.

    ``notes``, when given, receives what was measured how and what was left out."""
    if images < batch:
        raise ValueError(f"images: expected at least one batch ({batch}) of images, got {images}")
    notes = [] if notes is None else notes
    jpegs = make_jpegs(images, size)
    labels = np.random.default_rng(1).integers(0, num_classes, images).tolist()
    per_epoch = images // batch * batch
    notes.append(f"dataset: {images} procedural {size}x{size} RGB JPEGs (quality {JPEG_QUALITY}, "
                 f"{statistics.mean(map(len, jpegs)) / 1024:.1f} KiB on average), decoded with Pillow in the "
                 f"workers; an epoch is {per_epoch // batch} batches of {batch}")
    notes.append(pin_memory_status())
    notes.append("the main loop touches every batch: one element per 4 KiB page of the images (so every page of a "
                 "worker's shared-memory batch is mapped here, as a copy to the GPU would do) and every 8th target row")
    notes.append(f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} "
                 f"usable), torch {torch.__version__}, {torch.get_num_threads()} torch thread(s) in the main process "
                 f"(1 in each worker, torch's default)")
    pipelines = build_pipelines(batch, num_classes, notes)
    notes.append(f"floors: every ratio is against row {FLOOR} with the same num_workers; rows "
                 f"{', '.join(FLOAT_ROWS)} also against row {FLOAT_FLOOR}, which makes the same float32 normalised "
                 f"batch without mixing (converting to float is not mixing cost)")
    notes.append("row 6 takes the same draws as row 5 (a Mixup(seed=0) stream: Mixup or CutMix per batch, "
                 "lambda, box) and applies torchvision v2's formulas, as RandomChoice([MixUp, CutMix]) would")

    rows: List[PipelineRow] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PIN_MEMORY_WARNING)
        for k, num_workers in enumerate(workers, 1):
            loaders = {p.key: make_loader(JpegDataset(jpegs, labels, p.transform), batch, num_workers, p.collate)
                       for p in pipelines}
            epochs: Dict[str, Callable[[], object]] = {
                p.key: (lambda loader=loaders[p.key], mix=p.mix: consume_epoch(loader, mix)) for p in pipelines}

            def on_round(done: int, total: int, k: int = k, num_workers: int = num_workers) -> None:
                if progress is not None:
                    progress(k, len(workers), f"num_workers={num_workers}, {len(pipelines)} loaders", done, total)

            key_of = {id(epoch): key for key, epoch in epochs.items()}
            epoch_seconds: Dict[str, List[float]] = {key: [] for key in epochs}

            def recording_timer(epoch: Callable[[], object]) -> float:
                elapsed = wall_seconds(epoch)
                epoch_seconds[key_of[id(epoch)]].append(elapsed)
                return elapsed

            seconds = interleaved_medians(epochs, rounds, on_round, recording_timer)
            del epochs, loaders  # shuts the persistent workers down before the next num_workers starts its own
            gc.collect()
            speed = {key: per_epoch / s for key, s in seconds.items()}
            for p in pipelines:
                rows.append(PipelineRow(
                    key=p.key, pipeline=p.name, num_workers=num_workers, images_per_s=speed[p.key],
                    median_epoch_ms=seconds[p.key] * 1e3, ratio_to_floor=speed[p.key] / speed[FLOOR],
                    ratio_to_float_floor=speed[p.key] / speed[FLOAT_FLOOR] if p.key in FLOAT_ROWS else None,
                    round_images_per_s=[per_epoch / s for s in epoch_seconds[p.key][1:]],  # [0]: the warm-up
                ))
    return rows


# ---- the printed table ---------------------------------------------------------------------------

def format_table(rows: List[PipelineRow]) -> str:
    """One line per row, for each num_workers: images/s, / row 1, / row 5a (float rows only)."""
    workers = sorted({r.num_workers for r in rows})
    by_key: Dict[str, Dict[int, PipelineRow]] = {}
    for r in rows:
        by_key.setdefault(r.key, {})[r.num_workers] = r
    header = ["row", "pipeline", "floor"]
    for w in workers:
        header += [f"w={w} img/s", f"/ {FLOOR}", f"/ {FLOAT_FLOOR}"]
    lines = [header]
    for key, cells in by_key.items():
        first = next(iter(cells.values()))
        floor = f"{FLOOR}, {FLOAT_FLOOR}" if key in FLOAT_ROWS else FLOOR
        line = [key, first.pipeline, floor]
        for w in workers:
            r = cells.get(w)
            if r is None:
                line += ["", "", ""]
                continue
            line += [f"{r.images_per_s:.0f}", f"{r.ratio_to_floor:.2f}",
                     "" if r.ratio_to_float_floor is None else f"{r.ratio_to_float_floor:.2f}"]
        lines.append(line)
    return aligned_columns(lines)


GOAL = 0.97  # fastmix's collate should keep at least this fraction of the no-mixing throughput


def goal_lines(rows: List[PipelineRow]) -> List[str]:
    """Whether fastmix's collate rows keep ``GOAL`` of their floor's throughput, per num_workers:
    row 2 (uint8) against row 1; row 3 (float32 normalised) against row 5a, its like-for-like floor,
    and against row 1."""
    lines = []
    for r in rows:
        if r.key == "2":
            lines.append(f"goal: row 2 (fastmix collate -> uint8), num_workers={r.num_workers}: {r.ratio_to_floor:.2f} "
                         f"of row {FLOOR} ({'met' if r.ratio_to_floor >= GOAL else 'NOT met'}, goal {GOAL})")
        elif r.key == "3" and r.ratio_to_float_floor is not None:
            met = "met" if r.ratio_to_float_floor >= GOAL else "NOT met"
            lines.append(f"goal: row 3 (fastmix collate -> float32 normalised), num_workers={r.num_workers}: "
                         f"{r.ratio_to_float_floor:.2f} of row {FLOAT_FLOOR} ({met}, goal {GOAL}); "
                         f"{r.ratio_to_floor:.2f} of row {FLOOR}")
    return lines
