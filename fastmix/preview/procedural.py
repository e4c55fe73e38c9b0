"""A built-in procedural image set: coloured shapes on plain backgrounds, drawn with numpy.

    dataset = ProceduralShapes(length=3600, image_size=64)
    image, label = dataset[5]          # (64, 64, 3) uint8 numpy, int
    dataset.classes[label]             # e.g. "red triangle"

Each class is a colour and a shape ("red circle", "blue cross", ...); each item is a pure function
of (seed, index): its own numpy Generator draws the background, position, size, rotation and a
small colour jitter, so images differ within a class and the set needs no files, no download and
no optional dependency. ``python -m fastmix preview`` mixes a batch of it to show what the
mixing settings do.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np
from torch.utils.data import Dataset

#: The colour names and their RGB values: far apart, and all far more saturated than a background.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 175, 60),
    "blue": (45, 85, 225),
    "yellow": (235, 205, 30),
    "magenta": (205, 50, 195),
    "cyan": (40, 195, 210),
}

SHAPES: Tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")

#: Class names in label order: label = colour_index * len(SHAPES) + shape_index.
CLASSES: List[str] = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]

SUPERSAMPLE = 2  # masks are evaluated on a 2x finer grid and averaged: anti-aliased edges
MAX_ROTATION = math.radians(15)  # small, so a square never turns into a diamond nor a cross into an X
COLOUR_JITTER = 18  # per channel, so no two items of a class are the same colour to the bit


def _regular_polygon(points: int, radii: Tuple[float, ...], start: float) -> np.ndarray:
    """(points * len(radii), 2) vertices (x, y), alternating the radii, first one at angle ``start``."""
    count = points * len(radii)
    angles = start + 2 * math.pi * np.arange(count) / count
    r = np.resize(np.asarray(radii, dtype=np.float64), count)
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


_ARM, _REACH = 0.3, 0.95  # the cross: half-width and length of its arms
#: Shapes drawn as polygons, in unit coordinates around the centre (y grows downwards).
_POLYGONS: Dict[str, np.ndarray] = {
    "square": np.array([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]),
    "triangle": _regular_polygon(3, (1.0,), -math.pi / 2),  # apex up
    "cross": np.array([
        (-_ARM, -_REACH), (_ARM, -_REACH), (_ARM, -_ARM), (_REACH, -_ARM), (_REACH, _ARM), (_ARM, _ARM),
        (_ARM, _REACH), (-_ARM, _REACH), (-_ARM, _ARM), (-_REACH, _ARM), (-_REACH, -_ARM), (-_ARM, -_ARM),
    ]),
    "star": _regular_polygon(5, (1.0, 0.42), -math.pi / 2),
}


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Boolean mask of the points (x, y) inside the polygon (even-odd rule), vectorised over points."""
    inside = np.zeros(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y0 == y1:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (y0 > y) != (y1 > y)
        x_at_y = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at_y)
    return inside


