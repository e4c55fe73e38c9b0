"""The numba backend: the CPU kernels of fastmix._C, compiled by numba, for where the extension is
not built or does not load. Same ops, same results, bit for bit (fastmix/reference.py).

    mix_(images, partner, lam, kind, box)                         # in place, like torch.ops.fastmix.mix_
    mix_targets(labels, partner, lam, kind, num_classes, smoothing) -> (B, C) float32
    mix_into(out, images, partner, lam, kind, box, scale, bias, hwc)
    collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc)

They take and return CPU torch tensors (handed to numba as numpy views: no copies). Kernels are
compiled on first use with ``cache=True`` (to ``__pycache__`` beside these files, or
$NUMBA_CACHE_DIR), so later processes and DataLoader workers load them from disk. They run on
``torch.get_num_threads()`` numba threads; with one thread (as in DataLoader workers) a serial
build of each kernel runs and numba's thread pool is never started.

This module imports without numba: :func:`unavailable_reason` says why the backend cannot run.
The disk cache is keyed on all the sources of this package (cache.py): an edit of any of them
recompiles every kernel.
"""
from __future__ import annotations

from typing import List, Optional

import torch

MIN_NUMBA = (0, 59)
_UNKNOWN = object()
_reason: object = _UNKNOWN


def unavailable_reason() -> Optional[str]:
    """None when the numba backend can run here, else why not (checked once per process)."""
    global _reason
    if _reason is _UNKNOWN:
        _reason = _check()
    return _reason  # type: ignore[return-value]


def _check() -> Optional[str]:
    try:
        import numba
    except ModuleNotFoundError as exc:
        if exc.name == "numba":
            return "numba is not installed: pip install numba"
        return f"numba could not be imported ({exc}); reinstall it: pip install -U numba"
    except Exception as exc:  # e.g. a numpy too new for this numba
        return f"numba could not be imported ({type(exc).__name__}: {exc}); reinstall it: pip install -U numba"
    try:
        version = tuple(int(p) for p in numba.__version__.split(".")[:2])
    except ValueError:
        version = MIN_NUMBA
    if version < MIN_NUMBA:
        return f"numba {numba.__version__} is too old (fastmix needs >= 0.59): pip install -U 'numba>=0.59'"
    try:
        from . import apply_mix, out_of_place, targets  # noqa: F401  (defines the kernels; compiles nothing)
    except Exception as exc:
        return f"the numba kernels could not be loaded ({type(exc).__name__}: {exc})"
    return None


def _require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"backend: 'numba' is not available: {reason}")


def threads() -> int:
    """Threads for the next kernel: torch.get_num_threads(), within numba's pool size.

    More than one sets numba's thread count (per calling thread); one selects the serial kernels,
    which leave numba's thread pool unstarted (safe in forked DataLoader workers)."""
    import numba

    wanted = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if wanted > 1:
        numba.set_num_threads(wanted)
    return wanted


def _cpu(tensor: torch.Tensor, name: str, op: str) -> None:
    if tensor.device.type != "cpu":
        raise ValueError(f"fastmix.{op}: the numba backend runs on CPU tensors, got {name} on {tensor.device}")


def _params(op: str, batch: int, partner, lam, kind, box, height: int, width: int, check_boxes: bool = True):
    """The params as contiguous numpy arrays, their layout and values checked (nothing is written yet)."""
    from .plan import find_bad_param

    expected = [("partner", partner, torch.int64, (batch,)), ("lam", lam, torch.float32, (batch,)),
                ("kind", kind, torch.uint8, (batch,))]
    if box is not None:
        expected.append(("box", box, torch.int64, (batch, 4)))
    for name, value, dtype, shape in expected:
        if not isinstance(value, torch.Tensor) or value.dtype != dtype or tuple(value.shape) != shape:
            got = (f"{value.dtype} of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
                   else type(value).__name__)
            raise ValueError(f"fastmix.{op}: {name} must be {str(dtype).replace('torch.', '')} of shape {shape}, got {got}")
        _cpu(value, name, op)
    arrays = [t.detach().contiguous().numpy() for _, t, _, _ in expected]
    if box is None:
        import numpy as np

        arrays.append(np.zeros((batch, 4), dtype=np.int64))
    code, i = find_bad_param(arrays[0], arrays[2], arrays[3], height if check_boxes else -2, width)
    if code == 1:
        raise ValueError(f"fastmix.{op}: partner[{i}] must be in [0, {batch}), got {int(arrays[0][i])}")
    if code == 2:
        raise ValueError(f"fastmix.{op}: kind[{i}] must be 0 (none), 1 (blend) or 2 (paste), got {int(arrays[2][i])}")
    if code == 3 and check_boxes:
        if height < 0:
            raise ValueError(f"fastmix.{op}: kind[{i}] is paste, which needs images with spatial dims (B, ..., H, W)")
        raise ValueError(f"fastmix.{op}: box[{i}] must satisfy 0 <= y0 <= y1 <= {height} and 0 <= x0 <= x1 <= {width}, "
                         f"got {arrays[3][i].tolist()}")
    return arrays


