r"""Objectives: one class per label mode, turning a batch into a loss and a dict of logged terms.

The training loop knows nothing about label modes: every step it calls
``loss, terms = objective(net, batch, step)``, back-propagates ``loss``, steps the optimiser and
calls ``objective.after_step(model)``. What a label mode feeds the loss lives here:

==================  ===============  ===============================================================
objective           ``labels=``      target passed to the loss
==================  ===============  ===============================================================
:class:`Hard`       ``"hard"``       the int64 labels ``y`` (``ignore_index`` pixels do not count)
:class:`Smoothing`  ``"ls"``         :func:`~jmlkit.targets.label_smoothing`
                                     :math:`(1-\varepsilon)e_y + \varepsilon/K`, or
                                     :func:`~jmlkit.targets.boundary_label_smoothing`
                                     (``smoothing="boundary"``)
:class:`Distillation` ``"kd"``       the paper's four terms (:class:`~jmlkit.losses.JMLDistillationLoss`:
                                     CE and KL, JML on the labels and on the teacher's probabilities), or
                                     one mixed target :math:`(1-w)\,\mathrm{softmax}(z_t/T) + w\,e_y`
:class:`SoftLabels` ``"soft"``       the data set's own soft labels ``item["soft"]``
:class:`SemiSupervised` ``"ssl"``    another objective on the labelled batch (:class:`Hard` by
                                     default) plus :math:`\lambda\,` loss on
                                     :func:`~jmlkit.targets.pseudo_labels` of an unlabelled batch
                                     (FixMatch: the model's own prediction on a weak view, trained on
                                     a strong view; ``"ema"``: a mean teacher's), pixels below the
                                     confidence threshold masked out
==================  ===============  ===============================================================

A new label mode is one new class registered by name (:func:`register_objective`, into the table of
:mod:`jmlkit.engine.registry`), with no edit to the loop; ``TrainConfig(labels=name)`` accepts it at once.
An objective that needs a teacher gets the model itself (``ObjectiveContext.teacher``), loaded once by
:func:`~jmlkit.engine.preflight`; nothing here reads a checkpoint.

Example:
    >>> import torch
    >>> from jmlkit.engine import TrainConfig
    >>> from jmlkit.losses import get_loss
    >>> ctx = ObjectiveContext(TrainConfig(labels="ls", smoothing="uniform", epsilon=0.3), get_loss("jml"), num_classes=3,
    ...                        ignore_index=255, device=torch.device("cpu"))
    >>> obj = build_objective(ctx)
    >>> type(obj).__name__
    'Smoothing'
    >>> target, mask = obj.target({"label": torch.tensor([[[0, 2]]])}, images=None)
    >>> [round(v, 6) for v in target[0, :, 0, 0].tolist()]
    [0.8, 0.1, 0.1]
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from jmlkit.engine.registry import OBJECTIVES, label_modes, register
from jmlkit.engine.runtime import autocast

__all__ = [
    "Objective",
    "ObjectiveContext",
    "Hard",
    "Smoothing",
    "Distillation",
    "SoftLabels",
    "SemiSupervised",
    "OBJECTIVES",
    "register_objective",
    "label_modes",
    "build_objective",
]


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: make an :class:`Objective` subclass the label mode ``name`` (in :data:`OBJECTIVES`, the
    table of :mod:`jmlkit.engine.registry`; :func:`label_modes` lists them)."""

    def deco(cls: type[Objective]) -> type[Objective]:
        register(name, cls, base=Objective)
        cls.name = name
        return cls

    return deco


@dataclass
class ObjectiveContext:
    """What an objective may use: the run's config, loss, classes, device, and the models it needs.

    Attributes:
        config: the :class:`~jmlkit.engine.TrainConfig` of the run.
        loss_fn: the loss module (``loss_fn(logits, target[, mask=mask])``).
        num_classes, ignore_index: of the training data.
        device: where batches go.
        model: the trained model itself (not a DDP wrapper); the mean teacher copies it.
        teacher: the frozen teacher model (distillation), on ``device`` in eval mode; loaded once, by
            :func:`~jmlkit.engine.preflight`.
        generator: the run's CPU generator for augmentations (semi-supervised views).
        total_steps: optimisation steps of the whole run.
        distributed: the run is one of several DDP processes (region statistics are then pooled across them).
    """

    config: Any
    loss_fn: nn.Module
    num_classes: int
    ignore_index: int | None
    device: torch.device
    model: nn.Module | None = None
    teacher: nn.Module | None = None
    generator: torch.Generator | None = None
    total_steps: int = 0
    distributed: bool = False


