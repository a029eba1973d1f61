"""Tests of jmlkit.data: determinism, split disjointness, soft-label invariants, folder loaders, the augmentations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from jmlkit.data import (
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    BrainTissueSlices,
    DigitScenes,
    SegmentationFolder,
    digit_pool,
    get_dataset,
    make_loader,
)
from jmlkit.data import transforms as T
from jmlkit.data.digits import _load_digits
from jmlkit.data.folders import save_voc_label, voc_colormap

SPLITS = ("train", "val", "test", "unlabeled")
SMALL = dict(num_scenes=24, size=32, digit_size=(10, 16))


# --------------------------------------------------------------------------- DigitScenes
def test_digits_same_seed_same_tensors_different_seed_differs():
    a, b = DigitScenes("train", seed=3, **SMALL).tensors(), DigitScenes("train", seed=3, **SMALL).tensors()
    for key in ("image", "label", "soft"):
        assert torch.equal(a[key], b[key]), key
    c = DigitScenes("train", seed=4, **SMALL).tensors()
    assert not torch.equal(a["label"], c["label"])
    assert not torch.equal(a["image"], c["image"])


def test_digit_pools_partition_all_digits_stratified_and_fixed():
    pools = {s: digit_pool(s) for s in SPLITS}
    all_ids = torch.cat(list(pools.values()))
    assert len(all_ids) == 1797 and len(set(all_ids.tolist())) == 1797
    _, target = _load_digits()
    for s, ids in pools.items():
        assert set(target[ids].tolist()) == set(range(10)), s  # every digit class in every split
    assert torch.equal(digit_pool("train"), pools["train"])


@pytest.mark.parametrize("seed", [0, 1])
def test_digit_splits_never_share_a_source_digit(seed):
    used = {}
    for s in SPLITS:
        ds = DigitScenes(s, seed=seed, **SMALL)
        ids = ds.source_ids[ds.source_ids >= 0]
        assert set(ids.tolist()) <= set(digit_pool(s).tolist())
        used[s] = set(ids.tolist())
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert used[a].isdisjoint(used[b]), (a, b)


@pytest.mark.parametrize("placement", ["grid", "free"])
def test_digit_soft_is_a_distribution_and_label_is_its_argmax(placement):
    ds = DigitScenes("val", placement=placement, digits_per_scene=(1, 4), **SMALL)
    t = ds.tensors()
    soft, label = t["soft"], t["label"]
    assert soft.shape == (24, 11, 32, 32) and soft.dtype == torch.float32
    assert label.dtype == torch.int64 and t["image"].shape == (24, 3, 32, 32)
    assert soft.min() >= 0 and soft.max() <= 1
    torch.testing.assert_close(soft.sum(1), torch.ones(24, 32, 32), atol=1e-5, rtol=0)
    assert torch.equal(soft.argmax(1), label)
    # the labels only hold background and the classes of the digits placed in the scene
    for i in range(len(ds)):
        assert set(label[i].unique().tolist()) <= {0} | set(ds.digit_classes[i].tolist())
    item = ds[5]
    assert set(item) == {"image", "label", "soft", "index"} and item["index"] == 5
    assert torch.equal(item["soft"], soft[5]) and torch.equal(item["label"], label[5])


def test_digit_soft_label_is_the_real_coverage_of_the_source_digit():
    ds = DigitScenes("test", num_scenes=16, size=40, digits_per_scene=1, digit_size=24, noise=0.0, blur=0.0)
    digits, target = _load_digits()
    soft = ds.tensors()["soft"]
    for i in range(len(ds)):
        src = int(ds.source_ids[i, 0])
        assert int(ds.digit_classes[i, 0]) == int(target[src]) + 1
        ink = 1 - soft[i, 0]
        # the upscaled coverage keeps the ink mass of the 8x8 grey levels: sum(v/16) * (24/8)^2
        expected = digits[src].sum() * (24 / 8) ** 2
        assert abs(ink.sum() - expected) / expected < 0.05
        torch.testing.assert_close(ink, soft[i, int(target[src]) + 1])  # one digit: all ink belongs to its class


def test_thick_digits_are_the_dilated_coverage_and_a_paper_like_regime():
    from jmlkit.profiles import regime_settings
    from jmlkit.targets import smoothing_shares

    kw = dict(num_scenes=64, size=32, digits_per_scene=1, digit_size=(28, 32), noise=0.0, blur=0.0)
    thin, thick = DigitScenes("train", **kw), DigitScenes("train", stroke=1, **kw)
    assert thick.stroke == 1 and "stroke=1" in repr(thick)
    a, b = thin.tensors(), thick.tensors()
    torch.testing.assert_close(b["soft"].sum(1), torch.ones(64, 32, 32))  # still a distribution per pixel
    assert bool((b["soft"].argmax(1) == b["label"]).all())
    ink_thin, ink_thick = 1 - a["soft"][:, 0], 1 - b["soft"][:, 0]
    core = ink_thin >= 0.5  # same digits, same places: where the thin digit is, the thick one is too
    assert float((ink_thick[core] >= 0.5).float().mean()) > 0.99
    assert ink_thick.sum() > 1.3 * ink_thin.sum()
    # the large regime of the full profile is paper-like: at most a quarter of the object pixels in the 3x3 band
    large = DigitScenes("train", num_scenes=256, **regime_settings("full")["large"]["dataset_kwargs"])
    assert smoothing_shares(large.tensors()["label"], 11).object_share_smoothed <= 0.25
    small = DigitScenes("train", num_scenes=256, size=16, digit_size=(12, 16), digits_per_scene=1)
    assert smoothing_shares(small.tensors()["label"], 11).object_share_smoothed > 0.6
    with pytest.raises(ValueError, match="stroke"):
        DigitScenes("train", stroke=4, **kw)


def test_digit_image_shows_the_digits():
    ds = DigitScenes("train", in_channels=1, noise=0.0, blur=0.0, **SMALL)
    t = ds.tensors()
    x = t["image"][:, 0] * 0.5 + 0.5  # back to [0, 1]
    assert t["image"].shape[1] == ds.in_channels == 1
    assert x[t["soft"][:, 0] == 1].max() <= 0.35 + 1e-5  # pure background is dark
    assert x[t["soft"][:, 0] == 0].min() >= 0.55 - 1e-5  # full ink is bright


def test_digit_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        DigitScenes("training")
    with pytest.raises(ValueError, match="num_scenes"):
        DigitScenes("train", num_scenes=0)
    with pytest.raises(TypeError, match="num_scenes"):
        DigitScenes("train", num_scenes=2.5)
    with pytest.raises(ValueError, match="digits_per_scene"):
        DigitScenes("train", size=32, digit_size=20, digits_per_scene=(1, 3))  # grid of 1 cell
    with pytest.raises(ValueError, match="digit_size"):
        DigitScenes("train", size=32, digit_size=(10, 40))
    with pytest.raises(ValueError, match="in_channels"):
        DigitScenes("train", in_channels=2)
    with pytest.raises(IndexError):
        DigitScenes("val", **SMALL)[24]


def _flip(item):
    return {**item, "image": item["image"].flip(-1), "label": item["label"].flip(-1)}


def test_transform_is_applied_to_items():
    ds = DigitScenes("val", transform=_flip, **SMALL)
    raw = DigitScenes("val", **SMALL)
    assert torch.equal(ds[2]["label"], raw[2]["label"].flip(-1))
    assert torch.equal(ds[-1]["image"], raw[23]["image"].flip(-1))
    small = DigitScenes("val", transform=T.Resize(16), **SMALL)[0]
    assert small["image"].shape[-2:] == small["label"].shape == small["soft"].shape[-2:] == (16, 16)


# --------------------------------------------------------------------------- loader and registry
def test_make_loader_is_seeded():
    ds = DigitScenes("val", **SMALL)
    order = lambda seed: torch.cat([b["index"] for b in make_loader(ds, 5, shuffle=True, seed=seed)])  # noqa: E731
    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))
    batch = next(iter(make_loader(ds, 4)))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["soft"].shape == (4, 11, 32, 32)


def test_get_dataset():
    assert isinstance(get_dataset("digits", "test", **SMALL), DigitScenes)
    assert isinstance(get_dataset("brain", "val", size=32), BrainTissueSlices)
    with pytest.raises(ValueError, match="name"):
        get_dataset("mnist")
    with pytest.raises(TypeError, match="root"):
        get_dataset("voc", "train")


# --------------------------------------------------------------------------- BrainTissueSlices
def test_brain_slices_shapes_sums_and_disjoint_splits():
    slices = {}
    for s in SPLITS:
        ds = BrainTissueSlices(s, size=32)
        t = ds.tensors()
        n = len(ds)
        assert n >= 5, s
        assert t["image"].shape == (n, 1, 32, 32) and t["soft"].shape == (n, 4, 32, 32)
        assert t["soft"].min() >= 0 and t["soft"].max() <= 1 + 1e-6
        torch.testing.assert_close(t["soft"].sum(1), torch.ones(n, 32, 32), atol=1e-5, rtol=0)
        assert torch.equal(t["soft"].argmax(1), t["label"])
        slices[s] = ds.slice_ids
    train = BrainTissueSlices("train", size=32).tensors()
    assert set(train["label"].unique().tolist()) == {0, 1, 2, 3}
    all_ids = torch.cat(list(slices.values()))
    assert len(set(all_ids.tolist())) == len(all_ids)  # no slice in two splits
    # blocks interleave: every split has slices in the lower and the upper half of the brain
    mid = all_ids.float().median()
    for s, ids in slices.items():
        assert (ids < mid).any() and (ids > mid).any(), s
    # gap: slices of different splits are at least 2 apart
    owner = {int(z): s for s, ids in slices.items() for z in ids}
    for z, s in owner.items():
        assert owner.get(z + 1, s) == s


def test_brain_options():
    ds = BrainTissueSlices("val", size=32, in_channels=3, noise=0.1, seed=1)
    assert ds[0]["image"].shape == (3, 32, 32)
    again = BrainTissueSlices("val", size=32, in_channels=3, noise=0.1, seed=1)
    assert torch.equal(ds[0]["image"], again[0]["image"])
    with pytest.raises(ValueError, match="gap"):
        BrainTissueSlices("val", block_size=4, gap=4)


# --------------------------------------------------------------------------- SegmentationFolder
def _make_voc(root, ids_by_split, *, rgb_label_for=None, size=(10, 12)):
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = {}
    for split, ids in ids_by_split.items():
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for i in ids:
            h, w = size
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
            label = rng.integers(0, 21, (h, w)).astype(np.uint8)
            label[0, :] = 255  # VOC object borders are 255 = ignore
            if i == rgb_label_for:
                Image.fromarray(voc_colormap()[label]).save(root / "SegmentationClass" / f"{i}.png")
            else:
                save_voc_label(root / "SegmentationClass" / f"{i}.png", label)
            labels[i] = label
    return labels


def test_voc_folder_reads_palette_pngs_and_keeps_ignore(tmp_path):
    labels = _make_voc(tmp_path, {"train": ["2007_000001", "2007_000002"], "val": ["2007_000003"]},
                       rgb_label_for="2007_000002")
    ds = SegmentationFolder(tmp_path, layout="voc", split="train")
    assert len(ds) == 2 and ds.num_classes == 21 and len(ds.class_names) == 21
    for k, i in enumerate(["2007_000001", "2007_000002"]):
        item = ds[k]
        assert item["image"].shape == (3, 10, 12) and item["image"].dtype == torch.float32
        assert item["label"].dtype == torch.int64 and "soft" not in item
        assert torch.equal(item["label"], torch.from_numpy(labels[i].astype(np.int64)))
        assert (item["label"][0] == 255).all()
    assert len(SegmentationFolder(tmp_path, layout="voc", split="val")) == 1
    # VOCdevkit/VOC2012 parent folder is found too; size resizes with nearest labels
    nested = tmp_path / "parent" / "VOCdevkit" / "VOC2012"
    _make_voc(nested, {"train": ["a"]})
    item = SegmentationFolder(tmp_path / "parent", layout="voc", size=(5, 6))[0]
    assert item["image"].shape == (3, 5, 6) and set(item["label"].unique().tolist()) <= set(range(21)) | {255}


def test_voc_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SegmentationFolder(tmp_path / "nope", layout="voc")
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        SegmentationFolder(tmp_path, layout="voc")
    _make_voc(tmp_path, {"train": ["x"]})
    with pytest.raises(FileNotFoundError, match="val.txt"):
        SegmentationFolder(tmp_path, layout="voc", split="val")
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("missing\n")
    with pytest.raises(FileNotFoundError, match="missing"):
        SegmentationFolder(tmp_path, layout="voc", split="val")
    save_voc_label(tmp_path / "SegmentationClass/x.png", np.zeros((3, 3), np.uint8))  # wrong size
    with pytest.raises(ValueError, match="size"):
        SegmentationFolder(tmp_path, layout="voc")[0]
    with pytest.raises(ValueError, match="layout"):
        SegmentationFolder(tmp_path, layout="coco")


def test_cityscapes_folder_maps_label_ids_to_train_ids(tmp_path):
    ids = np.array([[0, 7, 8, 26], [33, 9, 24, 1]], dtype=np.uint8)
    expected = np.array([[255, 0, 1, 13], [18, 255, 11, 255]])
    for city in ("aachen", "bochum"):
        for split in ("train", "val"):
            (tmp_path / "leftImg8bit" / split / city).mkdir(parents=True)
            (tmp_path / "gtFine" / split / city).mkdir(parents=True)
            stem = f"{city}_000000_000019"
            Image.new("RGB", (4, 2), (10, 20, 30)).save(tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids).save(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
    ds = SegmentationFolder(tmp_path, layout="cityscapes", split="train")
    assert len(ds) == 2 and ds.num_classes == 19 and len(ds.class_names) == 19
    item = ds[1]
    assert item["image"].shape == (3, 2, 4)
    assert item["label"].tolist() == expected.tolist()
    assert sorted(CITYSCAPES_LABEL_TO_TRAIN_ID.values()) == list(range(19))
    (tmp_path / "gtFine" / "val" / "bochum" / "bochum_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(FileNotFoundError, match="gtFine_labelIds"):
        SegmentationFolder(tmp_path, layout="cityscapes", split="val")
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        SegmentationFolder(tmp_path, layout="cityscapes", split="test")


# --------------------------------------------------------------------------- augmentations
def _reference_weak(images, gen):
    """The engine's weak view as it was before it moved to jmlkit.data.transforms (issue 20), verbatim."""
    flip = torch.rand(images.shape[0], generator=gen) < 0.5
    out = images.clone()
    out[flip.to(images.device)] = out[flip.to(images.device)].flip(-1)
    return out


