"""Tests for jmlkit.targets: soft-label builders checked against brute-force numpy references."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st_

from jmlkit.targets import (
    SmoothingShares,
    SoftTarget,
    average_annotators,
    boundary_label_smoothing,
    distillation_targets,
    label_smoothing,
    one_hot,
    pseudo_labels,
    smoothing_shares,
)

IGNORE = 255


def random_labels(shape, num_classes, *, seed=0, ignore_index=None, p_ignore=0.1, blocky=True):
    """Random label map; ``blocky`` upsamples a coarse map so that there are interiors and edges."""
    g = torch.Generator().manual_seed(seed)
    if blocky:
        coarse = torch.randint(0, num_classes, (shape[0], *[max(1, s // 3) for s in shape[1:]]), generator=g)
        y = F.interpolate(coarse[:, None].float(), size=tuple(shape[1:]), mode="nearest")[:, 0].long()
    else:
        y = torch.randint(0, num_classes, tuple(shape), generator=g)
    if ignore_index is not None:
        y[torch.rand(tuple(shape), generator=g) < p_ignore] = ignore_index
    return y


def assert_simplex(st: SoftTarget, num_classes: int | None = None):
    soft, mask = st
    assert soft.is_floating_point() and mask.dtype == torch.bool
    assert soft.shape[0] == mask.shape[0] and soft.shape[2:] == mask.shape[1:]
    if num_classes is not None:
        assert soft.shape[1] == num_classes
    assert soft.min() >= 0 and soft.max() <= 1 + 1e-6
    sums = soft.sum(1)
    torch.testing.assert_close(sums[mask], torch.ones_like(sums[mask]))
    assert torch.all(soft.movedim(1, -1)[~mask] == 0), "ignored pixels must carry a zero vector"


# ------------------------------------------------------------------ brute-force references


def np_boundary_reference(y: np.ndarray, num_classes: int, eps: float, k, ignore, spread: str,
                          near_ignore: str) -> np.ndarray:
    """Pixel-by-pixel loop: classes in the window cut at the border, ignore not a class; with
    ``near_ignore="keep"`` a window holding an ignored pixel leaves the pixel one-hot."""
    spatial = y.shape[1:]
    ks = (k,) * len(spatial) if isinstance(k, int) else tuple(k)
    out = np.zeros((y.shape[0], num_classes, *spatial))
    for b in range(y.shape[0]):
        for idx in itertools.product(*(range(s) for s in spatial)):
            c = y[(b, *idx)]
            if ignore is not None and c == ignore:
                continue
            window = tuple(slice(max(0, i - kk // 2), i + kk // 2 + 1) for i, kk in zip(idx, ks))
            in_window = set(np.unique(y[(b, *window)]).tolist())
            present = in_window - {ignore}
            touches_ignore = ignore is not None and ignore in in_window
            vec = np.zeros(num_classes)
            vec[c] = 1.0
            if len(present) > 1 and not (near_ignore == "keep" and touches_ignore):
                if spread == "uniform":
                    u = np.full(num_classes, 1.0 / num_classes)
                else:
                    u = np.zeros(num_classes)
                    u[sorted(present)] = 1.0 / len(present)
                vec = (1 - eps) * vec + eps * u
            out[(b, slice(None), *idx)] = vec
    return out


def np_average_reference(masks: np.ndarray, num_classes: int, ignore) -> tuple[np.ndarray, np.ndarray]:
    A, B, *spatial = masks.shape
    soft = np.zeros((B, num_classes, *spatial))
    mask = np.zeros((B, *spatial), dtype=bool)
    for b in range(B):
        for idx in itertools.product(*(range(s) for s in spatial)):
            votes = [masks[(a, b, *idx)] for a in range(A) if masks[(a, b, *idx)] != ignore]
            if votes:
                mask[(b, *idx)] = True
                for v in votes:
                    soft[(b, v, *idx)] += 1.0 / len(votes)
    return soft, mask


# ------------------------------------------------------------------ one_hot


@pytest.mark.parametrize("ignore_index", [None, 255, -100])
def test_one_hot_matches_torch(ignore_index):
    y = random_labels((2, 7, 9), 5, ignore_index=ignore_index, blocky=False)
    soft, mask = one_hot(y, 5, ignore_index=ignore_index)
    valid = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
    ref = F.one_hot(torch.where(valid, y, 0), 5).movedim(-1, 1).float() * valid[:, None]
    torch.testing.assert_close(soft, ref)
    assert torch.equal(mask, valid)
    assert soft.dtype == torch.float32


def test_one_hot_dtype_int_kinds_and_3d():
    y = random_labels((1, 3, 4, 5), 3).to(torch.int32)
    soft, mask = one_hot(y, 3, dtype=torch.float64)
    assert soft.dtype == torch.float64 and soft.shape == (1, 3, 3, 4, 5)
    assert torch.equal(soft.argmax(1), y.long()) and mask.all()
    assert one_hot(y.to(torch.uint8), 3).soft.equal(one_hot(y, 3).soft)


def test_ignore_index_inside_class_range_is_ignored():
    y = torch.tensor([[0, 1, 2]])
    soft, mask = one_hot(y, 3, ignore_index=0)
    assert mask.tolist() == [[False, True, True]]
    assert soft[0, :, 0].sum() == 0


def test_soft_target_namedtuple_and_to():
    st = label_smoothing(torch.tensor([[0, 1]]), 2, 0.1)
    soft, mask = st
    assert st.soft is soft and st.mask is mask and st._fields == ("soft", "mask")
    moved = st.to(torch.float64)
    assert moved.soft.dtype == torch.float64 and moved.mask.dtype == torch.bool


# ------------------------------------------------------------------ label_smoothing


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
def test_label_smoothing_formula(eps):
    C = 6
    y = random_labels((3, 8, 8), C, ignore_index=IGNORE, seed=1)
    st = label_smoothing(y, C, eps, ignore_index=IGNORE)
    assert_simplex(st, C)
    oh = one_hot(y, C, ignore_index=IGNORE)
    torch.testing.assert_close(st.soft, ((1 - eps) * oh.soft + eps / C) * oh.mask[:, None])
    assert torch.equal(st.mask, oh.mask)
    if eps == 0.0:
        assert torch.equal(st.soft, oh.soft)
    if eps == 1.0:
        valid_vectors = st.soft.movedim(1, -1)[st.mask]
        torch.testing.assert_close(valid_vectors, torch.full_like(valid_vectors, 1 / C))


def test_label_smoothing_accepts_tensor_epsilon_and_keeps_device_dtype():
    y = torch.tensor([[0, 1]])
    st = label_smoothing(y, 2, torch.tensor(0.2), dtype=torch.float16)
    assert st.soft.dtype == torch.float16 and st.soft.device == y.device
    torch.testing.assert_close(st.soft[0, :, 0].float(), torch.tensor([0.9, 0.1]), atol=1e-3, rtol=0)


# ------------------------------------------------------------------ boundary_label_smoothing


@pytest.mark.parametrize("near_ignore", ["keep", "smooth"])
@pytest.mark.parametrize("spread", ["uniform", "neighbourhood"])
@pytest.mark.parametrize(
    "shape,k,ignore",
    [
        ((2, 11, 13), 3, None),
        ((2, 11, 13), 5, IGNORE),
        ((1, 9, 10), 3, -100),
        ((2, 5, 6, 7), 3, None),
        ((1, 5, 6, 7), 3, IGNORE),
        ((1, 4, 6, 5), (3, 5, 3), IGNORE),
        ((2, 17), 5, IGNORE),
    ],
)
def test_boundary_label_smoothing_matches_brute_force(shape, k, ignore, spread, near_ignore):
    C, eps = 4, 0.3
    y = random_labels(shape, C, seed=sum(shape), ignore_index=ignore, p_ignore=0.15)
    st = boundary_label_smoothing(y, C, eps, kernel_size=k, ignore_index=ignore, spread=spread,
                                  near_ignore=near_ignore, dtype=torch.float64)
    assert_simplex(st, C)
    ref = np_boundary_reference(y.numpy(), C, eps, k, ignore, spread, near_ignore)
    np.testing.assert_allclose(st.soft.numpy(), ref, atol=1e-12, rtol=0)
    valid = torch.ones_like(y, dtype=torch.bool) if ignore is None else y != ignore
    assert torch.equal(st.mask, valid)


@settings(max_examples=40, deadline=None)
@given(
    data=st_.data(),
    n_spatial=st_.integers(1, 3),
    num_classes=st_.integers(1, 4),
    k=st_.sampled_from([3, 5]),
    eps=st_.floats(0.0, 1.0),
    spread=st_.sampled_from(["uniform", "neighbourhood"]),
    near_ignore=st_.sampled_from(["keep", "smooth"]),
)
def test_boundary_label_smoothing_property(data, n_spatial, num_classes, k, eps, spread, near_ignore):
    """Tiny random maps of any rank (values drawn freely, ignore included) agree with the loop."""
    shape = (data.draw(st_.integers(1, 2)), *data.draw(st_.lists(st_.integers(1, 5), min_size=n_spatial, max_size=n_spatial)))
    flat = data.draw(st_.lists(st_.sampled_from([*range(num_classes), -1]), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    y = torch.tensor(flat, dtype=torch.long).reshape(shape)
    out = boundary_label_smoothing(y, num_classes, eps, kernel_size=k, ignore_index=-1, spread=spread,
                                   near_ignore=near_ignore, dtype=torch.float64)
    assert_simplex(out, num_classes)
    ref = np_boundary_reference(y.numpy(), num_classes, eps, k, -1, spread, near_ignore)
    np.testing.assert_allclose(out.soft.numpy(), ref, atol=1e-12, rtol=0)


def test_boundary_label_smoothing_touches_only_boundary_pixels():
    C = 3
    y = random_labels((2, 12, 12), C, seed=3, ignore_index=IGNORE)
    st = boundary_label_smoothing(y, C, 0.2, ignore_index=IGNORE)
    oh = one_hot(y, C, ignore_index=IGNORE)
    changed = (st.soft != oh.soft).any(1)
    ref = np_boundary_reference(y.numpy(), C, 0.2, 3, IGNORE, "uniform", "keep")
    expected = torch.from_numpy((ref != oh.soft.double().numpy()).any(1))
    assert torch.equal(changed, expected)
    assert changed.any() and (~changed & st.mask).any(), "the test map must have interiors and boundaries"
    # smoothed pixels are exactly label smoothing
    ls = label_smoothing(y, C, 0.2, ignore_index=IGNORE)
    torch.testing.assert_close(st.soft.movedim(1, -1)[changed], ls.soft.movedim(1, -1)[changed])


def test_boundary_label_smoothing_edge_cases():
    y = torch.zeros(1, 6, 6, dtype=torch.long)
    assert torch.equal(boundary_label_smoothing(y, 2, 0.5).soft, one_hot(y, 2).soft)  # one class: no boundary
    y[0, :, 3:] = 1
    assert torch.equal(boundary_label_smoothing(y, 2, 0.0).soft, one_hot(y, 2).soft)  # eps = 0
    # a class next to ignored pixels only is not a boundary
    z = torch.tensor([[[0, 0, IGNORE, IGNORE, 1, 1]]])
    st = boundary_label_smoothing(z, 2, 0.4, ignore_index=IGNORE)
    assert torch.equal(st.soft, one_hot(z, 2, ignore_index=IGNORE).soft)
    # kernel larger than the image still works (window cut at the border)
    st = boundary_label_smoothing(torch.tensor([[[0, 1]]]), 2, 0.5, kernel_size=9)
    torch.testing.assert_close(st.soft[0, :, 0].T, torch.tensor([[0.75, 0.25], [0.25, 0.75]]))
    # empty batch
    assert boundary_label_smoothing(torch.zeros(0, 4, 4, dtype=torch.long), 3, 0.1).soft.shape == (0, 3, 4, 4)


# ------------------------------------------------------------------ boundary_label_smoothing: the authors' definition


def labels_with_ignore_regions(shape, num_classes, *, seed, ignore_index=IGNORE, blobs=2, p_single=0.03):
    """Blocky random labels with ignored boxes (blobs) and scattered single ignored pixels."""
    y = random_labels(shape, num_classes, seed=seed)
    rng = np.random.default_rng(seed)
    spatial = shape[1:]
    for b in range(shape[0]):
        for _ in range(blobs):
            sides = [int(rng.integers(1, max(2, s // 3) + 1)) for s in spatial]
            starts = [int(rng.integers(0, s - side + 1)) for s, side in zip(spatial, sides)]
            y[(b, *(slice(a, a + side) for a, side in zip(starts, sides)))] = ignore_index
    singles = torch.from_numpy(rng.random(tuple(shape)) < p_single)
    y[singles] = ignore_index
    return y


def np_window_all(x: np.ndarray, ks: tuple[int, ...], pad_value: bool) -> np.ndarray:
    """All-of over the centred window (``pad_value`` outside the image): erosion with True padding."""
    padded = np.pad(x, [(k // 2, k // 2) for k in ks], constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(padded, ks)
    return windows.all(axis=tuple(range(x.ndim, x.ndim + len(ks))))


def erosion_reference(y: np.ndarray, num_classes: int, eps: float, k, ignore) -> tuple[np.ndarray, np.ndarray]:
    """The authors' boundary label smoothing written with per-class erosions.

    A pixel of class c is a boundary pixel when it is not in the k-window erosion of the mask of c (the image
    border padded as "in the class", so the border is not a boundary); a pixel whose window holds an ignored
    pixel (the dilation of the ignore mask) is not smoothed. Smoothed: (1 - eps) one-hot + eps / C.
    """
    ks = (k,) * (y.ndim - 1) if isinstance(k, int) else tuple(k)
    valid = y != ignore
    soft = np.zeros((y.shape[0], num_classes, *y.shape[1:]))
    for b in range(y.shape[0]):
        near_ignore = ~np_window_all(valid[b], ks, pad_value=True)  # dilation of the ignore mask
        smoothed = np.zeros(y.shape[1:], dtype=bool)
        for c in range(num_classes):
            member = y[b] == c
            smoothed |= member & ~np_window_all(member, ks, pad_value=True)
        smoothed &= ~near_ignore
        for c in range(num_classes):
            member = y[b] == c
            soft[b, c] = np.where(member, 1.0, 0.0)
            soft[b, c] = np.where(smoothed, (1 - eps) * soft[b, c] + eps / num_classes, soft[b, c])
        soft[b, :, ~valid[b]] = 0.0
    return soft, valid


def authors_formulation(y: torch.Tensor, num_classes: int, eps: float, k: int, ignore) -> torch.Tensor:
    """The recipe as the reference code states it (2-D): a one-hot map with an extra channel for ignored
    pixels; a pixel is on a boundary where its one-hot differs from the window's min-pool (padding never
    wins), unless the max-pool of the ignore channel is set; there, eps / C is added to every channel."""
    y = torch.where(y == ignore, num_classes, y)
    onehot = F.one_hot(y, num_classes + 1).movedim(-1, 1).double()
    classes, ignored = onehot[:, :-1], onehot[:, -1:]
    window_min = -F.max_pool2d(-classes, k, stride=1, padding=k // 2)
    near_ignored = F.max_pool2d(ignored, k, stride=1, padding=k // 2)[:, 0] > 0
    boundary = (classes != window_min).any(1) & ~near_ignored
    soft = torch.where(boundary[:, None], (1 - eps) * onehot + eps / num_classes, onehot)
    return soft[:, :-1]


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
@pytest.mark.parametrize(
    "shape,k",
    [((2, 16, 19), 3), ((2, 16, 19), 5), ((1, 23, 9), 7), ((2, 6, 9, 8), 3), ((1, 7, 8, 9), 5),
     ((1, 6, 10, 9), (3, 5, 3)), ((3, 40), 3)],
)
def test_bls_default_is_the_erosion_definition(shape, k, eps):
    C = 4
    y = labels_with_ignore_regions(shape, C, seed=sum(shape) + int(10 * eps))
    assert (y == IGNORE).any() and (y != IGNORE).any()
    st = boundary_label_smoothing(y, C, eps, kernel_size=k, ignore_index=IGNORE, dtype=torch.float64)
    assert_simplex(st, C)
    ref_soft, ref_valid = erosion_reference(y.numpy(), C, eps, k, IGNORE)
    np.testing.assert_allclose(st.soft.numpy(), ref_soft, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(st.mask.numpy(), ref_valid)
    # the test maps hold all three kinds of valid pixel: interior, smoothed, and next to ignore with a boundary
    smoothed = (st.soft != one_hot(y, C, ignore_index=IGNORE, dtype=torch.float64).soft).any(1)
    old = boundary_label_smoothing(y, C, eps, kernel_size=k, ignore_index=IGNORE, near_ignore="smooth",
                                   dtype=torch.float64)
    old_smoothed = (old.soft != one_hot(y, C, ignore_index=IGNORE, dtype=torch.float64).soft).any(1)
    assert smoothed.any() and (st.mask & ~smoothed).any()
    assert (old_smoothed & ~smoothed).any(), "the ignore rule must matter on these maps"
    assert not (smoothed & ~old_smoothed).any(), "the paper's rule only removes smoothed pixels"


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_bls_default_matches_the_authors_formulation(seed, k):
    C = 5
    y = labels_with_ignore_regions((2, 21, 17), C, seed=seed)
    st = boundary_label_smoothing(y, C, kernel_size=k, ignore_index=IGNORE, dtype=torch.float64)
    ref = authors_formulation(y, C, 0.5, k, IGNORE)
    torch.testing.assert_close(st.soft, ref, atol=1e-12, rtol=0)


def test_bls_defaults_are_the_papers_and_positional_order_works():
    y = labels_with_ignore_regions((2, 12, 12), 3, seed=4)
    default = boundary_label_smoothing(y, 3, ignore_index=IGNORE)
    explicit = boundary_label_smoothing(y, 3, 0.5, kernel_size=3, ignore_index=IGNORE, spread="uniform",
                                        near_ignore="keep")
    assert torch.equal(default.soft, explicit.soft) and torch.equal(default.mask, explicit.mask)
    # epsilon is still the third positional argument
    positional = boundary_label_smoothing(y, 3, 0.2, ignore_index=IGNORE)
    keyword = boundary_label_smoothing(y, 3, epsilon=0.2, ignore_index=IGNORE)
    assert torch.equal(positional.soft, keyword.soft)
    assert not torch.equal(positional.soft, default.soft)


def test_bls_near_ignore_hand_example():
    #                  0  1  2  3    4     5  6
    y = torch.tensor([[0, 0, 1, 1, IGNORE, 1, 0]])
    keep = boundary_label_smoothing(y, 2, ignore_index=IGNORE).soft[0, 0]  # the class-0 channel
    smooth = boundary_label_smoothing(y, 2, ignore_index=IGNORE, near_ignore="smooth").soft[0, 0]
    # eps = 0.5, C = 2: a smoothed pixel holds 0.75 of its class and 0.25 of the other. Pixels 1|2 form an
    # edge away from the ignored pixel: smoothed both ways. Pixel 5 (class 1, window {ignore, 1, 0}) is kept
    # one-hot by the paper's rule, smoothed by the old one; pixel 3 (window {1, 1, ignore}) holds no other
    # class and is one-hot either way; pixel 6 (window {1, 0}, cut at the border) is smoothed either way.
    torch.testing.assert_close(keep, torch.tensor([1.0, 0.75, 0.25, 0.0, 0.0, 0.0, 0.75]))
    torch.testing.assert_close(smooth, torch.tensor([1.0, 0.75, 0.25, 0.0, 0.0, 0.25, 0.75]))


# ------------------------------------------------------------------ smoothing_shares


def brute_force_shares(y: np.ndarray, C: int, eps: float, k, ignore, background, smoothing, near_ignore):
    """Pixel loop: decide each pixel, build its soft vector, add it up per class."""
    spatial = y.shape[1:]
    ks = (k,) * len(spatial) if isinstance(k, int) else tuple(k)
    pixels, smoothed = np.zeros(C, int), np.zeros(C, int)
    target_mass, floor_mass = np.zeros(C), np.zeros(C)
    for b in range(y.shape[0]):
        for idx in itertools.product(*(range(s) for s in spatial)):
            c = y[(b, *idx)]
            if ignore is not None and c == ignore:
                continue
            if smoothing == "uniform":
                smooth = True
            else:
                window = y[(b, *(slice(max(0, i - kk // 2), i + kk // 2 + 1) for i, kk in zip(idx, ks)))]
                others = {int(v) for v in np.unique(window)} - {int(c), ignore}
                touches = ignore is not None and bool((window == ignore).any())
                smooth = bool(others) and not (near_ignore == "keep" and touches)
            pixels[c] += 1
            vec = np.zeros(C)
            vec[c] = 1.0
            if smooth:
                smoothed[c] += 1
                vec = (1 - eps) * vec + eps / C
                for other in range(C):
                    if other != c:
                        floor_mass[other] += eps / C
            target_mass += vec
    objects = np.array([background is None or c != background for c in range(C)])
    return pixels, smoothed, target_mass, floor_mass, objects


@pytest.mark.parametrize(
    "shape,k,background,smoothing,near_ignore",
    [
        ((2, 12, 14), 3, 0, "boundary", "keep"),
        ((2, 12, 14), 5, None, "boundary", "keep"),
        ((1, 13, 11), 3, 2, "boundary", "smooth"),
        ((2, 5, 7, 6), 3, 0, "boundary", "keep"),
        ((1, 5, 6, 7), (3, 5, 3), None, "boundary", "smooth"),
        ((3, 30), 5, 1, "boundary", "keep"),
        ((2, 9, 10), 3, 0, "uniform", "keep"),
        ((1, 3, 4, 5, 2), 3, None, "uniform", "keep"),  # uniform smoothing takes any number of spatial dims
    ],
)
@pytest.mark.parametrize("eps", [0.2, 0.5])
def test_smoothing_shares_matches_brute_force(shape, k, background, smoothing, near_ignore, eps):
    C = 4
    if len(shape) - 1 <= 3:
        y = labels_with_ignore_regions(shape, C, seed=sum(shape), p_single=0.04)
    else:
        y = random_labels(shape, C, seed=1, ignore_index=IGNORE, p_ignore=0.1, blocky=False)
    got = smoothing_shares(y, C, epsilon=eps, kernel_size=k, ignore_index=IGNORE, background=background,
                           smoothing=smoothing, near_ignore=near_ignore)
    n, s, mass, floor, objects = brute_force_shares(y.numpy(), C, eps, k, IGNORE, background, smoothing, near_ignore)
    df = got.per_class
    assert list(df.columns) == ["class", "object", "pixels", "smoothed", "share_smoothed", "target_mass",
                                "floor_mass", "floor_share"]
    np.testing.assert_array_equal(df["class"], np.arange(C))
    np.testing.assert_array_equal(df["object"], objects)
    np.testing.assert_array_equal(df["pixels"], n)
    np.testing.assert_array_equal(df["smoothed"], s)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(df["share_smoothed"], s / n)
    np.testing.assert_allclose(df["target_mass"], mass, rtol=1e-12)
    np.testing.assert_allclose(df["floor_mass"], floor, rtol=1e-12)
    np.testing.assert_allclose(df["floor_share"], floor / mass, rtol=1e-12)
    assert got.pixels == n.sum() and got.smoothed_pixels == s.sum()
    assert got.object_pixels == n[objects].sum() and got.smoothed_object_pixels == s[objects].sum()
    assert got.object_share_smoothed == pytest.approx(s[objects].sum() / n[objects].sum())
    assert got.floor_share == pytest.approx(floor.sum() / n.sum())
    assert got.smoothing == smoothing and got.epsilon == eps and got.background == background
    if smoothing == "uniform":
        assert got.object_share_smoothed == 1.0 and got.kernel_size is None
    else:
        assert 0 < got.object_share_smoothed < 1
        assert got.kernel_size == ((k,) * (len(shape) - 1) if isinstance(k, int) else tuple(k))
        # the same pixels and the same mass as the builder it describes
        st = boundary_label_smoothing(y, C, eps, kernel_size=k, ignore_index=IGNORE, near_ignore=near_ignore,
                                      dtype=torch.float64)
        np.testing.assert_allclose(df["target_mass"], st.soft.sum(dim=[0, *range(2, st.soft.ndim)]).numpy(), rtol=1e-12)
        changed = (st.soft != one_hot(y, C, ignore_index=IGNORE, dtype=torch.float64).soft).any(1)
        assert int(changed.sum()) == got.smoothed_pixels
    assert isinstance(got.summary(), str)


def test_smoothing_shares_hand_count_square():
    # background 0 around a 3x3 object of class 1 in a 7x7 scene; eps = 0.5, k = 3, C = 2 (eps / C = 0.25)
    y = torch.zeros(1, 7, 7, dtype=torch.long)
    y[0, 2:5, 2:5] = 1
    got = smoothing_shares(y, 2)
    assert isinstance(got, SmoothingShares)
    assert (got.pixels, got.object_pixels, got.smoothed_object_pixels, got.smoothed_pixels) == (49, 9, 8, 24)
    assert got.object_share_smoothed == pytest.approx(8 / 9)
    df = got.per_class.set_index("class")
    assert df.loc[0, "pixels"] == 40 and df.loc[0, "smoothed"] == 16  # the ring around the object
    assert df.loc[1, "target_mass"] == pytest.approx(1 + 8 * 0.75 + 16 * 0.25)  # 11
    assert df.loc[1, "floor_mass"] == pytest.approx(16 * 0.25)
    assert df.loc[1, "floor_share"] == pytest.approx(4 / 11)
    assert df.loc[0, "target_mass"] == pytest.approx(24 + 16 * 0.75 + 8 * 0.25)  # 38
    assert df.loc[0, "floor_share"] == pytest.approx(2 / 38)
    assert got.floor_share == pytest.approx((4 + 2) / 49)
    # a 5x5 window reaches 2 pixels: the whole object and, in this small scene, the whole background
    wide = smoothing_shares(y, 2, kernel_size=5)
    assert wide.object_share_smoothed == 1.0 and wide.per_class.loc[0, "smoothed"] == 40
    # uniform smoothing: everything
    uni = smoothing_shares(y, 2, smoothing="uniform").per_class.set_index("class")
    assert uni.loc[1, "floor_mass"] == pytest.approx(40 * 0.25)
    assert uni.loc[1, "target_mass"] == pytest.approx(9 * 0.75 + 10)


def test_smoothing_shares_hand_count_with_ignore():
    #                  0  1  2  3  4  5    6     7  8
    y = torch.tensor([[1, 1, 1, 1, 2, 2, IGNORE, 0, 0]])
    # smoothed: 3 and 4 (the 1|2 edge); 5 and 7 touch the ignored pixel; eps / C = 1/6
    got = smoothing_shares(y, 3, ignore_index=IGNORE, background=None)
    df = got.per_class.set_index("class")
    assert df["pixels"].tolist() == [2, 4, 2] and df["smoothed"].tolist() == [0, 1, 1]
    assert got.object_pixels == 8 and got.object_share_smoothed == pytest.approx(2 / 8)
    np.testing.assert_allclose(df["target_mass"], [2 + 2 / 6, 4 - 0.5 + 2 / 6, 2 - 0.5 + 2 / 6])
    np.testing.assert_allclose(df["floor_mass"], [2 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(df["floor_share"], [1 / 7, 1 / 23, 1 / 11])
    assert df["object"].all()
    # class 0 as background: the objects are classes 1 and 2
    bg = smoothing_shares(y, 3, ignore_index=IGNORE)
    assert bg.object_pixels == 6 and bg.object_share_smoothed == pytest.approx(2 / 6)
    assert bg.per_class["object"].tolist() == [False, True, True]


def test_smoothing_shares_edge_cases():
    # a class absent from the batch: all its target mass is floor
    y = torch.tensor([[[0, 0, 1, 1]]])
    df = smoothing_shares(y, 3).per_class.set_index("class")
    assert df.loc[2, "pixels"] == 0 and df.loc[2, "floor_share"] == 1.0
    assert np.isnan(df.loc[2, "share_smoothed"])
    # no object pixels, no smoothing at all
    bg_only = smoothing_shares(torch.zeros(1, 4, 4, dtype=torch.long), 2)
    assert np.isnan(bg_only.object_share_smoothed) and bg_only.smoothed_pixels == 0 and bg_only.floor_share == 0
    assert np.isnan(bg_only.per_class.loc[1, "floor_share"])  # 0 / 0
    assert "smooths" in bg_only.summary()
    # eps = 0: the band is reported, its floor is 0
    zero = smoothing_shares(y, 2, epsilon=0.0)
    assert zero.smoothed_pixels == 2 and zero.floor_share == 0.0
    # numpy input; everything ignored; an empty batch
    assert smoothing_shares(y.numpy(), 2).smoothed_pixels == 2
    none = smoothing_shares(torch.full((1, 3, 3), IGNORE), 2, ignore_index=IGNORE)
    assert none.pixels == 0 and np.isnan(none.object_share_smoothed) and np.isnan(none.floor_share)
    assert smoothing_shares(torch.zeros(0, 4, 4, dtype=torch.long), 2).pixels == 0


def test_masking_not_a_zero_vector_is_what_ignores_a_pixel():
    """The docs' claim: for the Jaccard metric loss a zero target vector does not ignore a pixel; the mask does."""
    from jmlkit.losses import jaccard_metric_loss

    y = torch.tensor([[0, 0, 1, IGNORE, 1, 2, IGNORE, 2]])
    logits = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(0))
    st = boundary_label_smoothing(y, 3, ignore_index=IGNORE)
    keep = st.mask[0]
    masked = jaccard_metric_loss(logits, st.soft, st.mask, classes="all")
    dropped = jaccard_metric_loss(logits[..., keep], st.soft[..., keep], classes="all")
    # the loss refuses an unmasked zero vector (not a probability vector); without that check it would count
    unmasked = jaccard_metric_loss(logits, st.soft, classes="all", validate_args=False)
    with pytest.raises(ValueError, match="sum to 1"):
        jaccard_metric_loss(logits, st.soft, classes="all")
    torch.testing.assert_close(masked, dropped)
    assert unmasked > masked + 1e-3


