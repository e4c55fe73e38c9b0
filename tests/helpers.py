"""What the test modules share: inputs (values, layouts, params) and the reference, called with
a MixParams. Tests import these from here, never from one another."""
import torch

from fastmix import MixParams
from fastmix.backends import reference

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
# contiguous / channels_last hit the dense kernel; the others the generic strided one.
LAYOUTS = ["contiguous", "channels_last", "video", "flat", "sliced", "batch_inner", "hwc_permuted"]


def random_values(shape, dtype, generator):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 4 - 2).to(dtype)


def make_images(layout, batch, channels, height, width, dtype, generator):
    """A batch of the given logical shape (B, C, H, W) (or (B, T, C, H, W), (B, D)) and layout."""
    if layout == "contiguous":
        return random_values((batch, channels, height, width), dtype, generator)
    if layout == "channels_last":
        x = random_values((batch, channels, height, width), dtype, generator)
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "video":
        return random_values((batch, 2, channels, height, width), dtype, generator)
    if layout == "flat":
        return random_values((batch, channels * height * width), dtype, generator)
    if layout == "sliced":  # gaps between elements: every other column of a wider batch
        return random_values((batch, channels, height, 2 * width), dtype, generator)[..., ::2]
    if layout == "batch_inner":  # samples interleaved: batch is not the outermost dim in memory
        return random_values((channels, batch, height, width), dtype, generator).transpose(0, 1)
    if layout == "hwc_permuted":  # (B, H, C, W) memory order viewed as (B, C, H, W)
        return random_values((batch, height, channels, width), dtype, generator).permute(0, 2, 1, 3)
    raise AssertionError(layout)


def random_params(batch, height, width, generator, allow_paste=True):
    """Arbitrary params: any partner map (cycles of any length, trees, self-partners), kinds, boxes."""
    partner = torch.randint(0, batch, (batch,), generator=generator)
    if torch.rand((), generator=generator) < 0.5:
        partner = torch.randperm(batch, generator=generator)
    kind = torch.randint(0, 3 if allow_paste else 2, (batch,), generator=generator).to(torch.uint8)
    lam = torch.rand(batch, generator=generator)
    y = torch.randint(0, height + 1, (batch, 2), generator=generator).sort(dim=1).values
    x = torch.randint(0, width + 1, (batch, 2), generator=generator).sort(dim=1).values
    box = torch.cat([y, x], dim=1)
    return MixParams(partner=partner, lam=lam, kind=kind, box=box)


def reference_mix_(images: torch.Tensor, params: MixParams) -> torch.Tensor:
    """The torch reference's in-place mix of ``images``; returns them."""
    reference.mix_(images, *params.to(images.device).as_tuple())
    return images


def reference_targets(labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """The torch reference's soft targets."""
    partner, lam, kind, _ = params.to(labels.device).as_tuple()
    return reference.mix_targets(labels, partner, lam, kind, num_classes, smoothing)


def reference_mix_into(out: torch.Tensor, images: torch.Tensor, params: MixParams, scale: torch.Tensor,
                       bias: torch.Tensor, hwc: bool) -> torch.Tensor:
    """The torch reference's out-of-place mix into ``out``; returns it."""
    reference.mix_into_(out, images, *params.to(out.device).as_tuple(), scale.to(out.device), bias.to(out.device), hwc)
    return out


LABEL_FORMS = ["indices", "int32 indices", "probabilities", "multi-label", "float16 dense"]


def make_labels(form: str, batch: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """(B,) class indices or (B, C) dense targets of one of LABEL_FORMS."""
    if form == "indices":
        return torch.randint(0, num_classes, (batch,), generator=generator)
    if form == "int32 indices":
        return torch.randint(0, num_classes, (batch,), generator=generator, dtype=torch.int32)
    if form == "probabilities":
        return torch.rand(batch, num_classes, generator=generator).softmax(dim=1)
    if form == "multi-label":
        return (torch.rand(batch, num_classes, generator=generator) < 0.3).float()
    if form == "float16 dense":
        return torch.rand(batch, num_classes, generator=generator).half()
    raise AssertionError(form)


def mix_into_inputs(in_dtype, batch, channels, height, width, hwc, normalize, generator):
    """(images, params, scale, bias) for mix_into_: (B, H, W, C) when hwc, else (B, C, H, W);
    float32 inputs spread over +-200; scale/bias empty unless normalising."""
    shape = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    images = random_values(shape, in_dtype, generator)
    if in_dtype == torch.float32:
        images = images * 100
    params = random_params(batch, height, width, generator)
    scale = torch.rand(channels, generator=generator) + 0.5 if normalize else torch.empty(0)
    bias = torch.rand(channels, generator=generator) - 0.5 if normalize else torch.empty(0)
    return images, params, scale, bias