def _reference_strong(images, gen):
    """The engine's strong view as it was before it moved to jmlkit.data.transforms (issue 20), verbatim."""
    b, _, h, w = images.shape
    dev = images.device
    shape = (b, 1, 1, 1)
    brightness = ((torch.rand(shape, generator=gen) - 0.5) * 0.6).to(dev)
    contrast = (0.6 + 0.8 * torch.rand(shape, generator=gen)).to(dev)
    noise = (0.1 * torch.randn(images.shape, generator=gen)).to(dev)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * contrast + mean + brightness + noise
    side = max(1, min(h, w) // 4)
    ys = torch.randint(0, max(h - side, 0) + 1, (b,), generator=gen).tolist()
    xs = torch.randint(0, max(w - side, 0) + 1, (b,), generator=gen).tolist()
    for i, (y, x) in enumerate(zip(ys, xs)):
        out[i, :, y : y + side, x : x + side] = 0.0
    return out


@pytest.mark.parametrize("shape, seed", [((5, 3, 16, 16), 0), ((3, 1, 6, 8), 17), ((1, 2, 3, 2), 5), ((16, 3, 16, 16), 3)])
def test_views_are_bit_identical_to_the_engines_former_views(shape, seed):
    """The semi-supervised results (results/quick, notebook 04's figures) depend on every draw: same generator
    state in, the same tensors and the same generator state out."""
    images = torch.randn(shape, generator=torch.Generator().manual_seed(100 + seed))
    before = images.clone()
    g, ref = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    weak, weak_ref = T.weak_view(images, g), _reference_weak(images, ref)
    strong, strong_ref = T.strong_view(weak, g), _reference_strong(weak_ref, ref)
    assert torch.equal(weak, weak_ref) and torch.equal(strong, strong_ref)
    assert torch.equal(g.get_state(), ref.get_state())
    assert torch.equal(images, before)  # the input is never modified


def test_weak_view_flips_whole_images_and_strong_view_keeps_the_geometry():
    images = torch.rand(64, 1, 8, 12, generator=torch.Generator().manual_seed(0)) + 1.0  # no pixel is 0
    weak = T.weak_view(images, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(w, x.flip(-1)) for w, x in zip(weak, images)])
    kept = torch.tensor([torch.equal(w, x) for w, x in zip(weak, images)])
    assert bool((flipped ^ kept).all()) and 16 < int(flipped.sum()) < 48  # every image one or the other, about half
    strong = T.strong_view(images, torch.Generator().manual_seed(1))
    zero = strong == 0
    assert zero.shape == images.shape and bool((zero.flatten(1).sum(1) == 2 * 2).all())  # a 2x2 square (8 // 4)
    # outside the square: an affine map of each image (contrast, brightness) plus noise of std 0.1
    for x, s, z in zip(images, strong, zero):
        a = torch.stack([x[~z], torch.ones_like(x[~z])], 1)
        fit = torch.linalg.lstsq(a, s[~z][:, None]).solution
        noise = s[~z] - (a @ fit)[:, 0]
        assert 0.05 < float(noise.std()) < 0.15