def shape_coverage(shape: str, image_size: int, centre: Tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """(image_size, image_size) float32 in [0, 1]: how much of each pixel the shape covers.

    ``centre`` is (x, y) in pixels, ``radius`` the shape's outer radius in pixels, ``angle`` its
    rotation in radians (ignored by the round shapes)."""
    if shape not in SHAPES:
        raise ValueError(f"shape: expected one of {', '.join(SHAPES)}, got {shape!r}")
    fine = image_size * SUPERSAMPLE
    coords = (np.arange(fine, dtype=np.float64) + 0.5) / SUPERSAMPLE  # sub-pixel centres, in pixels
    x, y = np.meshgrid(coords - centre[0], coords - centre[1])
    # rotate the points by -angle: the same as rotating the shape by +angle
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = (x * cos + y * sin) / radius, (-x * sin + y * cos) / radius
    if shape == "circle":
        mask = u * u + v * v <= 1.0
    elif shape == "ring":
        mask = (u * u + v * v <= 1.0) & (u * u + v * v >= 0.55 ** 2)
    else:
        mask = _inside_polygon(u, v, _POLYGONS[shape])
    return mask.reshape(image_size, SUPERSAMPLE, image_size, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)


def draw_item(label: int, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """One (image_size, image_size, 3) uint8 image of class ``label`` (an index into CLASSES).

    The draws from ``rng`` do not depend on the class: the same generator state gives the same
    background, position, size and rotation for every class."""
    return draw_item_and_coverage(label, image_size, rng)[0]


def draw_item_and_coverage(label: int, image_size: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`draw_item`'s image, and the (image_size, image_size) float32 share of each pixel the
    shape covers (its segmentation mask, before thresholding)."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label: expected an int in [0, {len(CLASSES)}), got {label}")
    colour_name, shape = CLASSES[label].split(" ")
    # background: a dull (low-saturation) tint with a linear gradient, never mistaken for the shape colour
    grey = rng.uniform(45, 210)
    tint = rng.uniform(-12, 12, size=3)
    gradient_angle = rng.uniform(0, 2 * math.pi)
    gradient_amplitude = rng.uniform(0, 30)
    # the shape: fully inside the image
    radius = rng.uniform(0.22, 0.38) * image_size
    centre = (rng.uniform(radius, image_size - radius), rng.uniform(radius, image_size - radius))
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    jitter = rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, size=3)

    ramp = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size - 0.5  # [-0.5, 0.5)
    along = ramp[None, :] * math.cos(gradient_angle) + ramp[:, None] * math.sin(gradient_angle)
    background = (grey + tint)[None, None, :] + (gradient_amplitude * along)[:, :, None]
    colour = np.asarray(COLOURS[colour_name], dtype=np.float64) + jitter
    coverage = shape_coverage(shape, image_size, centre, radius, angle)[:, :, None]
    image = background * (1.0 - coverage) + colour[None, None, :] * coverage
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), coverage[:, :, 0]


class ProceduralShapes(Dataset):
    """Map-style dataset of coloured shapes: ``dataset[i] -> (image, label)``.

    * image: (image_size, image_size, 3) uint8 numpy array (HWC, as PIL or OpenCV decode), a pure
      function of (seed, i).
    * label: int in [0, len(classes)); item i is of class ``i % len(classes)``.

    With ``masks=True`` the shapes are their own segmentation masks: ``dataset[i]`` is a dict
    ``{"image", "mask", "label"}`` where the mask is (image_size, image_size) uint8, the shape's
    class where it covers at least half a pixel and 0 ("background", then ``classes[0]``) elsewhere,
    and the labels are shifted by one to match.

    Args:
        length: number of items.
        image_size: side of the square images, in pixels (>= 4).
        seed: the set's seed; items are drawn by ``numpy.random.default_rng((seed, index))``.
        masks: return segmentation samples (dicts with a mask), as above.
    """

    classes: List[str] = CLASSES

    def __init__(self, length: int = 100 * len(CLASSES), image_size: int = 64, seed: int = 0,
                 masks: bool = False) -> None:
        for name, value, low in (("length", length, 1), ("image_size", image_size, 4), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__}")
            if value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value}")
        self.length = length
        self.image_size = image_size
        self.seed = seed
        self.masks = bool(masks)
        if self.masks:
            self.classes = ["background"] + CLASSES

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if not -self.length <= index < self.length:
            raise IndexError(f"index: expected an int in [-{self.length}, {self.length}), got {index}")
        index = int(index) % self.length
        label = index % len(CLASSES)
        rng = np.random.default_rng((self.seed, index))
        image, coverage = draw_item_and_coverage(label, self.image_size, rng)
        if not self.masks:
            return image, label
        mask = np.where(coverage >= 0.5, label + 1, 0).astype(np.uint8)
        return {"image": image, "mask": mask, "label": label + 1}

    def __repr__(self) -> str:
        return (f"fastmix.procedural.ProceduralShapes(length={self.length}, image_size={self.image_size}, seed={self.seed}"
                f"{', masks=True' if self.masks else ''})")
