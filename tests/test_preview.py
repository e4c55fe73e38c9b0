"""`python -m fastmix preview`: the procedural image set, the folder loader, the labels on the tiles
and the grid the command writes."""
import itertools
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import fastmix
from fastmix.preview import cli as preview
from fastmix.__main__ import USAGE
from fastmix.__main__ import main as fastmix_main
from fastmix.preview.image_folder import ImageFolderImages
from fastmix.preview.procedural import CLASSES, COLOURS, SHAPES, ProceduralShapes, draw_item

Image = pytest.importorskip("PIL.Image", reason="Pillow is part of the test extras")

SIZE = 32  # small images keep the file fast


def saturated(image: np.ndarray, chroma: int = 60) -> np.ndarray:
    """(H, W) bool: the strongly coloured pixels (the shape; backgrounds are dull by design)."""
    pixels = image.astype(np.int32)
    return pixels.max(axis=2) - pixels.min(axis=2) > chroma


# ---------------------------------------------------------------- the procedural image set

def test_an_item_is_a_pure_function_of_its_index():
    first, again = ProceduralShapes(image_size=SIZE), ProceduralShapes(image_size=SIZE)
    for index in (0, 7, 35, 1000):
        image, label = first[index]
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        assert label == index % len(CLASSES)
        np.testing.assert_array_equal(image, again[index][0])
        np.testing.assert_array_equal(image, first[index][0])  # no state carried between reads
    np.testing.assert_array_equal(first[-1][0], first[len(first) - 1][0])


def test_items_of_one_class_differ_and_the_seed_changes_the_set():
    dataset = ProceduralShapes(image_size=SIZE)
    images = [dataset[label + k * len(CLASSES)][0] for label in (0, 1) for k in range(4)]
    for a, b in itertools.combinations(images, 2):
        assert not np.array_equal(a, b)
    assert not np.array_equal(ProceduralShapes(image_size=SIZE, seed=1)[3][0], dataset[3][0])


def test_classes_are_every_colour_with_every_shape():
    assert ProceduralShapes.classes == CLASSES
    assert len(set(CLASSES)) == len(COLOURS) * len(SHAPES) == len(CLASSES)
    assert "red circle" in CLASSES and "blue cross" in CLASSES


@pytest.mark.parametrize("label", range(len(CLASSES)), ids=CLASSES)
def test_the_shape_is_drawn_in_the_colour_its_class_names(label):
    image, _ = ProceduralShapes(image_size=SIZE)[label]
    shape = saturated(image)
    assert 0.05 < shape.mean() < 0.6  # a visible shape, and background around it
    mean_colour = image[shape].astype(np.float64).mean(axis=0)
    nearest = min(COLOURS, key=lambda name: np.linalg.norm(mean_colour - np.asarray(COLOURS[name])))
    assert nearest == CLASSES[label].split(" ")[0]


def test_with_the_same_position_and_size_every_class_looks_different():
    images = [draw_item(label, SIZE, np.random.default_rng(7)) for label in range(len(CLASSES))]
    for a, b in itertools.combinations(range(len(CLASSES)), 2):
        assert np.abs(images[a].astype(int) - images[b].astype(int)).max() > 50, (CLASSES[a], CLASSES[b])
    # the shapes themselves differ, not only their colour
    masks = {shape: saturated(images[CLASSES.index(f"red {shape}")]) for shape in SHAPES}
    for a, b in itertools.combinations(SHAPES, 2):
        overlap = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
        assert overlap < 0.85, (a, b, overlap)


def test_the_set_works_in_a_dataloader_with_default_and_mixup_collate():
    dataset = ProceduralShapes(length=8, image_size=SIZE)
    images, labels = next(iter(DataLoader(dataset, batch_size=4)))
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 1, 2, 3]
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=len(CLASSES), seed=0), dtype=torch.uint8)
    in_workers = list(DataLoader(dataset, batch_size=4, collate_fn=collate, num_workers=1))
    assert [tuple(batch[0].shape) for batch in in_workers] == [(4, 3, SIZE, SIZE)] * 2
    assert [tuple(batch[1].shape) for batch in in_workers] == [(4, len(CLASSES))] * 2


def test_bad_dataset_arguments_are_named():
    with pytest.raises(ValueError, match=r"image_size: expected an int >= 4, got 2"):
        ProceduralShapes(image_size=2)
    with pytest.raises(IndexError, match=r"index: expected an int in \[-3, 3\), got 3"):
        ProceduralShapes(length=3)[3]


# ---------------------------------------------------------------- the labels on a tile

