"""``python -m fastmix bench --pipeline``: a DataLoader's throughput, measured the way users train.

A real ``torch.utils.data.DataLoader`` over a set of JPEG images made on the fly (nothing
downloaded), decoded with Pillow in the workers, batched by each pipeline's collate and consumed
by a loop in the main process that touches every batch. Every row is timed in images per second
for each ``num_workers``; the rows of one ``num_workers`` run epoch by epoch, interleaved round by
round, so that machine noise hits all of them alike. Two sets (``--pipeline-set``):

    builtin        procedural 224x224 JPEGs, decoded only: the collate is a large share of a
                   worker's time, a worst case for the cost of mixing
    imagenet-like  procedural 500x375 JPEGs (ImageNet's typical size, quality 90, textured to
                   about its file sizes), decoded and RandomResizedCrop-ed to 224 (torchvision's
                   sampling, Pillow's bilinear resize) in the workers: a real input pipeline

The rows (the imagenet-like set has 1, 2, 2p, 3, 3p, 5a and 5):

    1   default_collate of uint8 CHW tensors (torchvision's PILToTensor), no mixing: the floor
    2   fastmix.MixupCollate -> uint8, from numpy HWC samples, with reuse_worker_memory=False (a
        fresh shared batch per batch in a worker, as default_collate)
    2p  2 as MixupCollate makes it by default: its worker batches in fastmix.shared_pool's reused
        slots (num_workers >= 1)
    3   fastmix.MixupCollate -> float32 normalised, from numpy HWC samples, reuse_worker_memory=False
    3p  3 by default: in reused slots (num_workers >= 1)
    4   timm's FastCollateMixup, from numpy CHW samples (timm's ToNumpy), when timm loads
    5a  default_collate of float32 normalised CHW tensors made in the worker, no mixing
    5   5a, then fastmix.Mixup in place in the main loop
    6   5a, then torchvision v2's MixUp / CutMix formulas in the main loop (the same draws as 5)

Each row also reports where a batch's CPU time goes, measured inside the workers (thread CPU
time, so a descheduled worker does not inflate it): decoding (and cropping) its samples, the
row's per-sample conversion, the collate_fn, and the main loop's mixing (rows 5 and 6).

``os_costs`` measures the operating system's part of a worker batch: a fresh shared batch's first
write in the worker, the main process's first read of it and its release, against reused memory.
"""
from __future__ import annotations

import gc
import io
import math
import os
import resource
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

from .. import shared_pool
from ..collate import MixupCollate
from ..mixup import Mixup
from ..sampling.params import MixKind, MixParams
from .baselines import IMAGENET_MEAN, IMAGENET_STD
from .peers import load_timm_mixup
from .timing import ProgressCallback, aligned_columns, interleaved_medians, wall_seconds

BUILTIN, IMAGENET_LIKE = "builtin", "imagenet-like"
SETS = (BUILTIN, IMAGENET_LIKE)
DEFAULT_SET = BUILTIN
DEFAULT_IMAGES = {BUILTIN: 1024, IMAGENET_LIKE: 512}
DEFAULT_BATCH = 128
DEFAULT_SIZE = 224
DEFAULT_ROUNDS = 7
DEFAULT_WORKERS = (0, 1, 2)
JPEG_QUALITY = 90
IMAGENET_LIKE_SOURCE = (500, 375)  # width, height: ImageNet's most common training image size
IMAGENET_LIKE_TEXTURE = 22.0  # the noise's standard deviation: sets the files' size (about ImageNet's)
# The knobs of every mixing row (timm's ImageNet recipe).
MIX_KNOBS = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)

FLOOR = "1"  # every row's ratio is taken against row 1 with the same num_workers
FLOAT_FLOOR = "5a"  # rows whose batch is float32 normalised also against 5a: the float conversion is not mixing cost
FLOAT_ROWS = ("3", "3p", "5a", "5", "6")
POOLED_OF = {"2p": "2", "3p": "3"}  # a pooled row and the row it pools
IMAGENET_LIKE_ROWS = ("1", "2", "2p", "3", "3p", "5a", "5")
ROW_ORDER = ("1", "2", "2p", "3", "3p", "4", "5a", "5", "6")

_PIN_MEMORY_WARNING = r".*'pin_memory' argument is set as true but no accelerator is found.*"