# ------------------------------------------------------------------ distillation_targets


def test_distillation_is_tempered_softmax():
    z = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(0)) * 3
    for T in (0.5, 1.0, 4.0):
        st = distillation_targets(z, temperature=T)
        assert_simplex(st, 5)
        torch.testing.assert_close(st.soft, torch.softmax(z / T, 1))
        assert st.mask.all() and st.mask.shape == (2, 6, 7)


def test_distillation_temperature_limits():
    z = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(1)) * 5
    hot = distillation_targets(z, temperature=1e4).soft
    torch.testing.assert_close(hot, torch.full_like(hot, 0.25), atol=1e-3, rtol=0)
    entropy = [-(p * p.clamp_min(1e-12).log()).sum(1).mean() for p in (distillation_targets(z, temperature=T).soft for T in (0.5, 1, 2, 8))]
    assert all(a < b for a, b in zip(entropy, entropy[1:])), "higher T must soften"
    cold = distillation_targets(z, temperature=1e-4).soft
    torch.testing.assert_close(cold, F.one_hot(z.argmax(1), 4).movedim(-1, 1).float())


def test_distillation_label_mixing_and_ignore():
    C = 4
    z = torch.randn(2, C, 6, 6, generator=torch.Generator().manual_seed(2))
    y = random_labels((2, 6, 6), C, ignore_index=IGNORE, seed=5, blocky=False)
    oh = one_hot(y, C, ignore_index=IGNORE)
    full = distillation_targets(z, target=y, label_weight=1.0, ignore_index=IGNORE)
    torch.testing.assert_close(full.soft, oh.soft)
    assert torch.equal(full.mask, oh.mask)
    w = 0.3
    st = distillation_targets(z, temperature=2.0, target=y, label_weight=w, ignore_index=IGNORE)
    assert_simplex(st, C)
    torch.testing.assert_close(st.soft, ((1 - w) * torch.softmax(z / 2, 1) + w * oh.soft) * oh.mask[:, None])
    # target without label weight: teacher probabilities, ignored pixels masked
    st0 = distillation_targets(z, target=y, ignore_index=IGNORE)
    torch.testing.assert_close(st0.soft, torch.softmax(z, 1) * oh.mask[:, None])


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_distillation_and_pseudo_keep_logit_dtype(dtype):
    z = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)).to(dtype)
    assert distillation_targets(z).soft.dtype == dtype
    assert pseudo_labels(z, soft=False).soft.dtype == dtype
    torch.testing.assert_close(distillation_targets(z).soft.sum(1).float(), torch.ones(1, 4, 4), atol=1e-2, rtol=0)