@pytest.mark.parametrize("call, error, match", [
    (lambda: T.weak_view(torch.zeros(3, 4, 4)), ValueError, r"Expected `images` to be a float tensor \(B, C, H, W\), "
                                                             r"but got a torch.float32 tensor of shape \(3, 4, 4\)\."),
    (lambda: T.strong_view(torch.zeros(1, 1, 4, 4, dtype=torch.long)), ValueError, r"`images` to be a float tensor"),
    (lambda: T.strong_view([[0.0]]), ValueError, r"`images` to be a float tensor \(B, C, H, W\), but got list\."),
    (lambda: T.weak_view(torch.zeros(1, 1, 4, 4), 3), TypeError,
     r"Expected `generator` to be a torch.Generator or None, but got int\."),
])
def test_view_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_resize_moves_image_label_and_soft_together():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (4, 4), generator=g).repeat_interleave(8, 0).repeat_interleave(8, 1)
    item = {"image": label[None].float(), "label": label, "soft": F.one_hot(label, 5).permute(2, 0, 1).float(),
            "index": 7}
    out = T.Resize(8)(item)
    assert out["index"] == 7 and out["label"].dtype == torch.long
    assert torch.equal(out["label"], label[::4, ::4]) and torch.equal(out["image"][0], label[::4, ::4].float())
    torch.testing.assert_close(out["soft"].sum(0), torch.ones(8, 8))
    assert torch.equal(item["label"], label)  # the input is untouched
    assert T.Resize((6, 10))(item)["label"].shape == (6, 10)