class Objective:
    """Base class: a label mode. Subclasses give :meth:`target`; most keep :meth:`__call__`.

    Class attributes:
        name: the label mode (set by :func:`register_objective`).
        terms: names of the extra logged terms that :meth:`__call__` returns (history columns).
        needs_unlabeled: the run must provide unlabelled data.
        needs_teacher: the run must provide a teacher model.
        needs_soft: the data items must have a ``"soft"`` label.
    """

    name: ClassVar[str] = ""
    terms: ClassVar[tuple[str, ...]] = ()
    needs_unlabeled: ClassVar[bool] = False
    needs_teacher: ClassVar[bool] = False
    needs_soft: ClassVar[bool] = False

    def __init__(self, ctx: ObjectiveContext) -> None:
        self.ctx = ctx

    def target(self, batch: Mapping[str, Tensor], images: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The target and pixel mask (``None``: the loss's own ``ignore_index``) of a labelled batch."""
        raise NotImplementedError

    def loss(self, logits: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        """The loss of float32 logits against a target (and mask)."""
        logits = logits.float()
        if mask is None:
            return self.ctx.loss_fn(logits, target)
        return self.ctx.loss_fn(logits, target, mask=mask)

    def __call__(self, net: nn.Module, batch: Mapping[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        """``(loss, terms)`` of one training batch; ``net`` is the (maybe DDP-wrapped) model."""
        images = batch["image"].to(self.ctx.device, non_blocking=True)
        target, mask = self.target(batch, images)
        with autocast(self.ctx.device, self.ctx.config.amp):
            logits = net(images)
        return self.loss(logits, target, mask), {}

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimiser step (the mean teacher's update)."""

    def prepare(self, batches: Any) -> None:
        """Called once before the first step with the run's training batches (a
        :class:`~jmlkit.engine.data.TensorBatches` or a :class:`~jmlkit.engine.data.Cycle`): the place to add
        per-item tensors that do not change during the run (the frozen teacher's logits)."""

    def _labels(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch["label"].to(self.ctx.device, non_blocking=True).long()


@register_objective("hard")
class Hard(Objective):
    """Hard labels as they are: the int64 label map goes to the loss."""

    def target(self, batch, images):
        return self._labels(batch), None


@register_objective("ls")
class Smoothing(Objective):
    r"""Label smoothing: uniform :math:`(1-\varepsilon)e_y + \varepsilon/K`, or on class boundaries only."""

    def target(self, batch, images):
        from jmlkit import targets as T

        cfg, ctx = self.ctx.config, self.ctx
        labels = self._labels(batch)
        if cfg.smoothing == "boundary":
            st = T.boundary_label_smoothing(labels, ctx.num_classes, cfg.epsilon, kernel_size=cfg.boundary_kernel,
                                            ignore_index=ctx.ignore_index)
        else:
            st = T.label_smoothing(labels, ctx.num_classes, cfg.epsilon, ignore_index=ctx.ignore_index)
        return st.soft, st.mask


#: The key of the frozen teacher's logits in a training batch (:meth:`Distillation.prepare`), and the most memory
#: (bytes, float32 on the host) that the logits of all training items may take to be computed once.
TEACHER_LOGITS = "teacher_logits"
TEACHER_CACHE_BYTES = 1 << 30


@register_objective("kd")
class Distillation(Objective):
    r"""Knowledge distillation from a frozen teacher, in one of two forms (``kd_form``):

    * ``"terms"`` (the paper's, default): :class:`jmlkit.losses.JMLDistillationLoss`,
      :math:`w_{ce}[\lambda\,CE(s, y) + \tau T^2 KL(p_t^T \| p_s^T)] + w_{r}[\lambda\,JML(s, y) + \tau\,JML(s, p_t^T)]`
      with :math:`\lambda` = ``kd_label_weight``, :math:`\tau` = ``kd_teacher_weight``, :math:`T` =
      ``kd_temperature``; ``loss`` picks the weights: ``"ce"`` (1, 0), ``"jml"`` (0, 1), ``"ce+jml"``
      (0.25, 0.75, or ``loss_kwargs`` ``ce_weight``/``region_weight``); other ``loss_kwargs`` go to the JML terms.
    * ``"mixed"`` (ours): one target :math:`(1-w)\,\mathrm{softmax}(z_t/T) + w\,e_y` (:math:`w` =
      ``kd_label_weight``) through the run's ``loss``.
    """

    needs_teacher = True

    def __init__(self, ctx: ObjectiveContext) -> None:
        super().__init__(ctx)
        self.kd_loss: nn.Module | None = None
        if ctx.config.kd_form == "terms":
            self.kd_loss = _distillation_loss(ctx)

    def _run_teacher(self, images: Tensor) -> Tensor:
        ctx = self.ctx
        if ctx.teacher is None:
            raise ValueError("Expected a teacher model for labels='kd', but got None.")
        with torch.no_grad(), autocast(ctx.device, ctx.config.amp):
            t_logits = ctx.teacher(images)
        if t_logits.shape[1] != ctx.num_classes:
            raise ValueError(f"Expected the teacher to output {ctx.num_classes} classes, but it gives {t_logits.shape[1]}.")
        return t_logits.float()

    def _teacher_logits(self, batch: Mapping[str, Tensor], images: Tensor) -> Tensor:
        cached = batch.get(TEACHER_LOGITS)
        if cached is not None:
            return cached.to(self.ctx.device, non_blocking=True)
        return self._run_teacher(images)

    def prepare(self, batches: Any) -> None:
        """The frozen teacher's logits of every training item, computed once, when the batches are sliced from
        stacked tensors (:class:`~jmlkit.engine.data.TensorBatches`: items without a random transform, the same
        image every pass) and they take at most :data:`TEACHER_CACHE_BYTES`; each batch then carries its rows of
        them (key ``"teacher_logits"``) instead of a teacher forward per step. The teacher is in eval mode and
        each item's logits do not depend on the other items of its batch, so the run is the same."""
        from jmlkit.engine.data import TensorBatches

        if not isinstance(batches, TensorBatches) or TEACHER_LOGITS in batches.tensors:
            return
        images = batches.tensors["image"]
        rows = batches.rows()
        shape = (len(images), self.ctx.num_classes, *images.shape[2:])
        if math.prod(shape) * 4 > TEACHER_CACHE_BYTES:  # float32
            return
        cache = torch.empty(shape, dtype=torch.float32)
        size = batches.batch_rows()
        for chunk in rows.split(size):
            # in batches of the training's size (a smaller last one padded with other rows): a convolution's result
            # for one item can differ in its last bit with the batch size, not with the other items of the batch
            padded = torch.cat([chunk, rows[:size - len(chunk)]]) if len(chunk) < size else chunk
            logits = self._run_teacher(images.index_select(0, padded).to(self.ctx.device, non_blocking=True))
            cache.index_copy_(0, chunk, logits[:len(chunk)].cpu())
        batches.tensors[TEACHER_LOGITS] = cache

    def target(self, batch, images):
        from jmlkit import targets as T

        cfg, ctx = self.ctx.config, self.ctx
        labels = self._labels(batch)
        st = T.distillation_targets(self._teacher_logits(batch, images), temperature=cfg.kd_temperature, target=labels,
                                    label_weight=cfg.kd_label_weight, ignore_index=ctx.ignore_index)
        return st.soft, st.mask

    def __call__(self, net, batch, step):
        if self.kd_loss is None:
            return super().__call__(net, batch, step)
        images = batch["image"].to(self.ctx.device, non_blocking=True)
        labels = self._labels(batch)
        t_logits = self._teacher_logits(batch, images)
        with autocast(self.ctx.device, self.ctx.config.amp):
            logits = net(images)
        return self.kd_loss(logits.float(), t_logits, labels), {}


def _distillation_loss(ctx: ObjectiveContext) -> nn.Module:
    """The paper's four-term distillation loss for a run's config (``loss`` picks the CE/region weights)."""
    from jmlkit.losses import JMLDistillationLoss
    from jmlkit.losses._names import loss_key

    cfg = ctx.config
    options = dict(cfg.loss_kwargs)
    key = loss_key(cfg.loss, "loss")
    weights = {"ce": (1.0, 0.0), "jml": (0.0, 1.0), "jml1": (0.0, 1.0),
               "ce+jml": (options.pop("ce_weight", 0.25), options.pop("region_weight", 0.75))}
    weights["ce+jml1"] = weights["ce+jml"]
    if key not in weights:
        raise ValueError(f"Expected `loss` to be one of ('ce', 'jml', 'ce+jml') with kd_form='terms', but got {cfg.loss!r}; "
                         "use kd_form='mixed' for other losses.")
    ce_weight, region_weight = weights[key]
    options.setdefault("ignore_index", ctx.ignore_index)
    if ctx.distributed:
        options["sync_distributed"] = True
    return JMLDistillationLoss(temperature=cfg.kd_temperature, label_weight=cfg.kd_label_weight,
                               teacher_weight=cfg.kd_teacher_weight, ce_weight=ce_weight, region_weight=region_weight,
                               **options)


@register_objective("ssl")
class SemiSupervised(Objective):
    r"""Another objective on labelled batches plus :math:`\lambda\cdot` loss on pseudo-labels of unlabelled ones.

    FixMatch (``ssl_method="fixmatch"``): the model's own prediction on a weak view (flips) of an
    unlabelled batch, thresholded at ``ssl_threshold``, is the target of its prediction on a strong
    view (photometric jitter, noise, cut-out) of the same images (:func:`jmlkit.data.transforms.weak_view`,
    :func:`~jmlkit.data.transforms.strong_view`, drawn from the run's generator). ``"ema"``: a mean teacher
    (exponential moving average of the model's weights) predicts instead. Pseudo-labels start after
    ``ssl_warmup`` of all steps; before that a step is the labelled objective alone.

    Logged terms: ``sup_loss`` (the labelled loss, every step), ``unsup_loss`` and ``mask_ratio`` (share of
    unlabelled pixels above the threshold). Before the warm-up ends the unlabelled terms are NaN, *missing*:
    the loop averages each term over the steps that logged a number, so an epoch entirely before the warm-up
    has NaN and an epoch across it the mean of the steps after it.
    """

    terms = ("sup_loss", "unsup_loss", "mask_ratio")
    needs_unlabeled = True

    def __init__(self, ctx: ObjectiveContext, inner: Objective | None = None) -> None:
        super().__init__(ctx)
        self.inner = inner if inner is not None else Hard(ctx)
        self.unlabeled: Any = None  # an endless iterator of unlabelled batches (``.next()``), set by the loop
        self.start = int(math.ceil(ctx.config.ssl_warmup * ctx.total_steps))
        self.ema: nn.Module | None = None
        if ctx.config.ssl_method == "ema":
            if ctx.model is None:
                raise ValueError("Expected the model in the ObjectiveContext for ssl_method='ema', but got None.")
            self.ema = copy.deepcopy(ctx.model).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)

    def target(self, batch, images):
        return self.inner.target(batch, images)

    def pseudo_targets(self, u_images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(strong view, soft pseudo-labels, mask)`` of an unlabelled batch."""
        from jmlkit import targets as T
        from jmlkit.data.transforms import strong_view, weak_view

        cfg, ctx = self.ctx.config, self.ctx
        weak = weak_view(u_images, ctx.generator)
        strong = strong_view(weak, ctx.generator)
        pseudo_model = self.ema if self.ema is not None else ctx.model
        with torch.no_grad(), autocast(ctx.device, cfg.amp):
            was = pseudo_model.training
            pseudo_model.eval()
            p_logits = pseudo_model(weak)
            pseudo_model.train(was)
        pseudo = T.pseudo_labels(p_logits.float(), threshold=cfg.ssl_threshold, soft=cfg.ssl_soft,
                                 temperature=cfg.ssl_temperature)
        return strong, pseudo.soft, pseudo.mask

    def __call__(self, net, batch, step):
        if step < self.start:  # pseudo-labels of a network that has learnt nothing yet are noise
            loss, terms = self.inner(net, batch, step)
            return loss, {**terms, "sup_loss": float(loss.detach()), "unsup_loss": math.nan, "mask_ratio": math.nan}
        cfg, ctx = self.ctx.config, self.ctx
        images = batch["image"].to(ctx.device, non_blocking=True)
        u_images = self.unlabeled.next()["image"].to(ctx.device, non_blocking=True)
        strong, pseudo_soft, pseudo_mask = self.pseudo_targets(u_images)
        with autocast(ctx.device, cfg.amp):
            all_logits = net(torch.cat([images, strong]))
        logits, u_logits = all_logits[: images.shape[0]], all_logits[images.shape[0]:]
        target, mask = self.inner.target(batch, images)
        sup = self.inner.loss(logits, target, mask)
        unsup = self.inner.loss(u_logits, pseudo_soft, pseudo_mask)
        loss = sup + cfg.ssl_weight * unsup
        return loss, {"sup_loss": float(sup.detach()), "unsup_loss": float(unsup.detach()),
                      "mask_ratio": float(pseudo_mask.float().mean())}

    def after_step(self, model):
        if self.ema is not None:
            _ema_update(self.ema, model, self.ctx.config.ema_decay)


@register_objective("soft")
class SoftLabels(Objective):
    """The data set's own soft labels (``item["soft"]``: coverage, annotator averages, tissue probabilities)."""

    needs_soft = True

    def target(self, batch, images):
        labels = self._labels(batch)
        soft = batch["soft"].to(self.ctx.device, non_blocking=True).float()
        ii = self.ctx.ignore_index
        mask = labels != ii if ii is not None else torch.ones_like(labels, dtype=torch.bool)
        return soft, mask


def build_objective(ctx: ObjectiveContext) -> Objective:
    """The objective of ``ctx.config.labels``."""
    name = ctx.config.labels
    if name not in OBJECTIVES:
        raise ValueError(f"Expected `labels` to be one of {label_modes()}, but got {name!r}.")
    return OBJECTIVES[name](ctx)


@torch.no_grad()
def _ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)
