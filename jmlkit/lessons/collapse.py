"""The class collapse of ``notebooks/02b_smoothing_ablation.ipynb``: who wins the tug of war on a class's logits.

:func:`gradient_split` writes out the gradient of the paper's soft-label loss (0.25 CE + 0.75 JML,
batch pooling, all classes) w.r.t. each class's logits, split into the CE and JML terms and into the pixels that
pull the class up (target above prediction: :math:`-1/U` per pixel for the JML) and push it down (prediction above
target: :math:`+I/U^2`); :func:`recipe_gradients` does it for a trained model on batches with the training target
of a configuration, :func:`tug_summary` gives the numbers the findings quote, ``jmlkit.plot.gradient_tug_of_war``
the figure. The tests check the written-out gradients against autograd of :mod:`jmlkit.losses`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_int, check_real
from jmlkit.losses import region_statistics

__all__ = ["SPLIT_COLUMNS", "GradientSplit", "gradient_split", "recipe_gradients", "tug_summary"]


# --------------------------------------------------------------------------------------------- notebook 02
# Who wins the tug of war on a class's logits: the 0.25 CE term or the 0.75 JML term of the paper's soft-label loss.

#: The parts of :class:`GradientSplit` ``per_class``: ``<term>_<part>`` for the terms ``ce`` and ``jml`` and the
#: pixel sets ``up`` (target above prediction) and ``down`` (prediction above target).
SPLIT_COLUMNS: tuple[str, ...] = ("ce_up", "ce_down", "jml_up", "jml_down")


@dataclass(frozen=True)
class GradientSplit:
    """What :func:`gradient_split` found: per-pixel gradients and the per-class table.

    Attributes:
        per_class: :class:`pandas.DataFrame`, one row per class: ``class``, ``name``, ``pixels`` (labelled with
            it: the target's arg-max on valid pixels), ``predicted`` (pixels where it is the prediction's
            arg-max), ``correct`` (pixels of both), ``as_background`` (pixels of the class predicted as the
            background), ``IoU`` (of the arg-max in this batch; NaN when neither has a pixel), ``own_prob``,
            ``background_prob`` and ``other_prob`` (mean predicted probability of the class itself, of the
            background and of all other classes together, on the class's pixels; NaN without pixels), ``target_mass``
            :math:`\\|y_c\\|_1`, ``pred_mass`` :math:`\\|x_c\\|_1`, ``I`` and ``U`` (batch-pooled L1 intersection
            and union), then the *push* of each term on the class's logits over the two pixel sets
            (:data:`SPLIT_COLUMNS`), ``ce_net``, ``jml_net`` and ``net``. A push is minus the gradient, summed
            over the pixels of the set: what one gradient-descent step (per unit learning rate) adds to the
            class's logits there; positive raises the class.
        ce_logits, jml_logits: ``(B, C, *spatial)`` gradients of the weighted CE and JML terms w.r.t. the logits.
        jml_probs: ``(B, C, *spatial)`` gradient of the weighted JML term w.r.t. the probabilities.
        up: bool ``(B, C, *spatial)``, valid pixels where the target is at least the prediction.
        label: ``(B, *spatial)`` the target's arg-max; mask: bool ``(B, *spatial)``, the valid pixels.
        ce_weight, jml_weight, smooth: the loss.
    """

    per_class: Any
    ce_logits: Tensor
    jml_logits: Tensor
    jml_probs: Tensor
    up: Tensor
    label: Tensor
    mask: Tensor
    ce_weight: float
    jml_weight: float
    smooth: float

    def collapsed(self) -> list[int]:
        """Classes that are labelled in the batch but predicted nowhere."""
        t = self.per_class
        return t.loc[(t["pixels"] > 0) & (t["predicted"] == 0), "class"].tolist()


@torch.no_grad()
def gradient_split(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, ce_weight: float = 0.25,
                   jml_weight: float = 0.75, smooth: float = 1.0, background: int | None = 0,
                   class_names: Sequence[str] | None = None) -> GradientSplit:
    r"""Split the gradient of the paper's soft-label loss w.r.t. each class's logits into its two terms and, per
    class, into the pixels that pull the class up and those that push it down.

    The loss is :math:`w_{CE}\,\mathrm{CE}(z, y) + w_J\,\mathrm{JML}(z, y)` with the JML of the paper's recipe:
    all classes, statistics pooled over the batch, smoothing :math:`s`, the mean over the :math:`C` classes.
    Per class, :math:`I_c = (\|x_c\|_1 + \|y_c\|_1 - \|x_c - y_c\|_1)/2` and
    :math:`U_c = (\|x_c\|_1 + \|y_c\|_1 + \|x_c - y_c\|_1)/2`, so a pixel's probability :math:`x_{c,i}` moves
    :math:`I_c` when it is below its target and :math:`U_c` when it is above:

    .. math::
        \frac{\partial\,\mathrm{JML}}{\partial x_{c,i}} = \frac{1}{C}\begin{cases}
            -\dfrac{1}{U_c + s} & x_{c,i} \le y_{c,i} \text{ (pull-up)}\\[1ex]
            +\dfrac{I_c + s}{(U_c + s)^2} & x_{c,i} > y_{c,i} \text{ (push-down)}\end{cases}

    Through the softmax, :math:`\partial/\partial z_{c,i} = x_{c,i}\,(g_{c,i} - \sum_k x_{k,i}\, g_{k,i})` with
    :math:`g` the gradient w.r.t. the probabilities: every JML push on a class's logit carries the factor
    :math:`x_{c,i}`. The soft cross-entropy, averaged over the :math:`N` valid pixels, has
    :math:`\partial/\partial z_{c,i} = (x_{c,i} - y_{c,i})/N`, which does not vanish with :math:`x_{c,i}`.

    The gradients are written out here (it is the lesson); the tests check them against autograd of
    :func:`jmlkit.losses.jaccard_metric_loss` and :func:`jmlkit.losses.soft_cross_entropy`.

    Args:
        logits: ``(B, C, *spatial)`` scores.
        target: ``(B, C, *spatial)`` soft target (probabilities), e.g. the boundary-smoothed labels.
        mask: bool ``(B, *spatial)``, ``False`` on ignored pixels.
        ce_weight, jml_weight: the weights of the two terms (the paper: 0.25 and 0.75).
        smooth: :math:`s` of the JML (1 in every training config of the paper).
        background: the background class (for the ``background_prob`` column), or ``None``.
        class_names: names of the ``C`` classes for the table.

    Returns:
        :class:`GradientSplit`.

    Example:
        >>> z = torch.zeros(1, 2, 1, 2)                                   # both classes at 0.5
        >>> y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])              # one pixel each
        >>> split = gradient_split(z, y, smooth=0.0)
        >>> split.per_class[["class", "ce_up", "ce_down", "jml_up", "jml_down"]].round(4).values.tolist()
        [[0.0, 0.0625, -0.0625, 0.0833, -0.0833], [1.0, 0.0625, -0.0625, 0.0833, -0.0833]]
    """
    import pandas as pd

    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError("Expected `logits` and `target` to be tensors, but got "
                        f"{type(logits).__name__} and {type(target).__name__}.")
    if not target.is_floating_point() or target.shape != logits.shape or logits.ndim < 3:
        raise ValueError("Expected a soft `target` (float probabilities) of the shape of `logits` (B, C, *spatial), "
                         f"but got {tuple(target.shape)} {target.dtype} for logits {tuple(logits.shape)}; turn hard "
                         "labels into soft ones first (jmlkit.targets.one_hot or boundary_label_smoothing).")
    ce_weight = check_real("ce_weight", ce_weight, low=0.0)
    jml_weight = check_real("jml_weight", jml_weight, low=0.0)
    smooth = check_real("smooth", smooth, low=0.0)
    B, C = logits.shape[:2]
    background = check_int("background", background, low=0, high=C - 1, optional=True)
    if logits.numel() == 0:
        raise ValueError(f"Expected a non-empty batch of logits, but got shape {tuple(logits.shape)}.")
    z = logits.detach().double().reshape(B, C, -1)
    y = target.detach().double().reshape(B, C, -1)
    m = (torch.ones(B, z.shape[2], dtype=torch.bool, device=z.device) if mask is None
         else mask.reshape(B, -1).to(z.device).bool())
    mf = m.unsqueeze(1).double()
    x = torch.softmax(z, 1)
    # the batch-pooled sums of jmlkit.losses (the same function the loss uses)
    st = region_statistics(z, y, m, need=("sx", "sy", "sd"))
    sx, sy, sd = (st[k].sum(0) for k in ("sx", "sy", "sd"))
    inter, union = (sx + sy - sd) / 2, (sx + sy + sd) / 2
    up = (x <= y) & m.unsqueeze(1)
    g = torch.where(x > y, ((inter + smooth) / (union + smooth) ** 2)[None, :, None],
                    (-1.0 / (union + smooth))[None, :, None]) * (jml_weight / C) * mf
    jml_z = x * (g - (x * g).sum(1, keepdim=True))
    n = m.sum().clamp_min(1)
    ce_z = ce_weight * (x - y) * mf / n

    def push(grad: Tensor, where: Tensor) -> np.ndarray:
        return (-(grad * where)).sum((0, 2)).cpu().numpy()

    down = (~up) & m.unsqueeze(1)
    label, pred = y.argmax(1), x.argmax(1)
    count = lambda v: torch.stack([((v == c) & m).sum() for c in range(C)]).cpu().numpy()  # noqa: E731
    both = torch.stack([((label == c) & (pred == c) & m).sum() for c in range(C)]).cpu().numpy()
    pixels, predicted = count(label), count(pred)
    either = pixels + predicted - both

    def mean_on_own(values: Tensor) -> np.ndarray:  # (B, N) values, mean over each class's own pixels
        sums = torch.stack([(values * ((label == c) & m)).sum() for c in range(C)]).cpu().numpy()
        return np.where(pixels > 0, sums / np.maximum(pixels, 1), np.nan)

    own = mean_on_own(x.gather(1, label.unsqueeze(1)).squeeze(1))
    as_bg = (torch.stack([((label == c) & (pred == background) & m).sum() for c in range(C)]).cpu().numpy()
             if background is not None else np.zeros(C, dtype=np.int64))
    bg = mean_on_own(x[:, background]) if background is not None else np.full(C, np.nan)
    if background is not None:
        bg[background] = np.nan
    table = pd.DataFrame({
        "class": np.arange(C),
        "name": list(class_names) if class_names is not None else [str(c) for c in range(C)],
        "pixels": pixels, "predicted": predicted, "correct": both, "as_background": as_bg,
        "IoU": np.where(either > 0, both / np.maximum(either, 1), np.nan),
        "own_prob": own, "background_prob": bg, "other_prob": 1.0 - own - np.nan_to_num(bg),
        "target_mass": sy.cpu().numpy(), "pred_mass": sx.cpu().numpy(),
        "I": inter.cpu().numpy(), "U": union.cpu().numpy(),
        "ce_up": push(ce_z, up), "ce_down": push(ce_z, down),
        "jml_up": push(jml_z, up), "jml_down": push(jml_z, down),
    })
    table["ce_net"] = table["ce_up"] + table["ce_down"]
    table["jml_net"] = table["jml_up"] + table["jml_down"]
    table["net"] = table["ce_net"] + table["jml_net"]
    shape = logits.shape
    return GradientSplit(per_class=table, ce_logits=ce_z.reshape(shape), jml_logits=jml_z.reshape(shape),
                         jml_probs=g.reshape(shape), up=up.reshape(shape), label=label.reshape(shape[:1] + shape[2:]),
                         mask=m.reshape(shape[:1] + shape[2:]), ce_weight=ce_weight, jml_weight=jml_weight,
                         smooth=smooth)


def _combine(splits: Sequence[GradientSplit]) -> GradientSplit:
    """Splits of several batches as one: sums of the counts, masses and pushes, means weighted by pixels."""
    if len(splits) == 1:
        return splits[0]
    tables = [sp.per_class for sp in splits]
    out = tables[0][["class", "name"]].copy()
    additive = ["pixels", "predicted", "correct", "as_background", "target_mass", "pred_mass", "I", "U", *SPLIT_COLUMNS]
    for col in additive:
        out[col] = sum(t[col].to_numpy() for t in tables)
    for col in ("own_prob", "background_prob", "other_prob"):
        weighted = sum(np.nan_to_num(t[col].to_numpy()) * t["pixels"].to_numpy() for t in tables)
        out[col] = np.where(out["pixels"] > 0, weighted / np.maximum(out["pixels"], 1), np.nan)
        if tables[0][col].isna().all():
            out[col] = np.nan
    either = out["pixels"] + out["predicted"] - out["correct"]
    out["IoU"] = np.where(either > 0, out["correct"] / np.maximum(either, 1), np.nan)
    out["ce_net"] = out["ce_up"] + out["ce_down"]
    out["jml_net"] = out["jml_up"] + out["jml_down"]
    out["net"] = out["ce_net"] + out["jml_net"]
    out = out[list(tables[0].columns)]
    first = splits[0]
    cat = lambda name: torch.cat([getattr(sp, name) for sp in splits])  # noqa: E731
    return GradientSplit(per_class=out, ce_logits=cat("ce_logits"), jml_logits=cat("jml_logits"),
                         jml_probs=cat("jml_probs"), up=cat("up"), label=cat("label"), mask=cat("mask"),
                         ce_weight=first.ce_weight, jml_weight=first.jml_weight, smooth=first.smooth)


def recipe_gradients(model: torch.nn.Module, batch: Mapping[str, Any], config: Any, *, batch_size: int | None = None,
                     ce_weight: float = 0.25, jml_weight: float = 0.75, smooth: float = 1.0,
                     background: int | None = 0) -> GradientSplit:
    """:func:`gradient_split` of a trained model on a batch, with the soft target that ``config``'s label mode
    builds in training (``labels="ls"``: its smoothing, ε and window), whatever loss the model was trained with:
    the paper's loss is evaluated at this model's prediction (model in eval mode).

    Args:
        model: the network (e.g. :func:`jmlkit.experiments.load_model` of a run folder).
        batch: ``{"image": (B, ...), "label": (B, *spatial)}`` plus ``num_classes``, ``class_names`` and
            ``ignore_index`` (:func:`jmlkit.experiments.examples`).
        config: the :class:`~jmlkit.engine.TrainConfig` whose label mode builds the target.
        batch_size: the loss pools its statistics over this many images, as in training (the per-pixel JML
            gradient scales with 1/U of the pooled batch); the batch is cut into such chunks, each split on its
            own, and the tables summed (counts, masses, pushes; probabilities averaged over the pixels).
            ``None``: the whole batch at once.
        ce_weight, jml_weight, smooth, background: as in :func:`gradient_split`.
    """
    from jmlkit.engine.objectives import ObjectiveContext, build_objective
    from jmlkit.losses import get_loss

    n = int(batch["image"].shape[0])
    batch_size = n if batch_size is None else check_int("batch_size", batch_size, low=1)
    device = next(model.parameters()).device
    ctx = ObjectiveContext(config, get_loss("ce"), num_classes=batch["num_classes"],
                           ignore_index=batch.get("ignore_index"), device=device)
    objective = build_objective(ctx)
    splits = []
    was = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            images = batch["image"][start:start + batch_size].to(device)
            labels = batch["label"][start:start + batch_size]
            target, mask = objective.target({"label": labels}, images)
            if not target.is_floating_point():  # hard labels: the one-hot target
                from jmlkit.targets import one_hot

                target, mask = one_hot(target, batch["num_classes"], ignore_index=batch.get("ignore_index"))
            with torch.no_grad():
                logits = model(images).float()
            splits.append(gradient_split(logits, target, mask, ce_weight=ce_weight, jml_weight=jml_weight,
                                         smooth=smooth, background=background,
                                         class_names=batch.get("class_names") or None))
    finally:
        model.train(was)
    return _combine(splits)


def tug_summary(split: GradientSplit, *, background: int | None = 0) -> dict[str, Any]:
    """The headline numbers of a :class:`GradientSplit` for the findings of notebook 02b.

    Returns a dict with ``collapsed`` (names of the object classes labelled but predicted nowhere), over those
    classes the mean ``own_prob``, ``background_prob`` and ``other_prob`` on their pixels (weighted by pixels),
    ``as_background`` (the share of their pixels predicted as the background) and the summed ``ce_net`` and
    ``jml_net`` and the number of them each term pushes down (``jml_down_classes``, ``ce_down_classes``);
    ``jml_to_ce``: over the object classes, the JML term's total push (pull-up plus push-down, in absolute value)
    divided by the CE term's; ``background_ce_net``, ``background_jml_net``: the net push of each term on the
    background's logits, and ``background_ce_at_objects``, ``background_jml_at_objects``: the same summed over the
    pixels labelled with an object class only (NaN without a background).

    Example:
        >>> y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])             # one pixel of each class
        >>> s = tug_summary(gradient_split(torch.zeros(1, 2, 1, 2), y))   # 50/50: the arg-max tie goes to class 0
        >>> s["collapsed"], s["own_prob"], s["as_background"], round(s["jml_to_ce"], 2)
        (['1'], 0.5, 1.0, 0.96)
    """
    t = split.per_class
    objects = t if background is None else t[t["class"] != background]
    bad = objects[(objects["pixels"] > 0) & (objects["predicted"] == 0)]
    w = bad["pixels"].to_numpy(float)

    def mean(col: str) -> float:
        v = bad[col].to_numpy(float)
        ok = np.isfinite(v)
        return float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() and w[ok].sum() > 0 else float("nan")

    ce_total = float(objects["ce_up"].abs().sum() + objects["ce_down"].abs().sum())
    jml_total = float(objects["jml_up"].abs().sum() + objects["jml_down"].abs().sum())
    bg = t[t["class"] == background] if background is not None else t.iloc[:0]
    if background is not None:
        at_objects = (split.label != background) & split.mask
        bg_ce_obj = float(-(split.ce_logits[:, background] * at_objects).sum())
        bg_jml_obj = float(-(split.jml_logits[:, background] * at_objects).sum())
    else:
        bg_ce_obj = bg_jml_obj = float("nan")
    return {
        "collapsed": [str(v) for v in bad["name"]],
        "own_prob": mean("own_prob"), "background_prob": mean("background_prob"), "other_prob": mean("other_prob"),
        "as_background": float(bad["as_background"].sum() / w.sum()) if w.sum() > 0 else float("nan"),
        "ce_net": float(bad["ce_net"].sum()), "jml_net": float(bad["jml_net"].sum()),
        "ce_down_classes": int((bad["ce_net"] < 0).sum()), "jml_down_classes": int((bad["jml_net"] < 0).sum()),
        "jml_to_ce": jml_total / ce_total if ce_total > 0 else float("nan"),
        "background_ce_net": float(bg["ce_net"].sum()) if len(bg) else float("nan"),
        "background_jml_net": float(bg["jml_net"].sum()) if len(bg) else float("nan"),
        "background_ce_at_objects": bg_ce_obj, "background_jml_at_objects": bg_jml_obj,
    }
