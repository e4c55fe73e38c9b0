"""The images of a folder as a map-style dataset, for ``python -m fastmix preview --images DIR``.

Two layouts are understood:

* torchvision's ImageFolder: ``DIR/<class>/**/<image>``; the class names are the subfolder names,
  sorted, and labels index them (images directly in DIR are then ignored, as ImageFolder does).
* a flat folder: ``DIR/<image>``; **each image is its own class**, named after its file, so the
  soft labels of a mixed batch say which two pictures were mixed and how much of each (one shared
  class would label every tile "1.00 images" and show nothing).

Images are read with Pillow (imported on first use), turned upright by their EXIF orientation,
converted to RGB and resized and centre-cropped to a square.
"""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np
from torch.utils.data import Dataset

#: The file extensions read as images (torchvision's IMG_EXTENSIONS), compared case-insensitively.
IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class UnreadableImageError(ValueError):
    """An image file of the folder could not be decoded."""


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _images_under(folder: str) -> List[str]:
    """Every image file under ``folder`` (recursively, hidden entries skipped), sorted."""
    found = []
    for parent, subfolders, files in os.walk(folder, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(os.path.join(parent, f) for f in sorted(files) if _is_image(f))
    return found


def _describe(names: List[str], what: str) -> str:
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} {what}{'s' if len(names) != 1 else ''} ({shown})"


def find_images(root: str) -> Tuple[List[Tuple[str, int]], List[str], str]:
    """``(samples, classes, layout)`` for the folder ``root``.

    * samples: ``(path, label)`` pairs, sorted by class then path.
    * classes: class names, label order.
    * layout: ``"ImageFolder"`` (class subfolders) or ``"flat"`` (each image its own class).

    Raises FileNotFoundError / NotADirectoryError for a missing path or a file, and ValueError
    (saying what it found instead) for a folder with no images.
    """
    if not os.path.exists(root):
        raise FileNotFoundError(f"expected a folder of images, got {root!r}, which does not exist")
    if not os.path.isdir(root):
        raise NotADirectoryError(f"expected a folder of images, got {root!r}, which is a file, not a folder")
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    subfolders = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    files = [e for e in entries if not os.path.isdir(os.path.join(root, e))]

    per_class = [(name, _images_under(os.path.join(root, name))) for name in subfolders]
    per_class = [(name, paths) for name, paths in per_class if paths]
    if per_class:
        classes = [name for name, _ in per_class]
        samples = [(path, label) for label, (_, paths) in enumerate(per_class) for path in paths]
        return samples, classes, "ImageFolder"

    images = [f for f in files if _is_image(f)]
    if images:
        stems = [os.path.splitext(f)[0] for f in images]
        classes = stems if len(set(stems)) == len(stems) else images  # "a.jpg" and "a.png": keep the extensions
        return [(os.path.join(root, f), label) for label, f in enumerate(images)], classes, "flat"

    found = [_describe(files, "file")] if files else []
    found += [_describe(subfolders, "subfolder")] if subfolders else []
    raise ValueError(
        f"expected image files ({', '.join(IMAGE_EXTENSIONS)}) in {root!r} or in class subfolders of it "
        f"(torchvision's ImageFolder layout), found {' and '.join(found) + ' with no images' if found else 'an empty folder'}"
    )


def load_image(path: str, image_size: int) -> np.ndarray:
    """The image file ``path`` as an (image_size, image_size, 3) uint8 numpy array (HWC, RGB):
    upright by its EXIF orientation, the shorter side resized to ``image_size``, centre-cropped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UnreadableImageError(f"{path}: not a readable image ({exc})") from exc
    image = ImageOps.fit(image, (image_size, image_size), method=Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).copy()  # PIL's arrays are read-only


class ImageFolderImages(Dataset):
    """The images of the folder ``root`` (see the module docstring for the layouts).

    ``dataset[i] -> (image, label)``: image (image_size, image_size, 3) uint8 numpy (HWC, RGB),
    label an int indexing ``dataset.classes``. ``dataset.layout`` is "ImageFolder" or "flat".
    """

    def __init__(self, root: str, image_size: int = 64) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size: expected an int >= 1, got {image_size!r}")
        self.root = root
        self.image_size = image_size
        self.samples, self.classes, self.layout = find_images(root)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, int]:
        path, label = self.samples[index]
        return load_image(path, self.image_size), label

    def __repr__(self) -> str:
        return (f"fastmix.image_folder.ImageFolderImages({self.root!r}, image_size={self.image_size}): "
                f"{len(self.samples)} images, {len(self.classes)} classes, {self.layout} layout")
