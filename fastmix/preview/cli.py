"""``python -m fastmix preview --out grid.png``: one mixed batch drawn as a grid of labelled tiles.

The batch comes through the path users train with: a DataLoader over the images whose
``collate_fn`` is ``fastmix.MixupCollate(fastmix.Mixup(...), dtype=torch.uint8)``. Each tile is
one output sample, with its top-2 soft labels and their weights from the targets the collate
returned (e.g. "0.56 red circle" over "0.35 blue cross"). The images are the built-in procedural
shapes (fastmix.preview.procedural) or, with ``--images DIR``, the pictures of a folder. Pillow renders the
grid; it is optional (``pip install "fastmix[preview]"``).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset

from ..collate import MixupCollate
from ..mixup import Mixup
from ..sampling.methods import MixMethod
from ..sampling.params import MixKind, MixParams
from ..sampling.policy import METHODS, RESIZE_INTERPOLATIONS

GAP = 2  #: pixels between tiles
GAP_COLOUR = (24, 24, 24)
BAND_COLOUR = (0, 0, 0, 165)  # translucent: the text reads on any image, the image still shows beneath
TEXT_COLOUR = (255, 255, 255, 255)
MIN_FONT_SIZE = 8
#: A class is listed on a tile when its target exceeds the label-smoothing floor by this much:
#: half the last printed digit, so a tile never reads "0.00 <class>".
MIN_SHOWN_WEIGHT = 0.005


def pillow_missing() -> Optional[str]:
    """None when Pillow imports, else one line saying what to install."""
    try:
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name in ("PIL", None) or (exc.name or "").startswith("PIL."):
            return 'Pillow is not installed; install it with: pip install pillow  (or: pip install "fastmix[preview]")'
        return f"Pillow failed to import ({exc}); reinstall it: pip install --force-reinstall pillow"
    except Exception as exc:  # noqa: BLE001  (a broken install: say so in one line, not a traceback)
        return f"Pillow failed to import ({type(exc).__name__}: {exc}); reinstall it: pip install --force-reinstall pillow"
    return None


def top_labels(target: torch.Tensor | Sequence[float], classes: Sequence[str], smoothing: float = 0.0,
               k: int = 2) -> List[Tuple[str, float]]:
    """The (at most ``k``) heaviest classes of one soft-target row, as ``(class name, weight)``.

    Args:
        target: (C,) the soft target of one sample, as the collate returned it (weights include
            label smoothing).
        classes: the C class names.
        smoothing: the label smoothing eps; every class gets at least eps / C, so only classes
            above that floor (by at least MIN_SHOWN_WEIGHT) count as having weight.
        k: how many classes at most.

    The heaviest class is always listed; an unmixed sample (or one mixed with a sample of its own
    class) lists one class. Ties keep the lower class index first.
    """
    row = torch.as_tensor(target, dtype=torch.float64).flatten()
    if row.numel() != len(classes):
        raise ValueError(f"target: expected {len(classes)} weights (one per class), got {row.numel()}")
    if row.numel() == 0:
        raise ValueError("target: expected at least one class, got an empty row")
    weights = row.tolist()
    floor = smoothing / len(classes)
    order = sorted(range(len(weights)), key=lambda c: (-weights[c], c))[:k]
    picked = [order[0]] + [c for c in order[1:] if weights[c] - floor >= MIN_SHOWN_WEIGHT]
    return [(classes[c], weights[c]) for c in picked]


def caption_lines(target: torch.Tensor | Sequence[float], classes: Sequence[str],
                  smoothing: float = 0.0) -> List[str]:
    """The text of one tile, one line per class: ``["0.62 red circle", "0.38 blue cross"]``."""
    return [f"{weight:.2f} {name}" for name, weight in top_labels(target, classes, smoothing)]


def caption(target: torch.Tensor | Sequence[float], classes: Sequence[str], smoothing: float = 0.0) -> str:
    """One tile's text on one line: ``"0.62 red circle / 0.38 blue cross"``."""
    return " / ".join(caption_lines(target, classes, smoothing))


def grid_shape(count: int, columns: Optional[int]) -> Tuple[int, int]:
    """``(columns, rows)`` of a grid of ``count`` tiles: ``columns`` (default ceil(sqrt(count)),
    at most ``count``) and as many rows as needed."""
    columns = math.ceil(math.sqrt(count)) if columns is None else min(columns, count)
    return columns, math.ceil(count / columns)