@dataclass
class PipelineRow:
    key: str  # "1", "2", ..., "5a"
    pipeline: str
    num_workers: int
    images_per_s: float  # images of an epoch / median epoch seconds
    median_epoch_ms: float
    ratio_to_floor: float  # images/s over row 1's, same num_workers
    ratio_to_float_floor: Optional[float]  # images/s over row 5a's (float rows), same num_workers
    round_images_per_s: List[float]  # each timed epoch, in order: the spread behind the median
    pipeline_set: str = BUILTIN
    # Per batch, medians over every batch of every epoch, CPU time of the thread that did it:
    decode_ms: float = 0.0  # decoding the batch's JPEGs (and, imagenet-like, RandomResizedCrop)
    to_sample_ms: float = 0.0  # the row's per-sample conversion (PILToTensor, np.asarray, float normalise)
    collate_ms: float = 0.0  # the collate_fn: stacking, and mixing in fastmix's and timm's rows
    main_mix_ms: float = 0.0  # the main loop's mixing (rows 5 and 6)
    collate_mix_share: float = 0.0  # (collate + main mix) / (decode + to_sample + collate + main mix)


@dataclass
class OsCostRow:
    part: str
    dtype: str
    median_ms: float
    median_faults: float  # minor page faults of the process (ru_minflt) during the part
    batches: int


# ---- the images ----------------------------------------------------------------------------------

def _waves(width: int, height: int, rng: np.random.Generator, waves: Sequence[Tuple[float, float]]) -> np.ndarray:
    """float32 (height, width, 3): per channel, sums of sin(fx x + fy y + p) as outer products of 1-D
    waves (cheap, and smooth like a photo's large areas), and a gradient, around 127.5."""
    x = np.linspace(0.0, 2.0 * np.pi, width, dtype=np.float32)
    y = np.linspace(0.0, 2.0 * np.pi, height, dtype=np.float32)
    channels = []
    for _c in range(3):
        value = np.zeros((height, width), dtype=np.float32)
        for amplitude, top in waves:
            fx, fy = rng.uniform(0.5, top, 2)
            phase = rng.uniform(0.0, 2.0 * np.pi)
            u, v = fx * x + phase, fy * y
            value += amplitude * (np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u)))
        value += rng.uniform(-40.0, 40.0) * x[None, :] / x[-1] + 127.5
        channels.append(value)
    return np.stack(channels, axis=-1)


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def make_jpegs(count: int, size: int, seed: int = 0) -> List[bytes]:
    """``count`` smooth procedural RGB images of ``size`` x ``size``, each JPEG-encoded once (quality 90):
    a coarse and a finer wave per channel and a gradient give the encoder something to code."""
    rng = np.random.default_rng(seed)
    return [_jpeg(_waves(size, size, rng, ((80.0, 3.0), (30.0, 12.0)))) for _ in range(count)]


def make_imagenet_like_jpegs(count: int, seed: int = 0, source: Tuple[int, int] = IMAGENET_LIKE_SOURCE,
                             texture: float = IMAGENET_LIKE_TEXTURE) -> List[bytes]:
    """``count`` procedural RGB images of ``source`` (width, height), quality 90: per channel, waves
    at three scales and a gradient, plus a window of one fixed field of Gaussian noise (a random
    offset per image) that stands in for a photo's texture, so that the files, and their decoding,
    weigh about what ImageNet's do (its training JPEGs average about 110 KB)."""
    width, height = source
    rng = np.random.default_rng(seed)
    field = rng.normal(0.0, texture, (2 * height, 2 * width, 3)).astype(np.float32)
    x = np.linspace(0.0, 2.0 * np.pi, width, dtype=np.float32)
    y = np.linspace(0.0, 2.0 * np.pi, height, dtype=np.float32)
    amplitudes = np.array([80.0, 30.0, 15.0], dtype=np.float32)
    tops = np.array([3.0, 12.0, 40.0])
    jpegs = []
    for _ in range(count):
        pixels = np.empty((height, width, 3), dtype=np.float32)
        for c in range(3):
            # sum over waves of a sin(fx x + p + fy y) = [cos(fy y), sin(fy y)] @ [a sin(fx x + p); a cos(fx x + p)]
            # (einsum: numpy's matmul calls a BLAS that took 30 ms here for this 6-deep product)
            fx, fy = rng.uniform(0.5, tops), rng.uniform(0.5, tops)
            u = fx[:, None] * x[None, :] + rng.uniform(0.0, 2.0 * np.pi, 3)[:, None]
            v = fy[:, None] * y[None, :]
            left = np.concatenate([np.cos(v), np.sin(v)]).T.astype(np.float32)
            right = np.concatenate([amplitudes[:, None] * np.sin(u), amplitudes[:, None] * np.cos(u)]).astype(np.float32)
            pixels[..., c] = np.einsum("hk,kw->hw", left, right) + (rng.uniform(-40.0, 40.0) * x / x[-1] + 127.5)[None, :]
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        jpegs.append(_jpeg(pixels + field[y0:y0 + height, x0:x0 + width]))
    return jpegs