IMAGE_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)


@torch.compiler.disable  # numba runs outside the graph (a graph break under torch.compile)
def mix_(images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
         box: torch.Tensor) -> None:
    """torch.ops.fastmix.mix_ on numba: mix ``images`` (B, ...) in place (any layout, every dtype)."""
    _require()
    from ..validation import elements_may_share_memory
    from .apply_mix import mix_ as run
    from .memory import flat_view

    _cpu(images, "images", "mix_")
    if images.dtype not in IMAGE_DTYPES:
        raise TypeError(f"fastmix.mix_: images must be uint8, float16, bfloat16, float32 or float64, got {images.dtype}")
    if images.dim() < 1:
        raise ValueError("fastmix.mix_: images must have a batch dim, got a 0-d tensor")
    height, width = (images.shape[-2], images.shape[-1]) if images.dim() >= 3 else (-1, -1)
    p, l, k, b = _params("mix_", images.shape[0], partner, lam, kind, box, height, width)
    if images.numel() == 0:
        return
    if elements_may_share_memory(images):
        raise ValueError(
            "fastmix.mix_: images must not have elements that share memory (from expand() or overlapping windows "
            f"such as unfold()), got strides {images.stride()} for shape {tuple(images.shape)}; call .contiguous() first")
    run(flat_view(images), tuple(images.shape), tuple(images.stride()), p, l, k, b, threads())


@torch.compiler.disable  # numba runs outside the graph (a graph break under torch.compile)
def mix_targets(labels: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
                num_classes: int, smoothing: float) -> torch.Tensor:
    """torch.ops.fastmix.mix_targets on numba: (B, num_classes) float32 soft targets."""
    _require()
    from .targets import smoothing_values, targets_parallel, targets_serial

    _cpu(labels, "labels", "mix_targets")
    batch = labels.shape[0] if labels.dim() else 0
    p, l, k = _params("mix_targets", batch, partner, lam, kind, None, -1, -1, check_boxes=False)[:3]
    out = torch.empty((batch, num_classes), dtype=torch.float32)
    if batch == 0:
        return out
    if labels.dim() == 1:
        values = labels.detach().to(torch.int64).contiguous()
        bad = ((values < 0) | (values >= num_classes)).nonzero()
        if len(bad):
            i = int(bad[0])
            raise ValueError(f"fastmix.mix_targets: labels[{i}] must be a class index in [0, {num_classes}), "
                             f"got {int(values[i])}")
    else:
        if labels.shape[1] != num_classes:
            raise ValueError(f"fastmix.mix_targets: labels must have shape ({batch}, {num_classes}), got {tuple(labels.shape)}")
        values = labels.detach().to(torch.float32).contiguous()
    on, off = smoothing_values(num_classes, float(smoothing))
    run = targets_parallel if threads() > 1 and batch > 16 else targets_serial
    run(values.numpy(), p, l, k, on, off, out.numpy())
    return out


OUT_DTYPES = (torch.uint8, torch.float32, torch.bfloat16, torch.float16)