def grid_size(count: int, columns: Optional[int], tile_size: int) -> Tuple[int, int]:
    """``(width, height)`` in pixels of the grid image: tiles of ``tile_size`` with GAP between them."""
    cols, rows = grid_shape(count, columns)
    return cols * tile_size + (cols - 1) * GAP, rows * tile_size + (rows - 1) * GAP


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, ValueError, OSError):
        return ImageFont.load_default()


def _fit_font(draw, lines: List[str], width: int, size: int):
    """The largest default font of at most ``size`` in which every line fits ``width`` pixels."""
    font = _font(size)
    while size > MIN_FONT_SIZE and max(draw.textlength(line, font=font) for line in lines) > width:
        size -= 1
        font = _font(size)
    return font


def _shorten(draw, line: str, font, width: int) -> str:
    if draw.textlength(line, font=font) <= width:
        return line
    while len(line) > 1 and draw.textlength(line + "...", font=font) > width:
        line = line[:-1]
    return line.rstrip() + "..."


def render_grid(images: torch.Tensor, captions: Sequence[Sequence[str]], path: str,
                columns: Optional[int] = None) -> Tuple[int, int]:
    """Draw ``images`` as a grid of tiles, each with its caption lines on a dark band, to ``path``.

    Args:
        images: (B, 3, S, S) uint8, as ``MixupCollate(dtype=torch.uint8)`` returns them.
        captions: B lists of text lines, drawn at the bottom of each tile.
        path: the output file; its extension picks the format (".png").
        columns: tiles per row (default ceil(sqrt(B))).

    Returns the (width, height) of the image written: see :func:`grid_size`.
    """
    from PIL import Image, ImageDraw

    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"images: expected a (B, 3, S, S) uint8 tensor, got {tuple(images.shape)} {images.dtype}")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images: expected square tiles, got {images.shape[2]}x{images.shape[3]}")
    if len(captions) != images.shape[0]:
        raise ValueError(f"captions: expected {images.shape[0]} (one per image), got {len(captions)}")
    count, tile = images.shape[0], images.shape[2]
    cols, _ = grid_shape(count, columns)
    width, height = grid_size(count, columns, tile)
    canvas = Image.new("RGBA", (width, height), GAP_COLOUR + (255,))
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pixels = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC for PIL
    pad = max(2, tile // 40)
    for i in range(count):
        left, top = (i % cols) * (tile + GAP), (i // cols) * (tile + GAP)
        canvas.paste(Image.fromarray(pixels[i], "RGB"), (left, top))
        lines = list(captions[i])
        if not lines:
            continue
        font = _fit_font(draw, lines, tile - 2 * pad, max(MIN_FONT_SIZE, tile // 12))
        lines = [_shorten(draw, line, font, tile - 2 * pad) for line in lines]
        ascent_to_descent = draw.textbbox((0, 0), "Ag", font=font)
        line_height = ascent_to_descent[3] - ascent_to_descent[1] + max(1, pad // 2)
        band_top = max(top, top + tile - len(lines) * line_height - 2 * pad)
        draw.rectangle((left, band_top, left + tile - 1, top + tile - 1), fill=BAND_COLOUR)
        for n, line in enumerate(lines):
            draw.text((left + pad, band_top + pad + n * line_height - ascent_to_descent[1]), line, font=font,
                      fill=TEXT_COLOUR)
    Image.alpha_composite(canvas, overlay).convert("RGB").save(path)
    return width, height


def mixed_batch(dataset: Dataset, mixup: Mixup, batch_size: int,
                seed: int) -> Tuple[torch.Tensor, torch.Tensor, MixParams]:
    """One batch of ``dataset`` through the training path: a shuffled DataLoader (its order seeded
    by ``seed``) with ``MixupCollate(mixup, dtype=torch.uint8)`` as its collate_fn.

    Returns images (B, 3, H, W) uint8, targets (B, C) float32 and the MixParams that were applied;
    B = min(batch_size, len(dataset)). A dataset of segmentation samples (``masks=True``) gives
    ``(images, targets, params, mask_targets)``.
    """
    with_masks = bool(getattr(dataset, "masks", False))
    collate = MixupCollate(mixup, dtype=torch.uint8, masks=with_masks)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=order, collate_fn=collate)
    batch = next(iter(loader))
    if with_masks:
        return batch["image"], batch["label"], mixup.last_params, batch["mask"]
    images, targets = batch
    return images, targets, mixup.last_params


def mask_tiles(masks: torch.Tensor, palette: Sequence[Tuple[int, int, int]]) -> torch.Tensor:
    """(B, H, W) class masks as (B, 3, H, W) uint8 tiles: class k in ``palette[k]``, others white."""
    colours = torch.full((256, 3), 255, dtype=torch.uint8)
    colours[: len(palette)] = torch.tensor(palette, dtype=torch.uint8)
    return colours[masks.long().clamp(0, 255)].permute(0, 3, 1, 2).contiguous()


def mask_caption(params: MixParams, i: int) -> List[str]:
    kind = int(params.kind[i])
    if kind == MixKind.PASTE:
        return [f"mask: box from #{int(params.partner[i])}"]
    if kind in (MixKind.RESIZE, MixKind.RESIZE_NEAREST) and params.mixed()[i]:
        return [f"mask: #{int(params.partner[i])} resized", f"into the box ({1 - float(params.lam[i]):.0%})"]
    if kind == MixKind.MASK and params.mixed()[i]:
        name = MixMethod(int(params.method[i])).name.lower() if params.method is not None else "mask"
        return [f"mask: {name} pixels", f"from #{int(params.partner[i])} ({1 - float(params.lam[i]):.0%})"]
    if kind == MixKind.BLEND:
        lam = float(params.lam[i])
        return [f"mask {lam:.0%}", f"+ #{int(params.partner[i])}'s {1 - lam:.0%}"]
    return ["mask"]


def describe_params(params: MixParams) -> str:
    """What was done to the batch, e.g. "16 samples: mixup on 10 (lam 0.62), 6 unmixed"."""
    mixed = params.mixed()
    parts = []
    method = params.method
    if method is None:  # only Mixup and CutMix were on: the kind says the method
        method = torch.where(params.kind == int(MixKind.BLEND), int(MixMethod.MIXUP), int(MixMethod.CUTMIX))
    for chosen_method in (MixMethod.MIXUP, MixMethod.CUTMIX, MixMethod.FMIX, MixMethod.CLASSMIX, MixMethod.RESIZEMIX):
        name = chosen_method.name.lower()
        chosen = mixed & (method == int(chosen_method))
        if chosen.any():
            lams = params.lam[chosen]
            low, high = lams.min().item(), lams.max().item()
            lam = f"lam {low:.2f}" if high - low < 0.005 else f"lam {low:.2f}..{high:.2f}"
            parts.append(f"{name} on {int(chosen.sum())} ({lam})")
    unmixed = int((~mixed).sum())
    if unmixed:
        parts.append(f"{unmixed} unmixed")
    return f"{params.batch_size} samples: " + ", ".join(parts)


# MixPolicy's argument names, as the CLI spells them, for its error messages
_OPTION_NAMES = {name: "--" + name.replace("_", "-") for name in
                 ("mixup_alpha", "cutmix_alpha", "cutmix_minmax", "prob", "switch_prob", "mode", "label_smoothing",
                  "fmix_alpha", "fmix_decay_power", "resizemix_alpha", "resizemix_lam_min", "resizemix_lam_max",
                  "resizemix_interpolation")}


def _cli_message(exc: Exception) -> str:
    """A MixPolicy error with its argument names spelled as CLI options."""
    message = str(exc)
    names, sep, rest = message.partition(":")
    if sep:
        names = ", ".join(_OPTION_NAMES.get(n.strip(), n.strip()) for n in names.split(","))
        return names + sep + rest
    return message


def _int_at_least(low: int):
    """An argparse type: an int >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


MIN_TILE_SIZE = 32  # room for two lines of the smallest font


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m fastmix preview`` options."""
    parser = argparse.ArgumentParser(
        prog="python -m fastmix preview",
        description="Render one batch mixed by fastmix.MixupCollate as a grid of tiles, each labelled with its "
                    "top-2 soft labels and their weights (label smoothing included).",
    )
    parser.add_argument("--out", default="preview.png", metavar="FILE.png",
                        help="where to write the grid (default preview.png)")
    parser.add_argument("--images", metavar="DIR",
                        help="a folder of images instead of the built-in procedural shapes: class subfolders "
                             "(torchvision ImageFolder layout) or image files, each then its own class")
    mixing = parser.add_argument_group("mixing (fastmix.Mixup / timm names and defaults)")
    mixing.add_argument("--mixup-alpha", type=float, metavar="ALPHA", default=None,
                        help="Mixup Beta(alpha, alpha); 0 = off (default 1.0)")
    mixing.add_argument("--cutmix-alpha", type=float, metavar="ALPHA", default=None,
                        help="CutMix Beta(alpha, alpha); 0 = off (default 0.0)")
    mixing.add_argument("--cutmix-minmax", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="CutMix box sides as fractions of the image, drawn uniformly (default: from lambda)")
    mixing.add_argument("--prob", type=float, metavar="P", default=1.0,
                        help="chance a batch / sample is mixed (default 1.0)")
    mixing.add_argument("--switch-prob", type=float, metavar="P", default=0.5,
                        help="chance of CutMix rather than Mixup when both are on (default 0.5)")
    mixing.add_argument("--mode", choices=("batch", "pair", "elem"), default="batch",
                        help="one lambda per batch, per pair or per sample (default batch)")
    mixing.add_argument("--label-smoothing", type=float, metavar="EPS", default=0.1,
                        help="the true class scores 1 - EPS + EPS/C, every other EPS/C (default 0.1)")
    mixing.add_argument("--fmix-alpha", type=float, metavar="ALPHA", default=None,
                        help="FMix Beta(alpha, alpha): masks of low-frequency Fourier noise; 0 = off (default 0.0)")
    mixing.add_argument("--fmix-decay-power", type=float, metavar="D", default=3.0,
                        help="FMix's spectrum falls as 1 / f**D; larger is smoother (default 3.0)")
    mixing.add_argument("--classmix", action="store_true",
                        help="ClassMix: take the pixels of half of the partner's classes (needs --masks)")
    mixing.add_argument("--resizemix-alpha", type=float, metavar="ALPHA", default=None,
                        help="ResizeMix Beta(alpha, alpha): the whole partner resized into a box; 0 = off (default 0.0)")
    mixing.add_argument("--resizemix-lam-min", type=float, metavar="LAM", default=0.1,
                        help="ResizeMix's lambda, the part left uncovered, is drawn in [LAM, max] (default 0.1)")
    mixing.add_argument("--resizemix-lam-max", type=float, metavar="LAM", default=0.8,
                        help="the top of that range (default 0.8)")
    mixing.add_argument("--resizemix-interpolation", choices=RESIZE_INTERPOLATIONS, default="bilinear",
                        help="how ResizeMix resizes the partner (default bilinear)")
    mixing.add_argument("--method", action="append", choices=METHODS, metavar="NAME", default=None,
                        help="draw only this method (repeatable: " + ", ".join(METHODS) + "): the others are off, "
                             "a named one on at alpha 1.0 unless its alpha is given; classmix needs --masks")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--batch-size", type=_int_at_least(1), metavar="N", default=16,
                      help="samples in the batch, one tile each (default 16)")
    grid.add_argument("--columns", type=_int_at_least(1), metavar="N", default=None,
                      help="tiles per row (default ceil(sqrt(batch size)))")
    grid.add_argument("--tile-size", type=_int_at_least(MIN_TILE_SIZE), metavar="PX", default=160,
                      help="tile side in pixels; images are drawn or resized and centre-cropped to it (default 160)")
    grid.add_argument("--masks", action="store_true",
                      help="segmentation: draw each tile's mask beside it (the shapes are their own masks; "
                           "procedural images only)")
    grid.add_argument("--seed", type=int, metavar="N", default=0,
                      help="seeds the batch order and the mixing: same seed, same grid (default 0)")
    return parser


def _check_out(parser: argparse.ArgumentParser, out: str) -> None:
    from PIL import Image

    extension = os.path.splitext(out)[1].lower()
    if extension not in Image.registered_extensions():
        parser.error(f"--out: expected an image file name such as grid.png, got {out!r} "
                     f"(unknown extension {extension!r})")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        parser.error(f"--out: the folder {folder!r} does not exist")


def _method_alphas(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """Each method's alpha (classmix: 1 or 0): as given, else its default (Mixup 1.0, the others
    off); with --method, the named methods as given or at 1.0, and the others off."""
    given = {"mixup": args.mixup_alpha, "cutmix": args.cutmix_alpha, "fmix": args.fmix_alpha,
             "classmix": 1.0 if args.classmix else None, "resizemix": args.resizemix_alpha}
    if given["classmix"] or (args.method and "classmix" in args.method):
        if not args.masks:
            parser.error("--classmix: ClassMix takes the pixels of the partner's classes: it needs --masks")
    if args.method:
        return {name: (1.0 if given[name] is None else given[name]) if name in args.method else 0.0 for name in METHODS}
    defaults = {"mixup": 1.0, "cutmix": 0.0, "fmix": 0.0, "classmix": 0.0, "resizemix": 0.0}
    return {name: defaults[name] if given[name] is None else given[name] for name in METHODS}


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m fastmix preview [options]``; returns the exit code (2 when Pillow is missing)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = pillow_missing()
    if missing:  # one line, no traceback: said before any work
        print(f"python -m fastmix preview: {missing}", file=sys.stderr)
        return 2
    _check_out(parser, args.out)

    if args.masks and args.images is not None:
        parser.error("--masks: only for the procedural images (their shapes are their masks), not with --images")
    if args.images is None:
        from .procedural import COLOURS, SHAPES, ProceduralShapes

        dataset = ProceduralShapes(image_size=args.tile_size, masks=args.masks)
        source = f"procedural shapes ({len(dataset.classes)} classes: {len(COLOURS)} colours x {len(SHAPES)} shapes"
        source += ", and background)" if args.masks else ")"
    else:
        from .image_folder import ImageFolderImages

        try:
            dataset = ImageFolderImages(args.images, image_size=args.tile_size)
        except (OSError, ValueError) as exc:
            parser.error(f"--images: {exc}")
        source = f"{args.images} ({len(dataset)} images, {len(dataset.classes)} classes, {dataset.layout} layout)"

    alphas = _method_alphas(parser, args)
    try:
        mixup = Mixup(mixup_alpha=alphas["mixup"], cutmix_alpha=alphas["cutmix"],
                      cutmix_minmax=None if args.cutmix_minmax is None else tuple(args.cutmix_minmax), prob=args.prob,
                      switch_prob=args.switch_prob, mode=args.mode, label_smoothing=args.label_smoothing,
                      num_classes=len(dataset.classes), seed=args.seed, fmix_alpha=alphas["fmix"],
                      fmix_decay_power=args.fmix_decay_power, classmix=bool(alphas["classmix"]),
                      resizemix_alpha=alphas["resizemix"], resizemix_lam_min=args.resizemix_lam_min,
                      resizemix_lam_max=args.resizemix_lam_max, resizemix_interpolation=args.resizemix_interpolation)
    except (TypeError, ValueError) as exc:
        parser.error(_cli_message(exc))

    from .image_folder import UnreadableImageError

    try:
        images, targets, params, *masks = mixed_batch(dataset, mixup, args.batch_size, args.seed)
    except UnreadableImageError as exc:
        parser.error(f"--images: {exc}")
    classes = dataset.classes
    captions = [caption_lines(row, classes, mixup.policy.label_smoothing) for row in targets]
    batch_size = images.shape[0]
    if masks:  # each image followed by its mask: the pasted box lands in both
        palette = [(40, 40, 40)] + [COLOURS[name.split(" ")[0]] for name in classes[1:]]
        tiles = mask_tiles(masks[0].mask_a, palette)
        images = torch.stack([t for pair in zip(images, tiles) for t in pair])
        captions = [c for i in range(batch_size) for c in (captions[i], mask_caption(params, i))]
    columns = args.columns if args.columns or not masks else 2 * grid_shape(batch_size, None)[0]  # pairs on a row
    try:
        width, height = render_grid(images, captions, args.out, columns)
    except OSError as exc:
        parser.error(f"--out: could not write {args.out!r}: {exc}")

    print(f"images: {source}, batch of {batch_size} drawn with seed {args.seed}"
          f"{', each tile followed by its mask' if masks else ''}")
    if batch_size < args.batch_size:
        print(f"note: --batch-size {args.batch_size} but the folder has {len(dataset)} images: the batch has them all")
    print(f"mixing: MixupCollate(dtype=torch.uint8{', masks=True' if masks else ''}) with {mixup!r}")
    print(f"this batch: {describe_params(params)}")
    cols, rows = grid_shape(images.shape[0], columns)
    print(f"wrote {args.out} ({width}x{height} px: {cols}x{rows} tiles of {args.tile_size}x{args.tile_size})")
    return 0
