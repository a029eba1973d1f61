"""The widgets of notebooks 01 (the ``smooth`` slider), 03, 04 and 05 without a browser, and the lessons behind them.

jmlkit.lessons.temperature against jmlkit.losses and closed forms (the KL term's gradient in float64, finite
differences of both terms), jmlkit.lessons.pseudo_labels against jmlkit.targets.pseudo_labels and its own curve; the
plot classes show what the lessons compute; the widgets build with their controls, redraw on a move and are their
first state in batch runs; bad arguments are refused by name. The same widgets in a real JupyterLab:
tests/test_browser.py.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jmlkit.plot as plot  # noqa: E402
import jmlkit.plot.explorers as explorers  # noqa: E402
import jmlkit.plot.interactive as interactive  # noqa: E402
from jmlkit import lessons, losses, targets  # noqa: E402
from jmlkit.lessons import pseudo_labels as PL  # noqa: E402
from jmlkit.lessons import temperature as TL  # noqa: E402

C = 4


def logits(seed: int, shape=(2, C, 6, 6), scale: float = 3.0, dtype=torch.float32) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.fixture(scope="module")
def kd():
    """A teacher, a student near it, labels with an ignored row."""
    z_t = logits(0)
    z_s = z_t + logits(1, scale=1.0)
    y = z_t.argmax(1)
    y[0, 0] = 255
    return z_s, z_t, y


def test_the_widgets_are_exported_flat():
    assert {"TemperaturePlot", "temperature_explorer", "PseudoLabelPlot", "threshold_explorer", "SoftLabelSlicePlot",
            "soft_label_explorer"} <= set(plot.__all__)
    assert {"temperature_terms", "temperature_sweep", "pseudo_label_state", "threshold_curve"} <= set(lessons.__all__)


# --------------------------------------------------------------------------------------------- 03: the lesson
@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 7.0])
def test_the_terms_are_those_of_the_distillation_loss(kd, T):
    z_s, z_t, y = kd
    s = TL.temperature_terms(z_s, z_t, T, target=y, ignore_index=255)
    full = losses.jml_distillation_loss(z_s, z_t, y, temperature=T, ignore_index=255)
    labels_only = losses.jml_distillation_loss(z_s, z_t, y, temperature=T, ignore_index=255, teacher_weight=0.0)
    # the default recipe: 0.25 * 0.5 * T^2 KL + 0.75 * 0.5 * JML(p_s, q_t^T) on top of its label terms
    assert float(full - labels_only) == pytest.approx(0.125 * s.values["kl"] + 0.375 * s.values["jml"], rel=1e-5)
    torch.testing.assert_close(s.teacher_probs, torch.softmax(z_t / T, 1))
    assert s.n_valid == int((y != 255).sum()) == s.valid.sum()


def test_kl_gradient_is_the_closed_form_in_float64(kd):
    z_s, z_t, y = (t.double() if t.is_floating_point() else t for t in kd)
    for T in (0.5, 1.0, 3.0):
        s = TL.temperature_terms(z_s, z_t, T, target=y, ignore_index=255)
        q_s, q_t = torch.softmax(z_s / T, 1), torch.softmax(z_t / T, 1)
        expected = torch.where((y != 255)[:, None], T * (q_s - q_t) / s.n_valid, 0.0)
        assert s.grads["kl"].dtype == torch.float64
        torch.testing.assert_close(s.grads["kl"], expected, rtol=1e-10, atol=1e-12)
        assert s.grads["jml"][:, :, 0][0].abs().max() == 0  # the ignored row gets no gradient from either term


def test_gradients_match_finite_differences_in_float64(kd):
    z_s, z_t, y = (t.double() if t.is_floating_point() else t for t in kd)
    T, h = 2.0, 1e-6
    s = TL.temperature_terms(z_s, z_t, T, target=y, ignore_index=255)
    g = torch.Generator().manual_seed(3)
    for _ in range(6):
        index = tuple(int(torch.randint(0, n, (1,), generator=g)) for n in z_s.shape)
        plus, minus = z_s.clone(), z_s.clone()
        plus[index] += h
        minus[index] -= h
        up, down = (TL.temperature_terms(z, z_t, T, target=y, ignore_index=255).values for z in (plus, minus))
        for term in TL.TERMS:
            assert (up[term] - down[term]) / (2 * h) == pytest.approx(float(s.grads[term][index]), abs=1e-7)


def test_kl_term_passes_gradcheck():
    z_t = logits(4, shape=(1, 3, 2, 2), dtype=torch.float64)
    y = z_t.argmax(1)
    z = logits(5, shape=(1, 3, 2, 2), dtype=torch.float64).requires_grad_(True)
    kl = lambda z: losses.jml_distillation_loss(z, z_t, y, temperature=2.0, **TL._WEIGHTS["kl"])  # noqa: E731
    assert torch.autograd.gradcheck(kl, (z,))
    (autograd,) = torch.autograd.grad(kl(z), z)
    torch.testing.assert_close(TL.temperature_terms(z, z_t, 2.0).grads["kl"], autograd)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), t1=st.floats(0.2, 30.0), t2=st.floats(0.2, 30.0))
def test_teacher_probabilities_sum_to_one_and_flatten_as_T_grows(seed, t1, t2):
    z_t = logits(seed, shape=(1, 5, 3, 3), scale=4.0)
    low, high = sorted((t1, t2))
    a, b = (TL.temperature_terms(z_t, z_t, t).teacher_probs for t in (low, high))
    for q in (a, b):
        torch.testing.assert_close(q.sum(1), torch.ones(1, 3, 3))
    entropy = lambda q: -(q * q.clamp_min(1e-30).log()).sum(1)  # noqa: E731
    assert bool((b.amax(1) <= a.amax(1) + 1e-6).all()) and bool((entropy(b) >= entropy(a) - 1e-5).all())


def test_sweep_is_the_terms_at_each_temperature(kd):
    z_s, z_t, y = kd
    pixels = TL.pick_pixels(z_t, target=y, ignore_index=255)
    ts = [0.5, 1.0, 4.0, 16.0]
    sweep = TL.temperature_sweep(z_s, z_t, ts, target=y, ignore_index=255, pixels=list(pixels.values()))
    assert sweep.temperatures.tolist() == ts and sweep.n_valid == int((y != 255).sum())
    for k, T in enumerate(ts):
        s = TL.temperature_terms(z_s, z_t, T, target=y, ignore_index=255)
        for term in TL.TERMS:
            assert sweep.values[term][k] == pytest.approx(s.values[term], rel=1e-6)
            assert sweep.grad_rms[term][k] == pytest.approx(s.grad_rms[term], rel=1e-6)
            b, i, j = pixels["hesitant"]
            torch.testing.assert_close(sweep.pixel_grads[term][k, 1], s.grads[term][b, :, i, j])
    assert bool((sweep.confidence.diff() < 0).all())
    # T^2 KL: the per-pixel gradient T (q_s^T - q_t^T), whose RMS is what grad_rms reports
    s = TL.temperature_terms(z_s, z_t, 4.0, target=y, ignore_index=255)
    per_pixel = (4.0 * (torch.softmax(z_s / 4, 1) - torch.softmax(z_t / 4, 1))).square().sum(1)[y != 255]
    assert s.grad_rms["kl"] == pytest.approx(float(per_pixel.mean().sqrt()), rel=1e-5)


def test_picked_pixels_are_the_extremes_of_the_teachers_confidence(kd):
    _, z_t, y = kd
    pixels = TL.pick_pixels(z_t, target=y, ignore_index=255)
    top = torch.softmax(z_t, 1).amax(1)
    valid = y != 255
    assert top[pixels["confident"]] == top[valid].max() and top[pixels["hesitant"]] == top[valid].min()
    assert all(y[p] != 255 for p in pixels.values())
    with pytest.raises(ValueError, match="some valid pixel"):
        TL.pick_pixels(z_t, target=torch.full_like(y, 255), ignore_index=255)


def test_model_logits_are_the_eval_mode_outputs_and_restore_the_mode():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Dropout(0.9)).train()
    x = torch.randn(5, 3, 4, 4)
    out = TL.model_logits(model, x, batch_size=2)
    assert model.training and not out.requires_grad
    torch.testing.assert_close(out, model[0](x).detach())  # dropout off
    with pytest.raises(TypeError, match="`model`"):
        TL.model_logits(lambda x: x, x)
    with pytest.raises(TypeError, match="`images`"):
        TL.model_logits(model, x.numpy())
    with pytest.raises(ValueError, match="`images`"):
        TL.model_logits(model, x[:0])
    with pytest.raises(ValueError, match="`batch_size`"):
        TL.model_logits(model, x, batch_size=0)


def test_temperature_lesson_refuses_bad_input(kd):
    z_s, z_t, y = kd
    for call, error, words in [
        (lambda: TL.temperature_terms(z_s, z_t, 0.0), ValueError, "`temperature`"),
        (lambda: TL.temperature_terms(z_s, z_t, "hot"), TypeError, "`temperature`"),
        (lambda: TL.temperature_terms(z_s[:, :3], z_t, 1.0), ValueError, "`student_logits` and `teacher_logits`"),
        (lambda: TL.temperature_terms(y, z_t, 1.0), TypeError, "`student_logits`"),
        (lambda: TL.temperature_terms(z_s, z_t.numpy(), 1.0), TypeError, "`teacher_logits`"),
        (lambda: TL.temperature_sweep(z_s, z_t, [2.0, 1.0]), ValueError, "`temperatures`.*increasing"),
        (lambda: TL.temperature_sweep(z_s, z_t, [-1.0, 1.0]), ValueError, r"`temperatures\[0\]`"),
        (lambda: TL.temperature_sweep(z_s, z_t, [1.0], pixels=[(0, 9, 0)]), ValueError, r"`pixels\[0\]\[1\]`"),
        (lambda: TL.temperature_sweep(z_s, z_t, [1.0], pixels=[(0, 1)]), ValueError, r"`pixels\[0\]`"),
    ]:
        with pytest.raises(error, match=words):
            call()


# --------------------------------------------------------------------------------------------- 04: the lesson
def probs_and_labels(seed: int, n: int = 3, size: int = 10):
    g = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, C, size, size, generator=g)
    labels = torch.where(torch.rand(n, size, size, generator=g) < 0.7, z.argmax(1), torch.randint(0, C, (n, size, size),
                                                                                                   generator=g))
    labels[:, 0, :3] = 255
    return torch.softmax(z, 1), labels


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), t1=st.floats(0.0, 1.0), t2=st.floats(0.0, 1.0))
def test_kept_share_never_grows_with_the_threshold(seed, t1, t2):
    probs, labels = probs_and_labels(seed)
    low, high = sorted((t1, t2))
    a, b = (PL.pseudo_label_state(probs, labels, t, ignore_index=255) for t in (low, high))
    assert b.share <= a.share and not bool((b.kept & ~a.kept).any())  # what a higher threshold keeps, a lower one did
    assert not bool((a.kept & (labels == 255)).any())


def test_curve_is_the_state_at_every_threshold():
    probs, labels = probs_and_labels(0)
    curve = PL.threshold_curve(probs, labels, ignore_index=255)
    assert curve.n_valid == int((labels != 255).sum()) and len(curve.thresholds) == 101
    assert bool((curve.share.diff() <= 0).all()) and curve.share[0] == 1.0
    for t, share, acc in zip(curve.thresholds.tolist(), curve.share.tolist(), curve.accuracy.tolist()):
        s = PL.pseudo_label_state(probs, labels, t, ignore_index=255)
        assert share == pytest.approx(s.share) and (acc == pytest.approx(s.accuracy) or np.isnan(acc) == np.isnan(
            s.accuracy) and np.isnan(acc))


def test_kept_pixels_follow_the_rule_of_targets_pseudo_labels():
    probs, labels = probs_and_labels(1)
    valid = labels != 255
    for t in (0.3, 0.6, 0.9):
        s = PL.pseudo_label_state(probs, labels, t, ignore_index=255)
        rule = targets.pseudo_labels(probs.log(), threshold=t, soft=False, mask=valid).mask
        torch.testing.assert_close(s.kept, rule)
        guess = probs.argmax(1)
        assert s.accuracy == pytest.approx(float((guess == labels)[s.kept].float().mean()))


def test_accuracy_by_hand_and_none_kept():
    probs = torch.tensor([[[0.95, 0.6, 0.8, 0.99]]]).unsqueeze(1)
    probs = torch.cat([probs, 1 - probs], 1)
    labels = torch.tensor([[[0, 1, 1, 255]]])
    s = PL.pseudo_label_state(probs, labels, 0.7, ignore_index=255)
    assert (s.n_kept, s.n_valid, s.share, s.accuracy) == (2, 3, 2 / 3, 0.5)
    s = PL.pseudo_label_state(probs, labels, 1.0, ignore_index=255)
    assert s.share == 0 and np.isnan(s.accuracy)


def test_pseudo_label_lesson_refuses_bad_input():
    probs, labels = probs_and_labels(2)
    for call, error, words in [
        (lambda: PL.pseudo_label_state(probs, labels, 1.5), ValueError, r"`threshold` to be a number in \[0, 1\]"),
        (lambda: PL.pseudo_label_state(probs, labels.float(), 0.5), TypeError, "`labels`.*integer"),
        (lambda: PL.pseudo_label_state(probs, labels[:, 1:], 0.5), ValueError, "`labels` of shape"),
        (lambda: PL.pseudo_label_state(labels, labels, 0.5), TypeError, "`probs`"),
        (lambda: PL.threshold_curve(probs, labels, []), ValueError, "`thresholds`"),
        (lambda: PL.threshold_curve(probs, labels, [0.5, 2.0]), ValueError, r"`thresholds\[1\]`"),
        (lambda: PL.pseudo_label_state(probs, labels, 0.5, ignore_index="x"), TypeError, "`ignore_index`"),
    ]:
        with pytest.raises(error, match=words):
            call()


# --------------------------------------------------------------------------------------------- 03: the figure
def bar_heights(bars) -> np.ndarray:
    return np.array([b.get_height() for b in bars])


def test_temperature_plot_shows_the_terms_at_T(kd):
    z_s, z_t, y = kd
    p = plot.TemperaturePlot(z_s, z_t, target=y, ignore_index=255, class_names=["bg", "a", "b", "c"],
                             temperatures=[0.5, 1.0, 2.0, 4.0, 8.0])
    tops = []
    for T in (0.5, 2.0, 8.0):
        fig = p.update(T)
        s = TL.temperature_terms(z_s, z_t, T, target=y, ignore_index=255)
        for name, (b, i, j) in p.pixels.items():
            np.testing.assert_allclose(bar_heights(p.bars[name]), s.teacher_probs[b, :, i, j], rtol=1e-6)
            np.testing.assert_allclose(p.ticks[name].get_ydata(), s.student_probs[b, :, i, j], rtol=1e-6)
        b, i, j = p.pixels["hesitant"]
        for term in TL.TERMS:
            np.testing.assert_allclose(bar_heights(p.grad_bars[term]), -s.n_valid * s.grads[term][b, :, i, j],
                                       rtol=1e-5, atol=1e-9)
            assert tuple(p.dots["term", term].get_data()[1]) == pytest.approx((s.values[term],))
            low, high = p.axes[1, 0].get_ylim()
            assert low <= bar_heights(p.grad_bars[term]).min() and bar_heights(p.grad_bars[term]).max() <= high
        assert list(p.vlines[0].get_xdata()) == [T, T]
        assert bar_heights(p.bars["confident"]).sum() == pytest.approx(1.0)
        tops.append(bar_heights(p.bars["confident"]).max())
        assert fig._suptitle.get_text().startswith(f"T = {T:.2f}: teacher's mean largest probability")
        assert plot.layout_problems(fig) == []
    assert tops == sorted(tops, reverse=True)  # the teacher flattens
    with pytest.raises(ValueError, match="`temperature`"):
        p.update(-1.0)
    with pytest.raises(ValueError, match="`class_names` to name 4 classes"):
        plot.TemperaturePlot(z_s, z_t, class_names=["a"])


# --------------------------------------------------------------------------------------------- 04: the figure
def test_pseudo_label_plot_colours_the_kept_pixels():
    probs, labels = probs_and_labels(3)
    images = torch.rand(3, 3, 10, 10)
    p = plot.PseudoLabelPlot(probs, labels, images=images, ignore_index=255, max_scenes=2)
    assert len(p.scene_axes) == 2
    shares = []
    for t in (0.3, 0.6, 0.9):
        fig = p.update(t)
        s = PL.pseudo_label_state(probs, labels, t, ignore_index=255)
        rgba = p.overlays[0].get_array()
        green = np.all(np.isclose(rgba, explorers._KEPT_RIGHT), axis=-1)
        red = np.all(np.isclose(rgba, explorers._KEPT_WRONG), axis=-1)
        np.testing.assert_array_equal(green, (s.kept & s.correct)[0].numpy())
        np.testing.assert_array_equal(red, (s.kept & ~s.correct)[0].numpy())
        assert rgba[0, 0, 3] == 0  # an ignored pixel: nothing over it
        shares.append(p.share_dot.get_data()[1][0])
        assert shares[-1] == pytest.approx(100 * s.share)
        assert fig._suptitle.get_text().startswith(f"threshold {t:.2f}: {s.share:.1%} of {s.n_valid} pixels")
        assert plot.layout_problems(fig) == []
    assert shares == sorted(shares, reverse=True)
    with pytest.raises(ValueError, match="`images`"):
        plot.PseudoLabelPlot(probs, labels, images=images[:, :, :5])
    with pytest.raises(ValueError, match="`max_scenes`"):
        plot.PseudoLabelPlot(probs, labels, max_scenes=0)


# --------------------------------------------------------------------------------------------- 05: the figure
@pytest.fixture(scope="module")
def slices():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 1, 12, 12, generator=g), torch.softmax(2 * torch.randn(4, 3, 12, 12, generator=g), 1)


def test_soft_label_plot_shows_the_class_and_its_band(slices):
    images, soft = slices
    p = plot.SoftLabelSlicePlot(images, soft, class_names=["bg", "gm", "wm"])
    for index, c, band in [(0, 1, (0.2, 0.8)), (3, 2, (0.05, 0.5)), (2, 0, (0.0, 1.0))]:
        fig = p.update(index=index, class_index=c, band=band)
        y = soft[index, c]
        inside = ((y > band[0]) & (y < band[1])).numpy()
        np.testing.assert_allclose(p.target.get_array(), y.numpy())
        np.testing.assert_array_equal(p.band_overlay.get_array()[..., 2] == 1.0, inside)
        assert p.state["in_band"] == int(inside.sum())
        assert p.axes[1].get_title() == f"y: {['bg', 'gm', 'wm'][c]}"
        assert fig._suptitle.get_text().startswith(f"slice {index} of 4")
        assert plot.layout_problems(fig) == []
    widths = [p.update(index=1, class_index=1, band=(0.5 - w, 0.5 + w)).get_figwidth() and p.state["in_band"]
              for w in (0.1, 0.2, 0.4)]
    assert widths == sorted(widths)  # a wider band holds more pixels


def test_soft_label_plot_refuses_bad_input(slices):
    images, soft = slices
    p = plot.SoftLabelSlicePlot(images, soft)
    for kwargs, error, words in [
        (dict(band=(0.8, 0.2)), ValueError, "`band` with low < high"),
        (dict(band=0.5), TypeError, "`band` to be a pair"),
        (dict(band=(0.2, 1.5)), ValueError, r"`band\[1\]`"),
        (dict(index=4), ValueError, r"`index` to be an int in \[0, 3\]"),
        (dict(class_index=3), ValueError, r"`class_index` to be an int in \[0, 2\]"),
    ]:
        with pytest.raises(error, match=words):
            p.update(**kwargs)
    with pytest.raises(TypeError, match="`soft`"):
        plot.SoftLabelSlicePlot(images, (soft > 0.5).long())
    with pytest.raises(ValueError, match="`images`"):
        plot.SoftLabelSlicePlot(images[:2], soft)
    with pytest.raises(ValueError, match=r"`images` of shape \(B, C_in, H, W\)"):
        plot.SoftLabelSlicePlot(images[:, 0], soft)
    with pytest.raises(TypeError, match="`images` to be a tensor"):
        plot.SoftLabelSlicePlot(images.numpy(), soft)


# --------------------------------------------------------------------------------------------- the widgets
def controls(w) -> dict:
    return {c.description: c for c in w.children[:-1]}


def test_curve_explorer_has_a_smooth_slider(live):
    w = plot.curve_explorer(target=0.2, grid=21)
    c = controls(w)
    assert list(c) == ["target y", "smooth"] and (c["smooth"].min, c["smooth"].max, c["smooth"].value) == (0, 2, 0)
    first = len(live)
    c["smooth"].value = 1.0
    assert len(live) == first + 1 and live[-1] != live[-2]
    curve = plot.CurvePlot(lessons.loss_curves(0.2, grid=21, smooth=1.0))
    assert curve.text.get_text() == " target y = 0.20, smooth = 1.00"
    with pytest.raises(ValueError, match="`smooth_max`"):
        plot.curve_explorer(smooth=3.0)


def test_temperature_explorer_moves_T(kd, live):
    z_s, z_t, y = kd
    w = plot.temperature_explorer(z_s, z_t, target=y, ignore_index=255, temperature=2.0)
    c = controls(w)
    assert list(c) == ["T"] and type(c["T"]).__name__ == "FloatLogSlider"
    assert (c["T"].value, c["T"].base, c["T"].min, c["T"].max) == (2.0, 2, -1, 4)
    first = len(live)
    assert first >= 1 and live[-1].startswith(b"\x89PNG")
    c["T"].value = 8.0
    assert len(live) == first + 1 and live[-1] != live[-2]
    assert w.result._suptitle.get_text().startswith("T = 8.00")
    with pytest.raises(ValueError, match="`temperature`"):
        plot.temperature_explorer(z_s, z_t, temperature=32.0)


def test_threshold_explorer_moves_the_threshold(live):
    probs, labels = probs_and_labels(4)
    w = plot.threshold_explorer(probs, labels, ignore_index=255, threshold=0.8)
    c = controls(w)
    assert list(c) == ["threshold"] and c["threshold"].value == 0.8
    first = len(live)
    c["threshold"].value = 0.5
    assert len(live) == first + 1 and live[-1] != live[-2]
    assert w.result._suptitle.get_text().startswith("threshold 0.50")
    with pytest.raises(ValueError, match="`step`"):
        plot.threshold_explorer(probs, labels, step=0.0)


def test_soft_label_explorer_moves_slice_class_and_band(slices, live):
    images, soft = slices
    w = plot.soft_label_explorer(images, soft, class_names=["bg", "gm", "wm"], band=(0.2, 0.8))
    c = controls(w)
    assert list(c) == ["slice", "class", "band"]
    assert [type(x).__name__ for x in c.values()] == ["IntSlider", "Dropdown", "FloatRangeSlider"]
    assert c["slice"].value == 2 and c["class"].value == 1 and c["band"].value == (0.2, 0.8)
    first = len(live)
    for name, value in [("slice", 3), ("class", 2), ("band", (0.1, 0.4))]:
        c[name].value = value
    assert len(live) == first + 3 and len(set(live[first - 1:])) == 4
    assert w.result._suptitle.get_text().startswith("slice 3 of 4, wm")


def test_the_widgets_are_their_first_state_in_batch_runs(kd, slices, monkeypatch, capsys):
    monkeypatch.setenv(plot.HEADLESS_ENV, "1")
    z_s, z_t, y = kd
    probs, labels = probs_and_labels(5)
    figures = [plot.temperature_explorer(z_s, z_t, temperature=4.0),
               plot.threshold_explorer(probs, labels, threshold=0.7),
               plot.soft_label_explorer(*slices, index=1)]
    assert all(isinstance(f, Figure) for f in figures)
    assert figures[0]._suptitle.get_text().startswith("T = 4.00")
    assert figures[1]._suptitle.get_text().startswith("threshold 0.70")
    assert figures[2]._suptitle.get_text().startswith("slice 1 of 4")
    assert capsys.readouterr().out.count("Markdown") == 3  # a note above each figure
    assert "JupyterLab" in plot.curve_explorer(target=0.3, grid=11).data  # 01: a note only