def test_outputs_are_constants():
    z = torch.randn(1, 3, 4, 4, requires_grad=True)
    assert not distillation_targets(z).soft.requires_grad
    assert not pseudo_labels(z).soft.requires_grad


# ------------------------------------------------------------------ pseudo_labels


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.8, 1.0])
def test_pseudo_label_threshold_mask(threshold):
    z = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2
    p = torch.softmax(z, 1)
    st = pseudo_labels(z, threshold=threshold)
    torch.testing.assert_close(st.soft, p)
    assert torch.equal(st.mask, p.max(1).values >= threshold)
    hard = pseudo_labels(z, threshold=threshold, soft=False)
    assert torch.equal(hard.soft, F.one_hot(p.argmax(1), 3).movedim(-1, 1).float())
    assert torch.equal(hard.mask, st.mask)
    if threshold == 0.0:
        assert st.mask.all()


def test_pseudo_labels_temperature_and_mask():
    z = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(4)) * 3
    st = pseudo_labels(z, temperature=2.0, threshold=0.6)
    p = torch.softmax(z / 2, 1)
    torch.testing.assert_close(st.soft, p)
    assert torch.equal(st.mask, p.max(1).values >= 0.6)
    keep = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(0)) > 0.3
    sm = pseudo_labels(z, temperature=2.0, threshold=0.6, mask=keep)
    assert torch.equal(sm.mask, st.mask & keep)
    assert torch.all(sm.soft.movedim(1, -1)[~keep] == 0)
    assert_simplex(pseudo_labels(z, mask=keep), 3)