def _run_mix_into(op: str, out: torch.Tensor, addresses, input_dtype: torch.dtype, keep_alive: List[torch.Tensor],
                  partner, lam, kind, box, scale: torch.Tensor, bias: torch.Tensor, hwc: bool) -> None:
    """The checks of out, params and affine shared by mix_into and collate_mix_, then the kernel.

    addresses: (B,) int64, where each input sample's C*H*W contiguous elements are; keep_alive: the
    tensors that own that memory (held by the caller until this returns)."""
    import numpy as np

    from .memory import flat_view
    from .out_of_place import ROW_BLOCK_BYTES, mix_into_parallel, mix_into_serial
    from .plan import make_units

    batch, channels, height, width = out.shape
    p, l, k, b = _params(op, batch, partner, lam, kind, box, height, width)
    normalize = scale.numel() > 0
    if scale.numel() != bias.numel() or (normalize and (scale.dim() != 1 or scale.shape[0] != channels)):
        raise ValueError(f"fastmix.{op}: scale and bias must both be empty or float32 of shape ({channels},), got "
                         f"{tuple(scale.shape)} and {tuple(bias.shape)}")
    if normalize and (scale.dtype != torch.float32 or bias.dtype != torch.float32):
        raise TypeError(f"fastmix.{op}: scale and bias must be float32, got {scale.dtype} and {bias.dtype}")
    if normalize:
        _cpu(scale, "scale", op)
        _cpu(bias, "bias", op)
    if out.dtype not in OUT_DTYPES:
        raise TypeError(f"fastmix.{op}: out must be uint8, float32, bfloat16 or float16, got {out.dtype}")
    if out.dtype == torch.uint8 and (input_dtype != torch.uint8 or normalize):
        raise ValueError(f"fastmix.{op}: uint8 output needs uint8 input and no normalisation")
    channels_last = not out.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last)
    if not (out.is_contiguous() or channels_last):
        raise ValueError(f"fastmix.{op}: out must be contiguous or channels_last, got strides {out.stride()}")
    if out.numel() == 0:
        return

    scale_c = scale.contiguous().numpy() if normalize else np.ones(channels, dtype=np.float32)
    bias_c = bias.contiguous().numpy() if normalize else np.zeros(channels, dtype=np.float32)
    per_pixel = hwc and channels_last  # HWC -> NHWC: one contiguous run, a (scale, bias) per element
    scale_row = np.tile(scale_c, width) if per_pixel else np.empty(0, dtype=np.float32)
    bias_row = np.tile(bias_c, width) if per_pixel else np.empty(0, dtype=np.float32)
    geometry = (channels, height, width, int(hwc), int(channels_last))
    units = make_units(p, k)
    itemsize = 1 if input_dtype == torch.uint8 else 4
    rows_per_block = max(1, ROW_BLOCK_BYTES // max(1, width * channels * itemsize))
    blocks = (height + rows_per_block - 1) // rows_per_block
    like = np.empty(1, dtype=np.uint8 if input_dtype == torch.uint8 else np.float32)
    parallel = threads() > 1 and units.shape[0] * blocks > 1
    run = mix_into_parallel if parallel else mix_into_serial
    run(addresses, like, flat_view(out), geometry, scale_c, bias_c, scale_row, bias_row, normalize, p, l, k, b,
        units, blocks, rows_per_block)


@torch.compiler.disable  # numba runs outside the graph (a graph break under torch.compile)
def mix_into(out: torch.Tensor, images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
             box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool) -> None:
    """torch.ops.fastmix.mix_into on numba: out (B, C, H, W) <- cast(normalize(mix(images)))."""
    _require()
    import numpy as np

    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ValueError(f"fastmix.mix_into: out must have shape (B, C, H, W), got {getattr(out, 'shape', type(out).__name__)}")
    _cpu(out, "out", "mix_into")
    batch, channels, height, width = out.shape
    expected = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    if tuple(images.shape) != expected:
        raise ValueError(f"fastmix.mix_into: images must have shape {expected} ({'B, H, W, C' if hwc else 'B, C, H, W'}), "
                         f"got {tuple(images.shape)}")
    if images.dtype not in (torch.uint8, torch.float32):
        raise TypeError(f"fastmix.mix_into: images must be uint8 or float32, got {images.dtype}")
    _cpu(images, "images", "mix_into")
    if out.numel() and _shares_memory(out, images):
        raise ValueError("fastmix.mix_into: out must not share memory with images")
    source = images.contiguous()
    sample_bytes = channels * height * width * source.element_size()
    addresses = source.data_ptr() + np.arange(batch, dtype=np.int64) * sample_bytes
    _run_mix_into("mix_into", out, addresses, source.dtype, [source], partner, lam, kind, box, scale, bias, hwc)


@torch.compiler.disable  # numba runs outside the graph (a graph break under torch.compile)
def collate_mix_(out: torch.Tensor, samples: List[torch.Tensor], partner: torch.Tensor, lam: torch.Tensor,
                 kind: torch.Tensor, box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool) -> None:
    """torch.ops.fastmix.collate_mix_ on numba: like mix_into, reading B separate samples (C, H, W) or (H, W, C)."""
    _require()
    import numpy as np

    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ValueError(f"fastmix.collate_mix_: out must have shape (B, C, H, W), got {getattr(out, 'shape', type(out).__name__)}")
    _cpu(out, "out", "collate_mix_")
    batch, channels, height, width = out.shape
    if len(samples) != batch:
        raise ValueError(f"fastmix.collate_mix_: expected {batch} samples (out's batch size), got {len(samples)}")
    if batch == 0:
        return
    expected = (height, width, channels) if hwc else (channels, height, width)
    dtype = samples[0].dtype
    if dtype not in (torch.uint8, torch.float32):
        raise TypeError(f"fastmix.collate_mix_: samples must be uint8 or float32, got {dtype}")
    contiguous = []
    for i, sample in enumerate(samples):
        if tuple(sample.shape) != expected or sample.dtype != dtype or sample.device.type != "cpu":
            raise ValueError(f"fastmix.collate_mix_: samples[{i}] must be {dtype} of shape {expected} on cpu like "
                             f"samples[0], got {sample.dtype} of shape {tuple(sample.shape)} on {sample.device}")
        contiguous.append(sample.contiguous())
    addresses = np.fromiter((s.data_ptr() for s in contiguous), dtype=np.int64, count=batch)
    _run_mix_into("collate_mix_", out, addresses, dtype, contiguous, partner, lam, kind, box, scale, bias, hwc)


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    if b.numel() == 0:
        return False
    a_lo = a.data_ptr()
    a_hi = a_lo + (1 + sum((s - 1) * st for s, st in zip(a.shape, a.stride()))) * a.element_size()
    b_lo = b.data_ptr()
    b_hi = b_lo + (1 + sum((s - 1) * st for s, st in zip(b.shape, b.stride()))) * b.element_size()
    return a_lo < b_hi and b_lo < a_hi