def test_transform_bad_arguments():
    with pytest.raises(ValueError, match="image"):
        T.Resize(4)({"image": torch.zeros(4, 4)})
    with pytest.raises(TypeError, match=r"Expected `size` to be an int, but got 8.0 \(float\)\."):
        T.Resize(8.0)
    with pytest.raises(ValueError, match=r"`size` to be an int or a pair \(height, width\)"):
        T.Resize((8, 8, 8))
    with pytest.raises(ValueError, match=r"Expected `size` to be an int >= 1, but got 0\."):
        T.Resize((8, 0))


def test_size_and_range_options():
    assert T.check_size("size", 8) == (8, 8) and T.check_size("size", [4, np.int64(6)]) == (4, 6)
    assert T.check_size("size", torch.tensor(5)) == (5, 5)
    assert T.check_range("scale", 0.5, low=0.0) == (0.5, 0.5)
    assert T.check_range("scale", (np.float32(0.5), torch.tensor(2.0)), low=0.0) == (0.5, 2.0)
    assert T.check_range("n", (1, np.int64(3)), low=1, integer=True) == (1, 3)
    with pytest.raises(TypeError, match=r"`n` to be an int, but got 1.5"):
        T.check_range("n", (1.5, 3), low=1, integer=True)
    with pytest.raises(ValueError, match=r"`n` to be an int >= 1, but got 0"):
        T.check_range("n", 0, low=1, integer=True)
    with pytest.raises(ValueError, match=r"`scale` to be a number or a pair"):
        T.check_range("scale", (0.1, 0.2, 0.3), low=0.0)
    with pytest.raises(ValueError, match=r"Expected `scale` to be a finite number >= 0, but got inf\."):
        T.check_range("scale", float("inf"), low=0.0)