# ------------------------------------------------------------------ average_annotators


@pytest.mark.parametrize("shape", [(2, 6, 7), (1, 3, 4, 5)])
def test_average_annotators_matches_numpy(shape):
    C, A = 4, 3
    masks = torch.stack([random_labels(shape, C, seed=a, ignore_index=IGNORE, p_ignore=0.4, blocky=False) for a in range(A)])
    masks[:, 0, 0] = IGNORE  # a row nobody labelled
    st = average_annotators(masks, C, ignore_index=IGNORE)
    assert_simplex(st, C)
    ref_soft, ref_mask = np_average_reference(masks.numpy(), C, IGNORE)
    np.testing.assert_allclose(st.soft.numpy(), ref_soft, atol=1e-6)
    np.testing.assert_array_equal(st.mask.numpy(), ref_mask)
    assert not st.mask[0, 0].any()
    listed = average_annotators(list(masks), C, ignore_index=IGNORE)
    assert torch.equal(listed.soft, st.soft) and torch.equal(listed.mask, st.mask)


def test_average_annotators_single_and_agreeing():
    y = random_labels((2, 5, 5), 3, ignore_index=IGNORE)
    oh = one_hot(y, 3, ignore_index=IGNORE)
    for masks in ([y], [y, y, y]):
        st = average_annotators(masks, 3, ignore_index=IGNORE, dtype=torch.float64)
        assert st.soft.dtype == torch.float64
        torch.testing.assert_close(st.soft, oh.soft.double())
        assert torch.equal(st.mask, oh.mask)


