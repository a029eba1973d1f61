"""The widgets of notebooks 02 and 06 without a browser: the figure for given widget values (checked against
jmlkit.targets and the tables it draws), the callbacks redraw and send a new PNG, bad input is refused, and batch
runs get the first state. The same widgets in a real JupyterLab: tests/test_browser.py."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jmlkit.plot as plot  # noqa: E402
import jmlkit.plot.interactive as interactive  # noqa: E402
from jmlkit import targets  # noqa: E402

C = 4
NAMES = ["bg", "a", "b", "c"]


@pytest.fixture(scope="module")
def scenes():
    """Two 12x12 scenes: a 5x5 square of class 1 (and an ignored corner), a 6x4 block of class 2 next to class 3."""
    y = torch.zeros(2, 12, 12, dtype=torch.long)
    y[0, 3:8, 4:9] = 1
    y[0, :2, :2] = 255
    y[1, 2:8, 2:6], y[1, 2:8, 6:10] = 2, 3
    return y


def floor_by_hand(labels, soft, mask):
    """The target mass of each class where the label is another class: what the ε/C floor adds."""
    return np.array([float(soft[0, c][mask[0] & (labels[0] != c)].sum()) for c in range(soft.shape[1])])


def test_the_widgets_are_exported_flat():
    assert {"SMOOTHINGS", "SmoothingTargetPlot", "smoothing_explorer", "ReliabilityComparisonPlot",
            "reliability_comparison", "reliability_explorer"} <= set(plot.__all__)
    assert plot.SMOOTHINGS == ("boundary", "uniform")


# --------------------------------------------------------------------------------------------- 02: the soft target
@pytest.mark.parametrize("smoothing, kernel_size, epsilon", [("boundary", 3, 0.5), ("boundary", 5, 0.3),
                                                              ("uniform", 3, 0.2), ("boundary", 3, 0.0)])
def test_smoothing_plot_shows_the_target_and_the_floor_of_each_class(scenes, smoothing, kernel_size, epsilon):
    p = plot.SmoothingTargetPlot(scenes, C, class_names=NAMES, ignore_index=255)
    fig = p.update(epsilon=epsilon, smoothing=smoothing, kernel_size=kernel_size, class_index=2, scene=0)
    y = scenes[:1]
    st = (targets.boundary_label_smoothing(y, C, epsilon, kernel_size=kernel_size, ignore_index=255)
          if smoothing == "boundary" else targets.label_smoothing(y, C, epsilon, ignore_index=255))
    heights = np.array([b.get_height() for b in p.bars])
    np.testing.assert_allclose(heights, floor_by_hand(y, st.soft, st.mask), rtol=1e-5, atol=1e-6)
    shown = p.target_image.get_array()
    np.testing.assert_allclose(shown.filled(-1), np.where(st.mask[0], st.soft[0, 2], -1), atol=1e-6)
    assert shown.mask[0, 0] and not shown.mask[5, 5]  # the ignored corner is blank
    own = st.soft[0].gather(0, y[0].clamp(max=C - 1)[None])[0]
    assert p.state["smoothed_pixels"] == int((st.mask[0] & (own < 1)).sum())
    assert [b.get_linewidth() for b in p.bars] == [0.4, 0.4, 2.0, 0.4]  # the shown class is outlined
    assert p.axes[1].get_title() == "target of class 'b'"
    assert fig._suptitle.get_text().startswith(f"{smoothing} label smoothing, ε = {epsilon:.2f}")
    if epsilon == 0:
        assert heights.sum() == 0 and p.state["smoothed_pixels"] == 0


def test_smoothing_plot_floor_grows_with_epsilon_window_and_uniform_smoothing(scenes):
    p = plot.SmoothingTargetPlot(scenes, C, ignore_index=255)
    total = {}
    for key in [(0.2, "boundary", 3), (0.5, "boundary", 3), (0.5, "boundary", 7), (0.5, "uniform", 3)]:
        p.update(epsilon=key[0], smoothing=key[1], kernel_size=key[2], scene=1)
        total[key] = p.state["floor_mass"].sum()
    values = list(total.values())
    assert values == sorted(values) and len(set(values)) == 4
    assert p.state["class_index"] == 2  # default: the first class present other than 0
    top = p.axes[2].get_ylim()[1]
    assert top >= 0.5 * 144 / C  # the axis holds the largest floor any setting gives, not just this one


def test_smoothing_plot_refuses_bad_input(scenes):
    with pytest.raises(TypeError, match="`labels`.*integer class indices.*float32"):
        plot.SmoothingTargetPlot(scenes.float(), C)
    with pytest.raises(TypeError, match="`labels`.*tensor or numpy array.*list"):
        plot.SmoothingTargetPlot([[0, 1]], C)
    with pytest.raises(ValueError, match=r"`labels` of shape \(H, W\) or \(B, H, W\).*\(12,\)"):
        plot.SmoothingTargetPlot(scenes[0, 0], C)
    with pytest.raises(ValueError, match=r"`labels` in \[0, 3\] or `ignore_index` \(None\), but got 255"):
        plot.SmoothingTargetPlot(scenes, C)
    with pytest.raises(ValueError, match="`class_names` to name 4 classes, but got 2"):
        plot.SmoothingTargetPlot(scenes, C, class_names=["x", "y"], ignore_index=255)
    p = plot.SmoothingTargetPlot(scenes.numpy(), C, ignore_index=255)  # numpy works too
    for kwargs, error, words in [
        (dict(epsilon=1.5), ValueError, r"`epsilon` to be a number in \[0, 1\], but got 1.5"),
        (dict(smoothing="gauss"), ValueError, r"`smoothing` to be one of \('boundary', 'uniform'\), but got 'gauss'"),
        (dict(kernel_size=4), ValueError, "`kernel_size` to be an odd int >= 3, but got 4"),
        (dict(kernel_size=3.0), TypeError, "`kernel_size` to be an int, but got 3.0"),
        (dict(class_index=4), ValueError, r"`class_index` to be an int in \[0, 3\], but got 4"),
        (dict(scene=2), ValueError, r"`scene` to be an int in \[0, 1\], but got 2"),
    ]:
        with pytest.raises(error, match=words):
            p.update(**kwargs)


def test_smoothing_explorer_redraws_on_every_control(scenes, live):
    w = plot.smoothing_explorer(scenes, C, class_names=NAMES, ignore_index=255, epsilon=0.2)
    controls = {c.description: c for c in w.children[:-1]}
    assert list(controls) == ["ε", "smoothing", "window", "class", "scene"]
    assert [type(c).__name__ for c in controls.values()] == ["FloatSlider", "Dropdown", "IntSlider", "Dropdown",
                                                            "IntSlider"]
    assert (controls["window"].min, controls["window"].max, controls["window"].step) == (3, 9, 2)
    first = len(live)
    assert first >= 1 and live[-1].startswith(b"\x89PNG")  # the first state is drawn when the widget is built
    before = [b.get_height() for b in w.result.axes[2].patches]
    controls["ε"].value = 0.6
    after = [b.get_height() for b in w.result.axes[2].patches]
    assert all(a > b for a, b in zip(after, before))
    moves = [("window", 5), ("class", 0), ("scene", 1), ("smoothing", "uniform")]
    for name, value in moves:
        controls[name].value = value
    assert len(live) == first + 1 + len(moves) and len(set(live[first - 1:])) == len(live) - first + 1
    assert isinstance(w.result, Figure)
    assert w.result.axes[1].get_title() == "target of class 'bg'"
    assert controls["window"].disabled  # uniform smoothing has no window
    controls["smoothing"].value = "boundary"
    assert not controls["window"].disabled


def test_smoothing_explorer_one_scene_has_no_scene_slider(scenes, live):
    w = plot.smoothing_explorer(scenes[1], C)
    assert [c.description for c in w.children[:-1]] == ["ε", "smoothing", "window", "class"]
    with pytest.raises(ValueError, match="`max_kernel` to be an odd int >= kernel_size"):
        plot.smoothing_explorer(scenes[1], C, kernel_size=5, max_kernel=4)


def test_smoothing_explorer_is_its_first_state_in_batch_runs(scenes, monkeypatch, capsys):
    monkeypatch.setenv(plot.HEADLESS_ENV, "1")
    fig = plot.smoothing_explorer(scenes, C, ignore_index=255, epsilon=0.4, kernel_size=5)
    assert isinstance(fig, Figure) and "ε = 0.40, 5×5 window" in fig._suptitle.get_text()
    assert "Markdown" in capsys.readouterr().out  # the note, displayed above the figure


# --------------------------------------------------------------------------------------------- 06: the run picker
def reliability(shift: float, top: int) -> dict:
    lower = np.linspace(0, 0.9, 10)
    table = pd.DataFrame({"lower": lower, "upper": lower + 0.1, "count": [5] * 9 + [top],
                          "confidence": lower + 0.05, "accuracy": np.clip(lower + 0.05 + shift, 0, 1)})
    return {"reliability": table, "ECE_D": abs(shift)}


@pytest.fixture(scope="module")
def runs():
    keys = [("02_label_smoothing", "jml_bls"), ("02_label_smoothing", "ce_hard"), ("03_distillation", "kd_jml"),
            ("03_distillation", "kd_ce"), ("05_soft_labels", "soft_jml")]
    tables = {k: reliability(0.02 * (i + 1), 100 * (i + 1)) for i, k in enumerate(keys)}
    summary = pd.DataFrame({"notebook": [k[0] for k in keys], "config": [k[1] for k in keys], "n_seeds": 2,
                            "ECE_D_mean": [0.01, 0.02, 0.03, 0.04, 0.05], "ECE_D_std": [0.001, np.nan, 0, 0, 0],
                            "NLL_mean": [0.3, 0.4, 0.5, 0.6, 0.7], "NLL_std": np.nan})
    return keys, tables, summary


def bar_values(fig: Figure) -> list[float]:
    return [round(p.get_width(), 6) for p in fig.axes[-1].patches]


def test_reliability_comparison_draws_the_chosen_runs_and_the_metric(runs):
    keys, tables, summary = runs
    p = plot.ReliabilityComparisonPlot(tables, summary=summary, max_runs=4)
    fig = p.update([keys[2], keys[0]], "ECE_D")
    panels = [ax for ax in p.panels if ax.get_visible()]
    assert [ax.get_title().splitlines()[0] for ax in panels] == ["03 kd_jml", "02 jml_bls"]
    assert panels[0].get_title().splitlines()[1] == "ECE 6.00%, 87% px in top bin"  # 300 of 345 pixels
    assert len(panels[0].patches) == 2 * 10 and len(panels[0].lines) == 1  # accuracy + gap per bin, the diagonal
    heights = [b.get_height() for b in panels[0].patches[:10]]
    np.testing.assert_allclose(heights, tables[keys[2]]["reliability"]["accuracy"])
    assert bar_values(fig) == [3.0, 1.0]  # in %, in the order chosen
    ticks = {t.get_text(): t.get_position()[1] for t in fig.axes[-1].get_yticklabels()}
    assert ticks["03 kd_jml"] > ticks["02 jml_bls"]  # the first chosen on top
    fig = p.update([keys[1]], "NLL")  # fewer panels: the rest hidden, the figure narrower, NLL not in %
    assert sum(ax.get_visible() for ax in p.panels) == 1 and p.panels[0].get_title().startswith("02 ce_hard")
    assert bar_values(fig) == [0.4] and fig.axes[-1].get_xlabel() == "NLL"
    width = fig.get_figwidth()
    fig = p.update(keys[:4], "ECE_D")
    assert fig.get_figwidth() > width and len(p.panels[0].patches) == 20  # old bars replaced, not stacked
    fig = p.update([], "ECE_D")
    assert not any(ax.get_visible() for ax in fig.axes) and "no run chosen" in p.message.get_text()


def test_reliability_comparison_without_summary_shows_the_pooled_ece(runs):
    keys, tables, _ = runs
    fig = plot.reliability_comparison(tables, keys[3:], metric="ECE_D")
    assert bar_values(fig) == [8.0, 10.0]
    fig = plot.reliability_comparison(tables)  # default: the first four
    assert sum(ax.get_visible() for ax in fig.axes) == 5


def test_runs_are_named_by_notebook_number_unless_two_names_clash(runs):
    keys, tables, _ = runs
    assert plot.ReliabilityComparisonPlot(tables).names[keys[0]] == "02 jml_bls"
    clash = {("02_label_smoothing", "ce"): tables[keys[0]], ("02_other", "ce"): tables[keys[1]]}
    assert list(plot.ReliabilityComparisonPlot(clash).names.values()) == ["02_label_smoothing ce", "02_other ce"]


def test_reliability_comparison_refuses_bad_input(runs):
    keys, tables, summary = runs
    with pytest.raises(ValueError, match="`tables` to be a non-empty mapping"):
        plot.reliability_comparison({})
    with pytest.raises(TypeError, match="`summary` to be None or a DataFrame.*list"):
        plot.reliability_comparison(tables, summary=[1])
    with pytest.raises(ValueError, match=r"`summary` to have the key columns \['notebook', 'config'\]"):
        plot.reliability_comparison(tables, summary=summary.drop(columns=["notebook", "config"]))
    with pytest.raises(ValueError, match=r"`metric` to be one of \('ECE_D', 'NLL'\), but got 'mIoU'"):
        plot.reliability_comparison(tables, metric="mIoU", summary=summary)
    with pytest.raises(ValueError, match=r"`chosen` to be keys of `tables`.*unknown \[\('02', 'x'\)\]"):
        plot.reliability_comparison(tables, [keys[0], ("02", "x")])
    with pytest.raises(ValueError, match="`max_runs` to be an int >= 1, but got 0"):
        plot.ReliabilityComparisonPlot(tables, max_runs=0)


def test_reliability_explorer_redraws_on_picks_and_metric(runs, live):
    keys, tables, summary = runs
    w = plot.reliability_explorer(tables, summary, max_runs=3)
    picker, metric = w.children[:2]
    assert (type(picker).__name__, type(metric).__name__) == ("SelectMultiple", "Dropdown")
    assert picker.value == tuple(keys[:3]) and list(metric.options) == ["ECE_D", "NLL"]
    assert [label for label, _ in picker.options] == ["02 jml_bls", "02 ce_hard", "03 kd_jml", "03 kd_ce",
                                                      "05 soft_jml"]
    sent = len(live)
    picker.value = (keys[4], keys[0])
    assert bar_values(w.result) == [5.0, 1.0]
    metric.value = "NLL"
    assert bar_values(w.result) == [0.7, 0.3] and w.result.axes[-1].get_xlabel() == "NLL"
    picker.value = tuple(keys)  # more than max_runs: the first three are drawn
    assert sum(ax.get_visible() for ax in w.result.axes[:-1]) == 3
    assert len(live) == sent + 3 and len(set(live[sent - 1:])) == 4


def test_reliability_explorer_is_its_first_state_in_batch_runs(runs, monkeypatch):
    keys, tables, summary = runs
    monkeypatch.setenv(plot.HEADLESS_ENV, "1")
    fig = plot.reliability_explorer(tables, summary, chosen=[keys[1]], metric="NLL")
    assert isinstance(fig, Figure) and bar_values(fig) == [0.4]
    with pytest.raises(ValueError, match="`chosen` to be keys of `tables`"):
        plot.reliability_explorer(tables, chosen=[("x",)])