def test_top_labels_are_the_two_heaviest_classes_with_their_weights():
    classes = ["a", "b", "c", "d"]
    assert preview.top_labels([0.0, 0.62, 0.0, 0.38], classes) == [("b", 0.62), ("d", 0.38)]
    assert preview.caption([0.0, 0.62, 0.0, 0.38], classes) == "0.62 b / 0.38 d"
    assert preview.caption_lines([0.5, 0.2, 0.3, 0.0], classes) == ["0.50 a", "0.30 c"]  # only the top 2


def test_top_labels_read_smoothed_targets_as_the_collate_returns_them():
    # eps = 0.2, C = 4: on = 0.85, off = 0.05; own class c with lam = 0.75, partner's class a
    row = [0.75 * 0.05 + 0.25 * 0.85, 0.05, 0.75 * 0.85 + 0.25 * 0.05, 0.05]
    assert preview.caption(row, ["a", "b", "c", "d"], smoothing=0.2) == "0.65 c / 0.25 a"
    # unmixed (or mixed with a sample of its own class): only the class above the smoothing floor
    assert preview.caption([0.05, 0.05, 0.85, 0.05], ["a", "b", "c", "d"], smoothing=0.2) == "0.85 c"
    # the same row read by the collate's own targets
    labels = torch.tensor([2, 0])
    params = fastmix.MixParams(partner=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
                               kind=torch.tensor([1, 0], dtype=torch.uint8), box=torch.zeros(2, 4, dtype=torch.int64))
    targets = fastmix.mix_targets(labels, params, num_classes=4, smoothing=0.2)
    assert preview.caption(targets[0], ["a", "b", "c", "d"], smoothing=0.2) == "0.65 c / 0.25 a"
    assert preview.caption(targets[1], ["a", "b", "c", "d"], smoothing=0.2) == "0.85 a"


def test_a_partner_too_light_to_print_is_left_out():
    assert preview.caption([0.998, 0.002], ["x", "y"]) == "1.00 x"
    assert preview.caption([0.5, 0.5], ["x", "y"]) == "0.50 x / 0.50 y"  # a tie keeps the class order


def test_a_target_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match=r"target: expected 3 weights \(one per class\), got 2"):
        preview.top_labels([0.5, 0.5], ["a", "b", "c"])


# ---------------------------------------------------------------- the command

