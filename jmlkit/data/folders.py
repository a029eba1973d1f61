r"""Segmentation benchmarks already on disk: PASCAL VOC and Cityscapes folder layouts.

``layout="voc"`` (``root`` is ``VOC2012/`` or a folder holding ``VOCdevkit/VOC2012/``)::

    root/ImageSets/Segmentation/{split}.txt      one image id per line
    root/JPEGImages/{id}.jpg
    root/SegmentationClass/{id}.png              palette ("P") PNG: pixel value = class 0..20, 255 = ignore

(RGB label PNGs in the VOC colour map are also accepted and mapped back to indices; unknown
colours become 255.)

``layout="cityscapes"``::

    root/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png
    root/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png     labelIds 0..33, mapped to the 19 train ids

Items: ``{"image": float32 (3, H, W) normalised with the ImageNet mean / std, "label": int64
(H, W) with 255 = ignore, "index": int}`` (no ``soft``: these data sets have hard labels only).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from jmlkit._checks import check_callable, check_choice, check_str

from .transforms import check_size

__all__ = ["SegmentationFolder", "VOC_CLASSES", "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN_ID",
           "voc_colormap", "save_voc_label", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)

#: Official cityscapesScripts ``labels.py`` table: labelId -> trainId (ids not listed -> 255).
CITYSCAPES_LABEL_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
_CITYSCAPES_LUT = np.full(256, 255, dtype=np.uint8)
for _label_id, _train_id in CITYSCAPES_LABEL_TO_TRAIN_ID.items():
    _CITYSCAPES_LUT[_label_id] = _train_id


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC palette, (n, 3) uint8 (class 1 = (128, 0, 0), 255 = (224, 224, 192)).

    >>> voc_colormap()[[0, 1, 15, 255]].tolist()
    [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def save_voc_label(path: str | os.PathLike, label: np.ndarray | torch.Tensor) -> None:
    """Write class indices (H, W) in 0..255 as a VOC palette ("P") PNG, as in ``SegmentationClass``.

    >>> import tempfile
    >>> from PIL import Image
    >>> path = Path(tempfile.mkdtemp()) / "x.png"
    >>> save_voc_label(path, np.array([[0, 1], [15, 255]]))
    >>> with Image.open(path) as im: im.mode, np.array(im).tolist()
    ('P', [[0, 1], [15, 255]])
    """
    from PIL import Image

    label = np.asarray(label.cpu() if isinstance(label, torch.Tensor) else label)
    if label.ndim != 2 or label.size == 0 or label.min() < 0 or label.max() > 255:
        raise ValueError(f"Expected `label` to be a non-empty (H, W) array of ints in 0..255, but got shape "
                         f"{label.shape}.")
    image = Image.fromarray(label.astype(np.uint8))
    image.putpalette(voc_colormap().flatten().tolist())
    image.save(path)


def _rgb_to_voc_index(rgb: np.ndarray) -> np.ndarray:
    cmap = voc_colormap().astype(np.int64)
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lut = {int((c[0] << 16) | (c[1] << 8) | c[2]): i for i, c in enumerate(cmap) if i <= 20 or i == 255}
    out = np.full(code.shape, 255, dtype=np.uint8)
    for value, index in lut.items():
        out[code == value] = index
    return out


class SegmentationFolder(Dataset):
    """PASCAL VOC or Cityscapes data set from an existing folder (see the module docstring).

    Args:
        root: the data set folder.
        layout: ``"voc"`` (21 classes) or ``"cityscapes"`` (19 train ids).
        split: VOC: the name of a list in ``ImageSets/Segmentation`` (``"train"``, ``"val"``,
            ``"trainval"``); Cityscapes: a folder of ``leftImg8bit`` (``"train"``, ``"val"``, ``"test"``).
        transform: optional callable ``item -> item`` (see :mod:`jmlkit.data.transforms`).
        size: optional ``s`` or ``(h, w)``: resize every item first (bilinear image, nearest label).

    Raises:
        FileNotFoundError: the folders or files the layout needs are missing (the message names them).
        ValueError: a label file is malformed (wrong mode, size mismatch with its image).

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        ...     (root / sub).mkdir(parents=True)
        >>> _ = (root / "ImageSets/Segmentation/train.txt").write_text("a\\n")
        >>> Image.new("RGB", (6, 4)).save(root / "JPEGImages/a.jpg")
        >>> save_voc_label(root / "SegmentationClass/a.png", np.full((4, 6), 255, np.uint8))
        >>> item = SegmentationFolder(root, layout="voc")[0]
        >>> item["image"].shape, item["label"].unique().tolist()
        (torch.Size([3, 4, 6]), [255])
    """

    ignore_index: int = 255
    in_channels: int = 3
    has_soft: bool = False

    def __init__(self, root: str | os.PathLike, *, layout: str = "voc", split: str = "train",
                 transform: Callable | None = None, size: int | tuple[int, int] | None = None) -> None:
        self.layout = check_choice("layout", layout, ("voc", "cityscapes"))
        self.split = check_str("split", split)
        self.size = None if size is None else check_size("size", size)
        self.transform = check_callable("transform", transform, optional=True)
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"Data set folder `root` = {str(root)!r} does not exist or is not a folder.")
        if layout == "voc":
            self.root = root / "VOCdevkit" / "VOC2012" if (root / "VOCdevkit" / "VOC2012").is_dir() else root
            self.num_classes, self.class_names = 21, VOC_CLASSES
            self.samples = self._voc_samples()
        else:
            self.root = root
            self.num_classes, self.class_names = 19, CITYSCAPES_CLASSES
            self.samples = self._cityscapes_samples()

    def _voc_samples(self) -> list[tuple[Path, Path]]:
        root = self.root
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            if not (root / sub).is_dir():
                raise FileNotFoundError(
                    f"Expected a PASCAL VOC folder with JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/ "
                    f"at {str(root)!r}, but {str(root / sub)!r} is missing.")
        listing = root / "ImageSets" / "Segmentation" / f"{self.split}.txt"
        if not listing.is_file():
            have = sorted(p.stem for p in (root / "ImageSets" / "Segmentation").glob("*.txt"))
            raise FileNotFoundError(f"Expected the split list {str(listing)!r} for split={self.split!r}; "
                                    f"available splits: {have}.")
        ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        samples, missing = [], []
        for i in ids:
            image, label = root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png"
            missing += [str(p) for p in (image, label) if not p.is_file()]
            samples.append((image, label))
        if missing:
            raise FileNotFoundError(f"{len(missing)} files listed by {str(listing)!r} are missing, e.g. {missing[:3]}.")
        if not samples:
            raise ValueError(f"The split list {str(listing)!r} is empty.")
        return samples

    def _cityscapes_samples(self) -> list[tuple[Path, Path]]:
        images_dir, labels_dir = self.root / "leftImg8bit" / self.split, self.root / "gtFine" / self.split
        for d in (images_dir, labels_dir):
            if not d.is_dir():
                raise FileNotFoundError(
                    f"Expected a Cityscapes folder with leftImg8bit/{self.split}/<city>/ and gtFine/{self.split}/<city>/ "
                    f"at {str(self.root)!r}, but {str(d)!r} is missing.")
        samples, missing = [], []
        for image in sorted(images_dir.glob("*/*_leftImg8bit.png")):
            stem = image.name[: -len("_leftImg8bit.png")]
            label = labels_dir / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not label.is_file():
                missing.append(str(label))
            samples.append((image, label))
        if missing:
            raise FileNotFoundError(f"{len(missing)} label files are missing, e.g. {missing[:3]}.")
        if not samples:
            raise FileNotFoundError(f"No images matching <city>/*_leftImg8bit.png under {str(images_dir)!r}.")
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def _read_label(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            if self.layout == "voc":
                if im.mode in ("P", "L"):
                    return np.array(im, dtype=np.uint8)
                if im.mode in ("RGB", "RGBA"):
                    return _rgb_to_voc_index(np.array(im.convert("RGB")))
                raise ValueError(f"Expected a palette ('P') or grey ('L') label PNG at {str(path)!r}, "
                                 f"but it has mode {im.mode!r}.")
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"Expected a single-channel labelIds PNG at {str(path)!r}, but it has mode {im.mode!r}.")
            ids = np.array(im).astype(np.int64)
        if ids.min() < 0 or ids.max() > 255:
            raise ValueError(f"Expected labelIds in 0..255 in {str(path)!r}, but got range {ids.min()}..{ids.max()}.")
        return _CITYSCAPES_LUT[ids]

    def __getitem__(self, index: int) -> dict:
        from PIL import Image

        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {n} images")
        index = int(index) % n
        image_path, label_path = self.samples[index]
        with Image.open(image_path) as im:
            image = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        label = self._read_label(label_path)
        if label.shape != image.shape[:2]:
            raise ValueError(f"Label {str(label_path)!r} has size {label.shape} but its image {str(image_path)!r} "
                             f"has size {image.shape[:2]}.")
        mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
        item = {
            "image": torch.from_numpy(((image - mean) / std).transpose(2, 0, 1).copy()),
            "label": torch.from_numpy(label.astype(np.int64)),
            "index": index,
        }
        if self.size is not None:
            from .transforms import Resize

            item = Resize(self.size)(item)
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"SegmentationFolder({str(self.root)!r}, layout={self.layout!r}, split={self.split!r}, n={len(self)})"
