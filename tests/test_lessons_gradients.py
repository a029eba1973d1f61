"""jmlkit.lessons.gradient_split and friends (notebook 02's tug of war): the written-out gradients of 0.25 CE +
0.75 JML against autograd of jmlkit.losses, the per-class split, the table, the errors, and a trained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jmlkit import lessons as L
from jmlkit.losses import jaccard_metric_loss, soft_cross_entropy


def random_case(seed=0, B=3, C=4, H=5, W=6, masked=True):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, C, H, W, generator=g, dtype=torch.float64)
    y = torch.softmax(2 * torch.randn(B, C, H, W, generator=g, dtype=torch.float64), 1)
    m = torch.rand(B, H, W, generator=g) > 0.2 if masked else None
    return z, y, m


def autograd(z, y, m, *, ce_weight, jml_weight, smooth):
    z = z.clone().requires_grad_()
    ce = ce_weight * soft_cross_entropy(z, y, m)
    jml = jml_weight * jaccard_metric_loss(z, y, m, classes="all", aggregate="batch", smooth=smooth)
    g_ce, = torch.autograd.grad(ce, z)
    g_jml, = torch.autograd.grad(jml, z)
    x = torch.softmax(z.detach(), 1).requires_grad_()
    g_x, = torch.autograd.grad(jml_weight * jaccard_metric_loss(x, y, m, from_logits=False, classes="all",
                                                                aggregate="batch", smooth=smooth), x)
    return g_ce, g_jml, g_x


@pytest.mark.parametrize("seed, weights, smooth, masked", [
    (0, (0.25, 0.75), 1.0, True), (1, (0.25, 0.75), 0.0, True), (2, (1.0, 0.3), 1.0, False), (3, (0.0, 1.0), 0.5, True),
])
def test_the_written_out_gradients_match_autograd(seed, weights, smooth, masked):
    z, y, m = random_case(seed, masked=masked)
    split = L.gradient_split(z, y, m, ce_weight=weights[0], jml_weight=weights[1], smooth=smooth)
    g_ce, g_jml, g_x = autograd(z, y, m, ce_weight=weights[0], jml_weight=weights[1], smooth=smooth)
    torch.testing.assert_close(split.ce_logits, g_ce, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(split.jml_logits, g_jml, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(split.jml_probs, g_x, rtol=1e-9, atol=1e-12)


def test_per_pixel_jml_gradient_is_minus_one_over_u_or_i_over_u_squared():
    z, y, m = random_case(4)
    split = L.gradient_split(z, y, m, jml_weight=1.0, smooth=0.0)
    x, C = torch.softmax(z, 1), z.shape[1]
    valid = m.unsqueeze(1).expand_as(x)
    for c in range(C):
        xc, yc, vc = x[:, c], y[:, c], valid[:, c]
        inter, union = torch.minimum(xc, yc)[vc].sum(), torch.maximum(xc, yc)[vc].sum()  # I = sum min, U = sum max
        g, up = split.jml_probs[:, c], split.up[:, c]
        assert up.equal((xc <= yc) & vc)
        torch.testing.assert_close(g[up], torch.full_like(g[up], -1 / (C * union)))
        torch.testing.assert_close(g[~up & vc], torch.full_like(g[~up & vc], inter / (C * union ** 2)))
        assert (g[~vc] == 0).all()


def test_the_table_splits_the_pushes_and_counts_the_classes():
    z, y, m = random_case(5)
    split = L.gradient_split(z, y, m, class_names=["bg", "a", "b", "c"])
    t = split.per_class
    assert list(t["name"]) == ["bg", "a", "b", "c"]
    total_ce, total_jml = -split.ce_logits.sum((0, 2, 3)).numpy(), -split.jml_logits.sum((0, 2, 3)).numpy()
    np.testing.assert_allclose(t["ce_up"] + t["ce_down"], total_ce, atol=1e-12)
    np.testing.assert_allclose(t["jml_net"], total_jml, atol=1e-12)
    np.testing.assert_allclose(t["net"], total_ce + total_jml, atol=1e-12)
    # the CE term pulls a class up exactly where its target exceeds its prediction
    assert (t["ce_up"] >= 0).all() and (t["ce_down"] <= 0).all()
    label, pred, valid = y.argmax(1), torch.softmax(z, 1).argmax(1), m
    for c in range(4):
        assert t.at[c, "pixels"] == int(((label == c) & valid).sum())
        assert t.at[c, "predicted"] == int(((pred == c) & valid).sum())
        assert t.at[c, "as_background"] == int(((label == c) & (pred == 0) & valid).sum())
        own = torch.softmax(z, 1)[:, c][(label == c) & valid].mean()
        assert t.at[c, "own_prob"] == pytest.approx(float(own))
    np.testing.assert_allclose(t["own_prob"] + t["background_prob"].fillna(0) + t["other_prob"], 1.0)
    np.testing.assert_allclose(t["target_mass"], (y * m.unsqueeze(1)).sum((0, 2, 3)).numpy())


def test_a_class_predicted_nowhere_is_collapsed():
    # class 2 labelled on one pixel, but class 0 always wins the arg-max
    y = torch.nn.functional.one_hot(torch.tensor([[[0, 1, 2, 0]]]), 3).permute(0, 3, 1, 2).double()
    z = torch.tensor([[[[3.0, 0.0, 1.0, 3.0]], [[0.0, 2.0, 0.0, 0.0]], [[0.0, 0.0, 0.5, 0.0]]]], dtype=torch.float64)
    split = L.gradient_split(z, y)
    assert split.collapsed() == [2]
    t = split.per_class
    assert t.at[2, "IoU"] == 0.0 and t.at[1, "IoU"] == 1.0 and t.at[2, "as_background"] == 1
    s = L.tug_summary(split)
    assert s["collapsed"] == ["2"] and s["as_background"] == 1.0
    assert s["ce_net"] == pytest.approx(t.at[2, "ce_net"]) and s["jml_net"] == pytest.approx(t.at[2, "jml_net"])
    assert s["ce_net"] > 0  # the CE term always pulls an unpredicted labelled class up
    assert s["background_jml_net"] == pytest.approx(t.at[0, "jml_net"])
    objects = torch.tensor([[[False, True, True, False]]])  # the pixels labelled 1 and 2
    assert s["background_jml_at_objects"] == pytest.approx(float(-split.jml_logits[:, 0][objects].sum()))
    assert s["background_ce_at_objects"] == pytest.approx(float(-split.ce_logits[:, 0][objects].sum()))
    assert (s["ce_down_classes"], s["jml_down_classes"]) == (0, int(t.at[2, "jml_net"] < 0))


def test_bad_input_is_reported():
    z, y, _ = random_case(6)
    with pytest.raises(ValueError, match="soft `target`"):
        L.gradient_split(z, y.argmax(1))
    with pytest.raises(ValueError, match="soft `target`"):
        L.gradient_split(z, y[:, :2])
    with pytest.raises(TypeError, match="tensors"):
        L.gradient_split(z.numpy(), y)
    with pytest.raises(ValueError, match="`background`"):
        L.gradient_split(z, y, background=9)
    with pytest.raises(ValueError, match="non-empty"):
        L.gradient_split(z[:0], y[:0])
    with pytest.raises(ValueError, match="`ce_weight`"):
        L.gradient_split(z, y, ce_weight=-1.0)


def test_recipe_gradients_of_a_model_builds_the_training_target_and_pools_per_batch():
    from jmlkit import targets as T
    from jmlkit.engine import TrainConfig
    from jmlkit.models import build_model

    torch.manual_seed(0)
    config = TrainConfig.from_profile("smoke", labels="ls", loss="ce+jml")
    model = build_model("tiny", in_channels=3, num_classes=11).train()
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 16, 16, dtype=torch.long)
    labels[:, 4:12, 4:12] = torch.randint(1, 11, (4, 1, 1), generator=g)
    labels[0, 0, 0] = 255
    batch = {"image": torch.randn(4, 3, 16, 16, generator=g), "label": labels, "num_classes": 11,
             "class_names": [str(c) for c in range(11)], "ignore_index": 255}
    whole = L.recipe_gradients(model, batch, config)
    assert model.training  # the mode is put back
    soft = T.boundary_label_smoothing(labels, 11, 0.5, ignore_index=255)
    with torch.no_grad():
        logits = model.eval()(batch["image"]).float()
    model.train()
    direct = L.gradient_split(logits, soft.soft, soft.mask)
    np.testing.assert_allclose(whole.per_class["jml_net"], direct.per_class["jml_net"], rtol=1e-6, atol=1e-12)
    assert whole.per_class.at[0, "name"] == "0"
    # pooled per batch of 2: the pushes of the two halves add up; counts add; IoU from the summed counts
    halves = L.recipe_gradients(model, batch, config, batch_size=2)
    parts = [L.recipe_gradients(model, {**batch, "image": batch["image"][i:i + 2], "label": labels[i:i + 2]}, config)
             for i in (0, 2)]
    for col in ("ce_up", "jml_down", "pixels", "predicted", "U"):
        np.testing.assert_allclose(halves.per_class[col], parts[0].per_class[col] + parts[1].per_class[col],
                                   rtol=1e-6, atol=1e-12)
    assert halves.jml_logits.shape == (4, 11, 16, 16)
    t = halves.per_class
    either = t["pixels"] + t["predicted"] - t["correct"]
    np.testing.assert_allclose(t["IoU"][either > 0], (t["correct"] / either)[either > 0])
    with pytest.raises(ValueError, match="`batch_size`"):
        L.recipe_gradients(model, batch, config, batch_size=0)