def run_cli(tmp_path, *options):
    out = tmp_path / "grid.png"
    assert preview.main(["--out", str(out), *options]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return np.asarray(image).copy()


@pytest.mark.parametrize("batch,columns,tile,size", [
    (6, 4, 32, (4 * 32 + 3 * preview.GAP, 2 * 32 + 1 * preview.GAP)),
    (5, None, 40, (3 * 40 + 2 * preview.GAP, 2 * 40 + 1 * preview.GAP)),  # default: ceil(sqrt(5)) = 3 columns
    (3, 8, 36, (3 * 36 + 2 * preview.GAP, 36)),  # never more columns than tiles
])
def test_the_grid_has_a_tile_per_sample(tmp_path, capsys, batch, columns, tile, size):
    options = ["--batch-size", str(batch), "--tile-size", str(tile)] + (["--columns", str(columns)] if columns else [])
    grid = run_cli(tmp_path, *options)
    assert (grid.shape[1], grid.shape[0]) == size == preview.grid_size(batch, columns, tile)
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'grid.png'} ({size[0]}x{size[1]} px" in printed
    assert f"batch of {batch} drawn with seed 0" in printed


def test_the_tiles_are_the_batch_the_collate_returned_and_the_seed_repeats_it(tmp_path):
    options = ["--batch-size", "4", "--columns", "2", "--tile-size", "32"]
    grid = run_cli(tmp_path, *options, "--seed", "3")
    images, _, _ = preview.mixed_batch(ProceduralShapes(image_size=32), fastmix.Mixup(num_classes=len(CLASSES), seed=3), 4, 3)
    tiles = images.permute(0, 2, 3, 1).numpy()
    step = 32 + preview.GAP
    for i in range(4):
        top, left = (i // 2) * step, (i % 2) * step
        np.testing.assert_array_equal(grid[top:top + 8, left:left + 32], tiles[i][:8])  # above the text band
    np.testing.assert_array_equal(run_cli(tmp_path, *options, "--seed", "3"), grid)
    assert not np.array_equal(run_cli(tmp_path, *options, "--seed", "4"), grid)


def test_the_mixing_options_reach_the_mixup(tmp_path, capsys):
    run_cli(tmp_path, "--batch-size", "4", "--tile-size", "32", "--mixup-alpha", "0", "--cutmix-alpha", "0.5",
            "--cutmix-minmax", "0.2", "0.8", "--prob", "0.9", "--switch-prob", "0.3", "--mode", "pair",
            "--label-smoothing", "0")
    assert ("fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, cutmix_minmax=(0.2, 0.8), prob=0.9, switch_prob=0.3, "
            "mode='pair', correct_lam=True, label_smoothing=0.0, num_classes=36, multi_label=False, seed=0") in capsys.readouterr().out


def test_unmixed_tiles_carry_one_label(tmp_path, capsys, monkeypatch):
    drawn = {}
    render = preview.render_grid

    def recording_render(images, captions, *args):
        drawn["captions"] = captions
        return render(images, captions, *args)

    monkeypatch.setattr(preview, "render_grid", recording_render)
    run_cli(tmp_path, "--batch-size", "4", "--tile-size", "32", "--prob", "0")
    assert "4 samples: 4 unmixed" in capsys.readouterr().out
    on = f"{1 - 0.1 + 0.1 / len(CLASSES):.2f}"
    assert [len(lines) for lines in drawn["captions"]] == [1, 1, 1, 1]
    assert all(lines[0].startswith(on + " ") and lines[0][5:] in CLASSES for lines in drawn["captions"])


def write_image(path, size, colour):
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path)


def test_images_from_an_imagefolder_layout(tmp_path, capsys):
    root = tmp_path / "photos"
    for name, colour in (("dog", (20, 60, 200)), ("cat", (200, 90, 20))):
        (root / name).mkdir(parents=True)
        write_image(root / name / "1.png", (40, 30), colour)
        write_image(root / name / "2.jpg", (25, 50), colour)
    (root / "cat" / "notes.txt").write_text("not an image")
    dataset = ImageFolderImages(str(root), image_size=16)
    assert dataset.classes == ["cat", "dog"] and dataset.layout == "ImageFolder" and len(dataset) == 4
    image, label = dataset[3]
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and label == 1
    assert np.abs(image.astype(int) - (20, 60, 200)).max() <= 3  # resized and cropped, colour kept

    grid = run_cli(tmp_path, "--images", str(root), "--batch-size", "4", "--columns", "2", "--tile-size", "32")
    assert grid.shape == (2 * 32 + preview.GAP, 2 * 32 + preview.GAP, 3)
    assert "4 images, 2 classes, ImageFolder layout" in capsys.readouterr().out


def test_a_flat_folder_makes_each_image_its_own_class(tmp_path, capsys):
    root = tmp_path / "holiday"
    root.mkdir()
    for name in ("beach", "forest", "city"):
        write_image(root / f"{name}.png", (30, 30), (100, 100, 100))
    Image.fromarray(np.zeros((30, 30), dtype=np.uint8), "L").save(root / "night.jpg")  # greyscale -> RGB
    dataset = ImageFolderImages(str(root), image_size=16)
    assert dataset.classes == ["beach", "city", "forest", "night"] and dataset.layout == "flat"
    assert dataset[3][0].shape == (16, 16, 3)
    run_cli(tmp_path, "--images", str(root), "--batch-size", "8", "--tile-size", "32")
    printed = capsys.readouterr().out
    assert "4 images, 4 classes, flat layout), batch of 4" in printed
    assert "note: --batch-size 8 but the folder has 4 images" in printed


def missing_folder(folder):
    return folder / "missing"


def a_file(folder):
    (folder / "a.png").write_text("")
    return folder / "a.png"


def no_images(folder):
    (folder / "notes.txt").write_text("")
    (folder / "empty").mkdir()
    return folder


def unreadable_image(folder):
    (folder / "broken.png").write_text("not a png")
    return folder


@pytest.mark.parametrize("make,expected", [
    (missing_folder, r"--images: expected a folder of images, got '.*missing', which does not exist"),
    (a_file, r"--images: expected a folder of images, got '.*a.png', which is a file"),
    (no_images, r"--images: expected image files \(\.jpg, .*\) in '.*' or in class subfolders of it \(torchvision's "
                r"ImageFolder layout\), found 1 file \(notes\.txt\) and 1 subfolder \(empty\) with no images"),
    (unreadable_image, r"--images: .*broken\.png: not a readable image"),
], ids=["missing", "a file", "no images", "unreadable image"])
def test_a_bad_images_folder_is_refused_with_what_was_found(tmp_path, capsys, make, expected):
    folder = tmp_path / "in"
    folder.mkdir()
    with pytest.raises(SystemExit) as exit_:
        preview.main(["--images", str(make(folder)), "--out", str(tmp_path / "grid.png")])
    assert exit_.value.code == 2
    assert re.search(expected, capsys.readouterr().err)
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("options,message", [
    (["--prob", "2"], "--prob: expected a float in [0, 1], got 2.0"),
    (["--mixup-alpha", "0"], "--mixup-alpha, --cutmix-alpha: expected at least one > 0"),
    (["--tile-size", "8"], "argument --tile-size: expected an integer >= 32, got 8"),
    (["--out", "grid.gif2"], "--out: expected an image file name such as grid.png, got 'grid.gif2'"),
])
def test_bad_options_are_named(capsys, options, message):
    with pytest.raises(SystemExit) as exit_:
        preview.main(options)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_without_pillow_the_command_says_what_to_install(tmp_path):
    out = tmp_path / "grid.png"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["PIL"] = None  # as if Pillow were not installed
        from fastmix.__main__ import main
        sys.exit(main(["preview", "--out", {str(out)!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'python -m fastmix preview: Pillow is not installed; install it with: pip install pillow  '
        '(or: pip install "fastmix[preview]")'
    ]
    assert not out.exists()


def test_the_command_is_listed_and_dispatched(tmp_path):
    assert "preview" in USAGE
    assert fastmix_main(["preview", "--out", str(tmp_path / "g.png"), "--batch-size", "2", "--tile-size", "32"]) == 0
    assert (tmp_path / "g.png").exists()


def test_masks_are_drawn_beside_their_images_with_the_same_box(tmp_path, capsys):
    run_cli(tmp_path, "--masks", "--batch-size", "4", "--tile-size", "32", "--mixup-alpha", "0", "--cutmix-alpha", "1",
            "--seed", "1")
    printed = capsys.readouterr().out
    assert "each tile followed by its mask" in printed and "37 classes" in printed and "masks=True" in printed
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size[0] > grid.size[1], "image and mask tiles side by side: 4 columns, 2 rows"


def test_the_shapes_are_their_own_masks():
    dataset = ProceduralShapes(image_size=SIZE, masks=True)
    sample = dataset[5]
    image, mask, label = sample["image"], sample["mask"], sample["label"]
    assert dataset.classes[label] == CLASSES[5] and dataset.classes[0] == "background"
    assert set(np.unique(mask)) == {0, label}
    colour = np.asarray(COLOURS[CLASSES[5].split(" ")[0]])
    inside = np.abs(image[mask == label].astype(int) - colour).max(axis=1)
    assert np.median(inside) <= 30, "the mask covers the shape's pixels"
    assert np.array_equal(image, ProceduralShapes(image_size=SIZE)[5][0]), "the same image as without masks"


def test_masks_need_the_procedural_images(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli(tmp_path, "--masks", "--images", str(tmp_path))
    assert "--masks: only for the procedural images" in capsys.readouterr().err


@pytest.mark.parametrize("options, said", [
    (["--method", "fmix"], "fmix on 4"),
    (["--method", "classmix", "--masks"], "classmix on 4"),
    (["--method", "fmix", "--method", "mixup", "--mode", "elem", "--fmix-alpha", "0.5"], "fmix_alpha=0.5"),
    (["--fmix-alpha", "1", "--mixup-alpha", "0", "--fmix-decay-power", "5"], "fmix_decay_power=5.0"),
    (["--method", "resizemix"], "resizemix on 4"),
    (["--method", "resizemix", "--masks", "--resizemix-interpolation", "nearest", "--resizemix-lam-min", "0.5"],
     "resizemix_lam_min=0.5, resizemix_lam_max=0.8, resizemix_interpolation='nearest'"),
])
def test_the_preview_draws_each_method(tmp_path, capsys, options, said):
    run_cli(tmp_path, "--batch-size", "4", "--tile-size", "32", *options)
    printed = capsys.readouterr().out
    assert said in printed
    if options == ["--method", "fmix"]:
        assert "mixup_alpha=0.0" in printed and "fmix_alpha=1.0" in printed, "--method: only the named methods"


def test_the_preview_names_a_bad_resizemix_range_by_its_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        preview.main(["--out", str(tmp_path / "g.png"), "--method", "resizemix", "--resizemix-lam-max", "0.05"])
    assert "--resizemix-lam-min, --resizemix-lam-max: expected 0 <= resizemix_lam_min" in capsys.readouterr().err


def test_the_preview_refuses_classmix_without_masks(tmp_path, capsys):
    with pytest.raises(SystemExit):
        preview.main(["--out", str(tmp_path / "g.png"), "--method", "classmix"])
    assert "--classmix: ClassMix takes the pixels of the partner's classes: it needs --masks" in capsys.readouterr().err