def random_resized_crop_params(width: int, height: int, rng: np.random.Generator,
                               scale: Tuple[float, float] = (0.08, 1.0),
                               ratio: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)) -> Tuple[int, int, int, int]:
    """(top, left, h, w) of torchvision's ``RandomResizedCrop.get_params``: ten tries of an area in
    ``scale`` of the image's and a log-uniform aspect ratio in ``ratio``, then the fallback: the
    central crop of the largest box whose ratio is within ``ratio``."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


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


# ---- where a batch's time goes, measured in the process that spends it -----------------------------

_pending = {"decode": 0.0, "to_sample": 0.0}  # this process's samples since its last collate


class WorkerClock:
    """Per-batch CPU seconds (decode, to_sample, collate) of one loader, written by whichever
    process collates the batch (a worker, or the main process at num_workers=0) into shared memory
    that the main process reads after the epochs."""

    def __init__(self, workers: int, capacity: int) -> None:
        self.records = torch.zeros(max(1, workers), capacity, 3, dtype=torch.float64).share_memory_()
        self.counts = torch.zeros(max(1, workers), dtype=torch.int64).share_memory_()

    def record(self, decode: float, to_sample: float, collate: float) -> None:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        n = int(self.counts[worker])
        if n < self.records.shape[1]:
            self.records[worker, n] = torch.tensor([decode, to_sample, collate], dtype=torch.float64)
            self.counts[worker] = n + 1

    def medians_ms(self) -> Tuple[float, float, float]:
        rows = [self.records[w, : int(self.counts[w])] for w in range(self.records.shape[0])]
        every = torch.cat(rows) if rows else torch.zeros(0, 3, dtype=torch.float64)
        if every.shape[0] == 0:
            return 0.0, 0.0, 0.0
        return tuple(float(v) * 1e3 for v in every.median(dim=0).values)  # type: ignore[return-value]


class JpegDataset(Dataset):
    """JPEG bytes and int labels; ``__getitem__`` decodes with Pillow, RandomResizedCrop-s to
    ``crop`` when given (torchvision's sampling, then Pillow's bilinear resize: torchvision's
    ``resized_crop`` of a PIL image), and applies ``transform``; each step's thread CPU time is
    added to this process's pending totals, which the collate's ``TimedCollate`` records."""

    def __init__(self, jpegs: Sequence[bytes], labels: Sequence[int], transform: Callable[[Any], Any],
                 crop: Optional[int] = None) -> None:
        self.jpegs = list(jpegs)
        self.labels = list(labels)
        self.transform = transform
        self.crop = crop
        self._rng: Optional[np.random.Generator] = None
        self._rng_pid: Optional[int] = None

    def __len__(self) -> int:
        return len(self.jpegs)

    def rng(self) -> np.random.Generator:
        """This process's crop stream, seeded from torch's seed of the process (a worker's differs)."""
        if self._rng is None or self._rng_pid != os.getpid():
            self._rng, self._rng_pid = np.random.default_rng(torch.initial_seed()), os.getpid()
        return self._rng

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        from PIL import Image

        start = time.thread_time()
        image = Image.open(io.BytesIO(self.jpegs[index])).convert("RGB")
        if self.crop is not None:
            top, left, h, w = random_resized_crop_params(image.width, image.height, self.rng())
            image = image.crop((left, top, left + w, top + h)).resize((self.crop, self.crop), Image.BILINEAR)
        decoded = time.thread_time()
        sample = self.transform(image)
        _pending["decode"] += decoded - start
        _pending["to_sample"] += time.thread_time() - decoded
        return sample, self.labels[index]


class TimedCollate:
    """``collate`` timed (thread CPU time) and recorded with the batch's pending sample times."""

    def __init__(self, collate: Callable[[List[Any]], Any], clock: WorkerClock) -> None:
        self.collate = collate
        self.clock = clock

    def __call__(self, samples: List[Any]) -> Any:
        start = time.thread_time()
        batch = self.collate(samples)
        spent = time.thread_time() - start
        self.clock.record(_pending["decode"], _pending["to_sample"], spent)
        _pending["decode"] = _pending["to_sample"] = 0.0
        return batch


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


MixFn = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def consume_epoch(loader: DataLoader, mix: Optional[MixFn], mix_seconds: Optional[List[float]] = None) -> int:
    """The training loop without the model: every batch of one epoch, mixed here when ``mix`` is
    given (its thread CPU time appended to ``mix_seconds``), then touched. Returns the number of images."""
    count = 0
    for images, targets in loader:
        if mix is not None:
            start = time.thread_time()
            images, targets = mix(images, targets)
            if mix_seconds is not None:
                mix_seconds.append(time.thread_time() - start)
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
    mix: Optional[MixFn] = None
    workers_only: bool = False  # a row that differs from another only in DataLoader workers


def build_pipelines(batch: int, num_classes: int, notes: List[str], keys: Optional[Sequence[str]] = None) -> List[Pipeline]:
    """The rows, in table order (1, 2, 2p, 3, 3p, 4, 5a, 5, 6), or those of ``keys``; timm's row only
    when timm loads, else a note."""
    normalised = dict(dtype=torch.float32, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def uint8_collate(reuse: bool) -> MixupCollate:
        return MixupCollate(Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS), dtype=torch.uint8,
                            reuse_worker_memory=reuse)

    def float_collate(reuse: bool) -> MixupCollate:
        return MixupCollate(Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS), reuse_worker_memory=reuse,
                            **normalised)

    pipelines = [
        Pipeline("1", "default_collate, uint8 CHW tensors (PILToTensor), no mixing", pil_to_tensor_uint8, default_collate),
        Pipeline("2", "fastmix MixupCollate -> uint8, numpy HWC samples, a fresh shared batch each time",
                 numpy_hwc_uint8, uint8_collate(reuse=False)),
        Pipeline("2p", "2, worker batches in reused shared slots (reuse_worker_memory, the default)", numpy_hwc_uint8,
                 uint8_collate(reuse=True), workers_only=True),
        Pipeline("3", "fastmix MixupCollate -> float32 normalised, numpy HWC samples, a fresh shared batch each time",
                 numpy_hwc_uint8, float_collate(reuse=False)),
        Pipeline("3p", "3, worker batches in reused shared slots (reuse_worker_memory, the default)", numpy_hwc_uint8,
                 float_collate(reuse=True), workers_only=True),
    ]
    if keys is None or "4" in keys:
        timm_mixup, timm_how = load_timm_mixup()
        if timm_mixup is None:
            notes.append(f"no timm row (4): {timm_how}")
        elif batch % 2:
            notes.append(f"no timm row (4): timm's FastCollateMixup asserts an even batch size, got {batch}")
        else:
            notes.append(f"row 4 is {timm_how}")
            pipelines.append(Pipeline("4", "timm FastCollateMixup -> uint8, numpy CHW samples (ToNumpy)",
                                      timm_to_numpy_chw_uint8,
                                      timm_mixup.FastCollateMixup(num_classes=num_classes, **MIX_KNOBS)))
    pipelines += [
        Pipeline("5a", "default_collate, float32 normalised CHW tensors, no mixing", float32_normalised_chw, default_collate),
        Pipeline("5", "5a + fastmix Mixup in place in the main loop", float32_normalised_chw, default_collate,
                 Mixup(num_classes=num_classes, seed=0, **MIX_KNOBS)),
        Pipeline("6", "5a + torchvision v2 MixUp/CutMix formulas in the main loop", float32_normalised_chw,
                 default_collate, TorchvisionMixUpCutMix(num_classes, seed=0)),
    ]
    return [p for p in pipelines if keys is None or p.key in keys]


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