# ------------------------------------------------------------------ every builder keeps ignored pixels ignored


@pytest.mark.parametrize("ignore_index", [255, -100])
@pytest.mark.parametrize(
    "build",
    [
        lambda y, C, ig: one_hot(y, C, ignore_index=ig),
        lambda y, C, ig: label_smoothing(y, C, 0.2, ignore_index=ig),
        lambda y, C, ig: boundary_label_smoothing(y, C, 0.2, ignore_index=ig),
        lambda y, C, ig: boundary_label_smoothing(y, C, 0.2, ignore_index=ig, spread="neighbourhood"),
        lambda y, C, ig: distillation_targets(torch.randn(y.shape[0], C, *y.shape[1:]), target=y, label_weight=0.5, ignore_index=ig),
        lambda y, C, ig: average_annotators([y, y], C, ignore_index=ig),
        lambda y, C, ig: pseudo_labels(torch.randn(y.shape[0], C, *y.shape[1:]), mask=y != ig),
    ],
    ids=["one_hot", "ls", "bls", "bls-neigh", "kd", "annotators", "pseudo"],
)
def test_every_builder_keeps_ignored_pixels_ignored(build, ignore_index):
    C = 5
    y = random_labels((2, 8, 8), C, ignore_index=ignore_index, p_ignore=0.25, seed=7)
    st = build(y, C, ignore_index)
    assert_simplex(st, C)
    assert not st.mask[y == ignore_index].any()
    assert st.mask[y != ignore_index].all()