def test_dataset_bad_argument_types(tmp_path):
    with pytest.raises(TypeError, match=r"Expected `transform` to be callable or None, but got 3 \(int\)\."):
        DigitScenes("val", transform=3, **SMALL)
    with pytest.raises(TypeError, match=r"Expected `transform` to be callable or None"):
        BrainTissueSlices("val", size=32, transform="flip")
    with pytest.raises(TypeError, match=r"Expected `split` to be a str, but got 1 \(int\)\."):
        SegmentationFolder(tmp_path, split=1)
    with pytest.raises(ValueError, match=r"Expected `split` to be a non-empty str"):
        SegmentationFolder(tmp_path, split="")
    with pytest.raises(ValueError, match=r"Expected `in_channels` to be one of \(1, 3\), but got True\."):
        DigitScenes("val", in_channels=True, **SMALL)
    with pytest.raises(TypeError, match=r"Expected `noise` to be a real number, but got None"):
        BrainTissueSlices("val", size=32, noise=None)
    with pytest.raises(TypeError, match=r"Expected `batch_size` to be an int, but got 2.0 \(float\)\."):
        make_loader(DigitScenes("val", **SMALL), 2.0)
    with pytest.raises(ValueError, match=r"Expected `name` to be one of \('digits', 'brain', 'voc', 'cityscapes'\)"):
        get_dataset("mnist")