def machine_note() -> str:
    return (f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} "
            f"usable), torch {torch.__version__}, {torch.get_num_threads()} torch thread(s) in the main process "
            f"(1 in each worker, torch's default)")


def run(
    images: Optional[int] = None,
    batch: int = DEFAULT_BATCH,
    size: int = DEFAULT_SIZE,
    rounds: int = DEFAULT_ROUNDS,
    workers: Sequence[int] = DEFAULT_WORKERS,
    num_classes: int = 1000,
    progress: Optional[ProgressCallback] = None,
    notes: Optional[List[str]] = None,
    pipeline_set: str = DEFAULT_SET,
) -> List[PipelineRow]:
    """Images per second of every row of ``pipeline_set`` for each ``num_workers`` in ``workers``:
    ``images`` JPEGs (default ``DEFAULT_IMAGES[pipeline_set]``; builtin: ``size`` x ``size``;
    imagenet-like: 500x375 cropped to ``size``), batches of ``batch`` (full batches only), one
    untimed warm-up epoch, then ``rounds`` epochs per row interleaved round by round; median epoch
    time per row, and the medians of where each batch's CPU time went.

    ``notes``, when given, receives what was measured how and what was left out."""
    if pipeline_set not in SETS:
        raise ValueError(f"pipeline_set: expected one of {', '.join(SETS)}, got {pipeline_set!r}")
    images = DEFAULT_IMAGES[pipeline_set] if images is None else images
    if images < batch:
        raise ValueError(f"images: expected at least one batch ({batch}) of images, got {images}")
    notes = [] if notes is None else notes
    tag = f"{pipeline_set} set: "
    labels = np.random.default_rng(1).integers(0, num_classes, images).tolist()
    per_epoch = images // batch * batch
    if pipeline_set == BUILTIN:
        jpegs, crop = make_jpegs(images, size), None
        made = f"{images} procedural {size}x{size} RGB JPEGs"
        keys: Optional[Sequence[str]] = None
    else:
        jpegs, crop = make_imagenet_like_jpegs(images), size
        made = (f"{images} procedural {IMAGENET_LIKE_SOURCE[0]}x{IMAGENET_LIKE_SOURCE[1]} RGB JPEGs, textured, "
                f"RandomResizedCrop-ed to {size}x{size} (scale (0.08, 1), ratio (3/4, 4/3), bilinear) after decoding")
        keys = IMAGENET_LIKE_ROWS
    notes.append(f"{tag}{made} (quality {JPEG_QUALITY}, {statistics.mean(map(len, jpegs)) / 1024:.1f} KiB on "
                 f"average), decoded with Pillow in the workers; an epoch is {per_epoch // batch} batches of {batch}")
    pipelines = build_pipelines(batch, num_classes, notes, keys)
    available = {p.key for p in pipelines}
    if pipeline_set == BUILTIN:
        notes.append(pin_memory_status())
        notes.append("the main loop touches every batch: one element per 4 KiB page of the images (so every page of a "
                     "worker's shared-memory batch is mapped here, as a copy to the GPU would do) and every 8th target row")
        notes.append(machine_note())
        notes.append(f"floors: every ratio is against row {FLOOR} with the same num_workers; rows "
                     f"{', '.join(FLOAT_ROWS)} also against row {FLOAT_FLOOR}, which makes the same float32 normalised "
                     f"batch without mixing (converting to float is not mixing cost)")
        notes.append("row 6 takes the same draws as row 5 (a Mixup(seed=0) stream: Mixup or CutMix per batch, "
                     "lambda, box) and applies torchvision v2's formulas, as RandomChoice([MixUp, CutMix]) would")
        notes.append("rows 2p and 3p (num_workers >= 1): rows 2 and 3 with each worker's batch written into a reused "
                     "slot of fastmix.shared_pool instead of fresh shared memory (a batch still held is never "
                     "overwritten); the main process gets a plain tensor")
        notes.append("ms columns: per batch, medians of thread CPU time in the process that did the work: decode (+ crop), "
                     "the per-sample conversion, the collate_fn, and the main loop's mixing; mix share = "
                     "(collate + main mix) / all four")

    rows: List[PipelineRow] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PIN_MEMORY_WARNING)
        for k, num_workers in enumerate(workers, 1):
            here = [p for p in pipelines if num_workers > 0 or not p.workers_only]
            capacity = (rounds + 1) * (per_epoch // batch)
            clocks = {p.key: WorkerClock(num_workers, capacity) for p in here}
            mix_seconds: Dict[str, List[float]] = {p.key: [] for p in here}
            loaders = {p.key: make_loader(JpegDataset(jpegs, labels, p.transform, crop), batch, num_workers,
                                          TimedCollate(p.collate, clocks[p.key]))
                       for p in here}
            epochs: Dict[str, Callable[[], object]] = {
                p.key: (lambda loader=loaders[p.key], mix=p.mix, spent=mix_seconds[p.key]: consume_epoch(loader, mix, spent))
                for p in here}

            def on_round(done: int, total: int, k: int = k, num_workers: int = num_workers) -> None:
                if progress is not None:
                    progress(k, len(workers), f"{tag}num_workers={num_workers}, {len(here)} loaders", done, total)

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
            for p in here:
                decode_ms, to_sample_ms, collate_ms = clocks[p.key].medians_ms()
                main_mix_ms = statistics.median(mix_seconds[p.key]) * 1e3 if mix_seconds[p.key] else 0.0
                spent = decode_ms + to_sample_ms + collate_ms + main_mix_ms
                rows.append(PipelineRow(
                    key=p.key, pipeline=p.name, num_workers=num_workers, images_per_s=speed[p.key],
                    median_epoch_ms=seconds[p.key] * 1e3, ratio_to_floor=speed[p.key] / speed[FLOOR],
                    ratio_to_float_floor=(speed[p.key] / speed[FLOAT_FLOOR]
                                          if p.key in FLOAT_ROWS and FLOAT_FLOOR in available else None),
                    round_images_per_s=[per_epoch / s for s in epoch_seconds[p.key][1:]],  # [0]: the warm-up
                    pipeline_set=pipeline_set, decode_ms=decode_ms, to_sample_ms=to_sample_ms, collate_ms=collate_ms,
                    main_mix_ms=main_mix_ms, collate_mix_share=(collate_ms + main_mix_ms) / spent if spent > 0 else 0.0,
                ))
    return rows


# ---- the operating system's part of a worker batch -------------------------------------------------

def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(fn: Callable[[], object]) -> Tuple[float, int]:
    """(wall seconds, minor page faults of this process) of one call."""
    faults, start = _faults(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _faults() - faults


def _shared_batch(shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A fresh batch in shared memory, as default_collate and fastmix's collate allocate one in a worker."""
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    return torch.empty(0, dtype=dtype).set_(torch.UntypedStorage._new_shared(nbytes), 0, shape)


WORKER_FRESH = "worker: a fresh shared batch (UntypedStorage._new_shared) + one write"
WORKER_MAPPED = "worker: the same write into shared memory already mapped"
WORKER_POOLED = "worker: a reused slot (fastmix.shared_pool) + one write"
MAIN_FIRST = "main: first read of a fresh shared batch (a copy into mapped memory)"
MAIN_SECOND = "main: the same read again"
MAIN_RELEASE = "main: release of a fresh shared batch (the last mapping: its pages are freed)"
MAIN_POOLED_FIRST = "main: first read of a pooled batch"
MAIN_POOLED_RELEASE = "main: release of a pooled batch"


class _OsCostBatches(Dataset):
    """Item i: (a fresh shared batch, a pooled batch, the worker's timings of making them)."""

    def __init__(self, shape: Tuple[int, ...], dtype: torch.dtype, count: int) -> None:
        self.shape, self.dtype, self.count = shape, dtype, count
        self.mapped: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, Tuple[float, int]]]:
        if self.mapped is None:
            self.mapped = _shared_batch(self.shape, self.dtype).fill_(0)
        made: Dict[str, torch.Tensor] = {}
        timings = {
            WORKER_FRESH: _timed(lambda: made.update(fresh=_shared_batch(self.shape, self.dtype).fill_(1))),
            WORKER_MAPPED: _timed(lambda: self.mapped.fill_(1)),
        }
        pooled_or_none: List[Optional[torch.Tensor]] = []
        timings[WORKER_POOLED] = _timed(lambda: pooled_or_none.append(
            shared_pool.batch_tensor(self.shape, self.dtype)))
        pooled = pooled_or_none[0]
        if pooled is None:  # a batch under shared_pool.MIN_BYTES, or the pool off: no pooled parts
            del timings[WORKER_POOLED]
            return made["fresh"], torch.empty(0), timings
        seconds, faults = timings[WORKER_POOLED]
        fill = _timed(lambda: pooled.fill_(1))
        timings[WORKER_POOLED] = (seconds + fill[0], faults + fill[1])
        return made["fresh"], pooled, timings


def os_costs(batch: int = DEFAULT_BATCH, size: int = DEFAULT_SIZE, count: int = 18, warmup: int = 6,
             dtypes: Sequence[torch.dtype] = (torch.uint8, torch.float32)) -> List[OsCostRow]:
    """The operating system's part of a worker batch of (batch, 3, size, size), per dtype, medians
    over ``count`` batches made by one DataLoader worker, the first ``warmup`` left out (the
    worker's start, and the first use of each pool slot the batches in flight need: five here):

    in the worker, a fresh shared batch and its one write (each new 4 KiB page faulted in and
    zeroed), the same write into shared memory already mapped, and a reused pool slot and its
    write; in the main process, the first read of a received fresh batch (a copy into memory
    already mapped: each page of the received file is mapped here on first access, 16 per fault
    where the kernel maps around a faulting address), the same read again, and the release of the
    previous batch once the next has arrived, as a training loop drops it (the last mapping, so
    its pages are freed); then the same read and release of pooled batches (left out where the
    pool gives no slot: a batch under ``shared_pool.MIN_BYTES``, or the pool off)."""
    rows: List[OsCostRow] = []
    for dtype in dtypes:
        shape = (batch, 3, size, size)
        loader = DataLoader(_OsCostBatches(shape, dtype, count), batch_size=None, num_workers=1)
        records: Dict[str, List[Tuple[float, int]]] = {}
        destination = torch.empty(shape, dtype=dtype).fill_(0)
        held_fresh: List[torch.Tensor] = []  # the previous batch, dropped once the next has arrived
        held_pooled: List[torch.Tensor] = []
        for n, (fresh, pooled, timings) in enumerate(loader):
            # The worker makes the batch after next meanwhile (the DataLoader asked for it when this
            # one arrived): let it finish, so that neither side's timings share the cores.
            time.sleep(0.02 + 2.0 * sum(seconds for seconds, _ in timings.values()))
            measured = dict(timings)
            measured[MAIN_FIRST] = _timed(lambda: destination.copy_(fresh))
            measured[MAIN_SECOND] = _timed(lambda: destination.copy_(fresh))
            if pooled.numel():
                measured[MAIN_POOLED_FIRST] = _timed(lambda: destination.copy_(pooled))
            if held_fresh:
                measured[MAIN_RELEASE] = _timed(held_fresh.clear)
                if held_pooled[0].numel():
                    measured[MAIN_POOLED_RELEASE] = _timed(held_pooled.clear)
                held_pooled.clear()
            held_fresh.append(fresh)
            held_pooled.append(pooled)
            del fresh, pooled
            if n >= warmup:
                for part, value in measured.items():
                    records.setdefault(part, []).append(value)
        del loader, held_fresh, held_pooled
        gc.collect()
        name = str(dtype).replace("torch.", "")
        for part in (WORKER_FRESH, WORKER_MAPPED, WORKER_POOLED, MAIN_FIRST, MAIN_SECOND, MAIN_RELEASE,
                     MAIN_POOLED_FIRST, MAIN_POOLED_RELEASE):
            values = records.get(part, [])
            if values:
                rows.append(OsCostRow(part, name, statistics.median(v[0] for v in values) * 1e3,
                                      statistics.median(v[1] for v in values), len(values)))
    return rows


def format_os_costs(rows: List[OsCostRow]) -> str:
    """One line per part: ms and page faults per batch for each dtype."""
    dtypes = list(dict.fromkeys(r.dtype for r in rows))
    cells = {(r.part, r.dtype): r for r in rows}
    header = ["part"]
    for d in dtypes:
        header += [f"{d} ms", f"{d} faults"]
    lines = [header]
    for part in dict.fromkeys(r.part for r in rows):
        line = [part]
        for d in dtypes:
            r = cells.get((part, d))
            line += ["", ""] if r is None else [f"{r.median_ms:.2f}", f"{r.median_faults:.0f}"]
        lines.append(line)
    return aligned_columns(lines, text_columns=1)


# ---- the printed table ---------------------------------------------------------------------------

def format_table(rows: List[PipelineRow]) -> str:
    """One line per row, for each num_workers: images/s, / row 1, / row 5a (float rows only); then
    where a batch's CPU time goes (ms per batch) and the share of collating and mixing."""
    workers = sorted({r.num_workers for r in rows})
    by_key: Dict[str, Dict[int, PipelineRow]] = {}
    for r in sorted(rows, key=lambda r: ROW_ORDER.index(r.key) if r.key in ROW_ORDER else len(ROW_ORDER)):
        by_key.setdefault(r.key, {})[r.num_workers] = r
    header = ["row", "pipeline", "floor"]
    for w in workers:
        header += [f"w={w} img/s", f"/ {FLOOR}", f"/ {FLOAT_FLOOR}"]
    lines = [header]
    times = [["row", "pipeline", "num_workers", "decode ms", "to-sample ms", "collate ms", "main mix ms", "mix share"]]
    for key, cells in by_key.items():
        first = next(iter(cells.values()))
        floor = f"{FLOOR}, {FLOAT_FLOOR}" if first.ratio_to_float_floor is not None else FLOOR
        line = [key, first.pipeline, floor]
        for w in workers:
            r = cells.get(w)
            if r is None:
                line += ["", "", ""]
                continue
            line += [f"{r.images_per_s:.0f}", f"{r.ratio_to_floor:.2f}",
                     "" if r.ratio_to_float_floor is None else f"{r.ratio_to_float_floor:.2f}"]
            times.append([key, first.pipeline, str(w), f"{r.decode_ms:.1f}", f"{r.to_sample_ms:.1f}",
                          f"{r.collate_ms:.1f}", f"{r.main_mix_ms:.1f}", f"{r.collate_mix_share:.1%}"])
        lines.append(line)
    return aligned_columns(lines) + "\n\nwhere a batch's CPU time goes (medians per batch)\n" + aligned_columns(times)


GOAL = 0.97  # fastmix's collate should keep at least this fraction of the no-mixing throughput


def goal_lines(rows: List[PipelineRow]) -> List[str]:
    """Whether fastmix's collate rows keep ``GOAL`` of their floor's throughput, per set and num_workers:
    row 2 (uint8) against row 1; row 3 (float32 normalised) against row 5a, its like-for-like floor,
    and against row 1."""
    lines = []
    for r in rows:
        where = f"{r.pipeline_set} set, num_workers={r.num_workers}"
        if r.key == "2":
            lines.append(f"goal: row 2 (fastmix collate -> uint8), {where}: {r.ratio_to_floor:.2f} "
                         f"of row {FLOOR} ({'met' if r.ratio_to_floor >= GOAL else 'NOT met'}, goal {GOAL})")
        elif r.key == "3" and r.ratio_to_float_floor is not None:
            met = "met" if r.ratio_to_float_floor >= GOAL else "NOT met"
            lines.append(f"goal: row 3 (fastmix collate -> float32 normalised), {where}: "
                         f"{r.ratio_to_float_floor:.2f} of row {FLOAT_FLOOR} ({met}, goal {GOAL}); "
                         f"{r.ratio_to_floor:.2f} of row {FLOOR}")
    return lines


def pool_lines(rows: List[PipelineRow]) -> List[str]:
    """What the worker pool gains: each pooled row against the row it pools, same set and num_workers."""
    found = {(r.pipeline_set, r.num_workers, r.key): r for r in rows}
    lines = []
    for r in rows:
        plain = found.get((r.pipeline_set, r.num_workers, POOLED_OF.get(r.key, "")))
        if plain is not None:
            lines.append(f"pool: row {r.key} / row {plain.key}, {r.pipeline_set} set, num_workers={r.num_workers}: "
                         f"{r.images_per_s / plain.images_per_s:.2f} ({r.images_per_s:.0f} against "
                         f"{plain.images_per_s:.0f} images/s)")
    return lines