# ------------------------------------------------------------------ bad input


Y = torch.tensor([[0, 1], [2, 1]])
Z = torch.zeros(1, 3, 2, 2)

BAD_INPUTS = [
    # (callable, exception, message regex)
    (lambda: one_hot(Y.float(), 3), TypeError, r"`target` to hold integer class indices .* got dtype torch.float32"),
    (lambda: one_hot(Y.bool(), 3), TypeError, r"`target` to hold integer .* torch.bool"),
    (lambda: one_hot([[0, 1]], 3), TypeError, r"`target` to be a torch.Tensor .* got list"),
    (lambda: one_hot(torch.tensor([0, 1]), 3), ValueError, r"`target` of shape \(B, \*spatial\) with at least 1 spatial dims, but got shape \(2,\)"),
    (lambda: one_hot(torch.tensor([[0, 12]]), 11, ignore_index=255), ValueError,
     r"Expected `target` values in \[0, 10\] or ignore_index=255, but got max 12"),
    (lambda: one_hot(torch.tensor([[0, -3]]), 3), ValueError, r"`target` values in \[0, 2\], but got min -3"),
    (lambda: one_hot(Y, 0), ValueError, r"Expected `num_classes` to be an int >= 1, but got 0\."),
    (lambda: one_hot(Y, 3.0), TypeError, r"Expected `num_classes` to be an int, but got 3.0 \(float\)\."),
    (lambda: one_hot(Y, True), TypeError, r"Expected `num_classes` to be an int, but got True \(bool\)\."),
    (lambda: one_hot(Y, 3, ignore_index="void"), TypeError, r"`ignore_index` to be None or an int, but got 'void'"),
    (lambda: one_hot(Y, 3, ignore_index=1.5), TypeError, r"`ignore_index` to be None or an int, but got 1.5 \(float\)"),
    (lambda: one_hot(Y, 3, dtype=torch.int64), ValueError, r"`dtype` to be a floating torch.dtype, but got torch.int64"),
    (lambda: one_hot(Y, 3, dtype="float32"), TypeError, r"`dtype` to be a floating torch.dtype, but got 'float32' \(str\)"),
    (lambda: label_smoothing(Y, 3, 1.5), ValueError, r"Expected `epsilon` to be a number in \[0, 1\], but got 1.5\."),
    (lambda: label_smoothing(Y, 3, -0.1), ValueError, r"Expected `epsilon` to be a number in \[0, 1\], but got -0.1\."),
    (lambda: label_smoothing(Y, 3, float("nan")), ValueError, r"Expected `epsilon` to be a finite number in \[0, 1\], but got nan\."),
    (lambda: label_smoothing(Y, 3, "0.1"), TypeError, r"Expected `epsilon` to be a real number, but got '0.1' \(str\)\."),
    (lambda: label_smoothing(Y, 3, 0.1, 255), TypeError, r"positional"),
    (lambda: boundary_label_smoothing(Y[None], 3, 0.1, kernel_size=4), ValueError, r"`kernel_size` to be an odd int >= 3, but got 4"),
    (lambda: boundary_label_smoothing(Y[None], 3, 0.1, kernel_size=1), ValueError, r"`kernel_size` to be an odd int >= 3, but got 1"),
    (lambda: boundary_label_smoothing(Y[None], 3, 0.1, kernel_size=3.0), TypeError, r"Expected `kernel_size` to be an int, but got 3.0 \(float\)\."),
    (lambda: boundary_label_smoothing(Y[None], 3, 0.1, kernel_size=(3, 3, 3)), ValueError,
     r"`kernel_size` to be an int or a sequence of 2 ints .* but got \(3, 3, 3\)"),
    (lambda: boundary_label_smoothing(Y[None], 3, 0.1, spread="gaussian"), ValueError,
     r"`spread` to be one of \('uniform', 'neighbourhood'\), but got 'gaussian'"),
    (lambda: boundary_label_smoothing(Y[None], 3, near_ignore="drop"), ValueError,
     r"`near_ignore` to be one of \('keep', 'smooth'\), but got 'drop'"),
    (lambda: smoothing_shares(Y[None], 3, smoothing="gaussian"), ValueError,
     r"`smoothing` to be one of \('boundary', 'uniform'\), but got 'gaussian'"),
    (lambda: smoothing_shares(Y[None], 3, background=3), ValueError, r"Expected `background` to be an int in \[0, 2\], but got 3\."),
    (lambda: smoothing_shares(Y[None], 3, background=1.0), TypeError, r"Expected `background` to be an int or None, but got 1.0"),
    (lambda: smoothing_shares(Y[None], 3, epsilon=1.5), ValueError, r"Expected `epsilon` to be a number in \[0, 1\], but got 1.5\."),
    (lambda: smoothing_shares(Y[None], 3, kernel_size=2), ValueError, r"`kernel_size` to be an odd int >= 3, but got 2"),
    (lambda: smoothing_shares(Y[None], 3, near_ignore=None), ValueError, r"`near_ignore` to be one of"),
    (lambda: smoothing_shares(Y[None].float(), 3), TypeError, r"`labels` to hold integer class indices"),
    (lambda: smoothing_shares([[0, 1]], 3), TypeError, r"`labels` to be a torch.Tensor"),
    (lambda: smoothing_shares(Y[None], 2), ValueError, r"`labels` values in \[0, 1\], but got max 2"),
    (lambda: smoothing_shares(torch.zeros(1, 2, 2, 2, 2, dtype=torch.long), 3), ValueError,
     r"`labels` of shape \(B, \*spatial\) with 1 to 3 spatial dims"),
    (lambda: smoothing_shares(Y[None], 3, 0.5), TypeError, r"positional"),
    (lambda: boundary_label_smoothing(torch.zeros(1, 2, 2, 2, 2, dtype=torch.long), 3, 0.1), ValueError,
     r"`target` of shape \(B, \*spatial\) with 1 to 3 spatial dims, but got shape \(1, 2, 2, 2, 2\)"),
    (lambda: boundary_label_smoothing(Y[None], 2, 0.1), ValueError, r"`target` values in \[0, 1\], but got max 2"),
    (lambda: distillation_targets(torch.zeros(1, 3, 2, 2, dtype=torch.long)), TypeError,
     r"`teacher_logits` to be a floating-point tensor of logits, but got dtype torch.int64"),
    (lambda: distillation_targets(torch.zeros(2, 3)), ValueError,
     r"`teacher_logits` of shape \(B, C, \*spatial\) with at least 1 spatial dim, but got shape \(2, 3\)"),
    (lambda: distillation_targets(Z, temperature=0), ValueError, r"Expected `temperature` to be a number > 0, but got 0.0\."),
    (lambda: distillation_targets(Z, temperature=float("inf")), ValueError, r"Expected `temperature` to be a finite number > 0, but got inf\."),
    (lambda: distillation_targets(Z, temperature=None), TypeError, r"Expected `temperature` to be a real number, but got None \(NoneType\)\."),
    (lambda: distillation_targets(Z, label_weight=0.5), ValueError, r"`target` .* when `label_weight` > 0, but got None"),
    (lambda: distillation_targets(Z, target=Y[None], label_weight=2.0), ValueError, r"Expected `label_weight` to be a number in \[0, 1\], but got 2.0\."),
    (lambda: distillation_targets(Z, target=torch.zeros(1, 3, 2, dtype=torch.long)), ValueError,
     r"`target` of shape \(1, 2, 2\) .* but got shape \(1, 3, 2\)"),
    (lambda: distillation_targets(Z, target=Y[None].float()), TypeError, r"`target` to hold integer class indices"),
    (lambda: distillation_targets(Z, target=torch.full((1, 2, 2), 7)), ValueError, r"`target` values in \[0, 2\], but got max 7"),
    (lambda: pseudo_labels(Z, threshold=1.2), ValueError, r"Expected `threshold` to be a number in \[0, 1\], but got 1.2\."),
    (lambda: pseudo_labels(Z, soft="yes"), TypeError, r"`soft` to be a bool, but got 'yes'"),
    (lambda: pseudo_labels(Z, temperature=-1.0), ValueError, r"Expected `temperature` to be a number > 0, but got -1.0\."),
    (lambda: pseudo_labels(Z, mask=torch.ones(1, 2, 2)), TypeError, r"`mask` to be None or a bool tensor, but got dtype torch.float32"),
    (lambda: pseudo_labels(Z, mask=torch.ones(1, 3, 3, dtype=torch.bool)), ValueError,
     r"`mask` of shape \(1, 2, 2\) .* but got shape \(1, 3, 3\)"),
    (lambda: pseudo_labels(Z, 0.5), TypeError, r"positional"),
    (lambda: average_annotators([], 3), ValueError, r"`masks` to hold at least one annotator, but got an empty sequence"),
    (lambda: average_annotators(torch.zeros(0, 1, 2, 2, dtype=torch.long), 3), ValueError, r"`masks` to hold at least one annotator"),
    (lambda: average_annotators("mask.png", 3), TypeError, r"`masks` to be an int tensor .* but got str"),
    (lambda: average_annotators([Y, Y[:1]], 3), ValueError, r"every annotator in `masks` to have the same \(B, \*spatial\) shape"),
    (lambda: average_annotators([Y, Y.float()], 3), TypeError, r"`masks\[1\]` to hold integer class indices"),
    (lambda: average_annotators(Y, 3), ValueError,
     r"`masks` of shape \(A, B, \*spatial\) with at least 1 spatial dim, but got shape \(2, 2\)"),
    (lambda: average_annotators([Y, torch.tensor([[0, 1], [9, 1]])], 3), ValueError, r"`masks\[1\]` values in \[0, 2\], but got max 9"),
]


@pytest.mark.parametrize("call,exc,match", BAD_INPUTS, ids=[f"bad{i}" for i in range(len(BAD_INPUTS))])
def test_bad_input_raises_with_message(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
