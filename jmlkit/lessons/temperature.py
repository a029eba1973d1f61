r"""Notebook 03: what the temperature :math:`T` of distillation does to the teacher's target, to the two teacher
terms of the paper's JML-KD and to their gradients with respect to the student's logits.

With :math:`z_s, z_t` the student's and the teacher's logits, :math:`q^T = \mathrm{softmax}(z / T)` and
:math:`p_s = \mathrm{softmax}(z_s)`, the two terms are those of :func:`jmlkit.losses.jml_distillation_loss`, each
computed by that function alone (its weights set so that only one term is left):

* ``"kl"``: :math:`T^2\,\mathrm{KL}(q_t^T \,\|\, q_s^T)`, averaged over the valid pixels;
* ``"jml"``: :math:`\mathrm{JML}(p_s, q_t^T)`, the Jaccard metric loss of the student's probabilities at
  temperature 1 against the teacher's at :math:`T`, on all classes.

The gradients come from autograd. Per pixel the KL term's is :math:`T\,(q_s^T - q_t^T) / N` (``N`` valid pixels), so
it keeps its size as :math:`T` grows, while the target of the JML term flattens toward the uniform vector and pulls
the student's probabilities with it.

Nothing here draws: :class:`jmlkit.plot.TemperaturePlot` shows these results.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from jmlkit._checks import check_ignore_index, check_int, check_real
from jmlkit.lessons._threads import one_thread
from jmlkit.losses import jml_distillation_loss

__all__ = ["TERMS", "TEMPERATURES", "one_thread", "model_logits", "TemperatureState", "temperature_terms",
           "TemperatureSweep", "temperature_sweep", "pick_pixels"]

#: The two teacher terms of JML-KD, in the order they are drawn.
TERMS = ("kl", "jml")
#: The weights of :func:`~jmlkit.losses.jml_distillation_loss` that leave one term alone.
_WEIGHTS = {"kl": dict(ce_weight=1.0, region_weight=0.0, label_weight=0.0, teacher_weight=1.0),
            "jml": dict(ce_weight=0.0, region_weight=1.0, label_weight=0.0, teacher_weight=1.0)}
#: The temperatures of :func:`temperature_sweep` by default: 1/2 to 16, eight per octave.
TEMPERATURES = tuple(float(2.0 ** (k / 8)) for k in range(-8, 33))


def model_logits(model: nn.Module, images: Tensor, *, batch_size: int = 32) -> Tensor:
    """The logits of ``model`` on ``images`` ``(B, C_in, H, W)``, in eval mode and without gradients (the model's
    mode is restored), as float32 on the CPU.

    Example:
        >>> conv = nn.Conv2d(3, 2, 1)
        >>> model_logits(conv, torch.zeros(5, 3, 4, 4), batch_size=2).shape
        torch.Size([5, 2, 4, 4])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    if not isinstance(images, Tensor):
        raise TypeError(f"Expected `images` to be a tensor (B, C_in, *spatial), but got {type(images).__name__}.")
    if images.ndim < 3 or len(images) == 0:
        raise ValueError(f"Expected `images` of shape (B, C_in, *spatial) with B >= 1, but got {tuple(images.shape)}.")
    batch_size = check_int("batch_size", batch_size, low=1)
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(images[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def _inputs(student_logits: Any, teacher_logits: Any, target: Any, ignore_index: Any) -> tuple[Tensor, Tensor, Tensor,
                                                                                                int | None]:
    """The logits detached (student as float64 when it is float64, else float32), a hard target, the ignore index."""
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(z, Tensor) or not z.is_floating_point():
            raise TypeError(f"Expected `{name}` to be a float tensor (B, C, *spatial), but got "
                            f"{z.dtype if isinstance(z, Tensor) else type(z).__name__}.")
    if student_logits.shape != teacher_logits.shape or student_logits.ndim < 3 or student_logits.shape[1] < 2:
        raise ValueError("Expected `student_logits` and `teacher_logits` of one shape (B, C, *spatial) with C >= 2, "
                         f"but got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}.")
    ignore_index = check_ignore_index(ignore_index)
    if target is None:  # only the valid pixels matter (no label term): every pixel counts
        target = teacher_logits.argmax(1)
    dtype = torch.float64 if student_logits.dtype == torch.float64 else torch.float32
    return (student_logits.detach().to(dtype), teacher_logits.detach().to(dtype), target, ignore_index)


def _term(name: str, student: Tensor, teacher: Tensor, target: Tensor, temperature: float,
          ignore_index: int | None) -> tuple[Tensor, Tensor]:
    """``(value, d value / d student logits)`` of one term, by :func:`~jmlkit.losses.jml_distillation_loss`."""
    z = student.clone().requires_grad_(True)
    value = jml_distillation_loss(z, teacher, target, temperature=temperature, ignore_index=ignore_index,
                                  **_WEIGHTS[name])
    (grad,) = torch.autograd.grad(value, z)
    return value.detach(), grad


def _valid(target: Tensor, ignore_index: int | None) -> Tensor:
    return target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)


@dataclass(frozen=True)
class TemperatureState:
    """The teacher's target, the two terms and their gradients at one temperature (:func:`temperature_terms`).

    ``teacher_probs`` and ``student_probs`` (at temperature 1) are ``(B, C, *spatial)``; ``values[term]`` is a float
    and ``grads[term]`` the gradient ``(B, C, *spatial)`` of the term with respect to the student's logits,
    ``grad_rms[term]`` its size as in :class:`TemperatureSweep`; ``valid`` marks the ``n_valid`` pixels that count.
    """

    temperature: float
    teacher_probs: Tensor
    student_probs: Tensor
    values: dict[str, float]
    grads: dict[str, Tensor]
    grad_rms: dict[str, float]
    valid: Tensor
    n_valid: int


def temperature_terms(student_logits: Tensor, teacher_logits: Tensor, temperature: float, *,
                      target: Tensor | None = None, ignore_index: int | None = None) -> TemperatureState:
    r"""The teacher's probabilities :math:`q_t^T`, the KL term :math:`T^2\,\mathrm{KL}(q_t^T\|q_s^T)` and the JML
    term :math:`\mathrm{JML}(p_s, q_t^T)` of :func:`~jmlkit.losses.jml_distillation_loss` at ``temperature``, with
    their gradients with respect to ``student_logits`` (autograd).

    Args:
        student_logits, teacher_logits: float ``(B, C, *spatial)`` of one shape (detached here; a float64 student
            is computed in float64).
        temperature: :math:`T > 0`.
        target: optional hard labels ``(B, *spatial)``: only which pixels are valid matters (no label term).
        ignore_index: label value of ``target`` for pixels that count in no term.

    Example:
        >>> z_t = torch.tensor([[[[2.0]], [[0.0]]]])           # one pixel, two classes
        >>> s = temperature_terms(torch.zeros(1, 2, 1, 1), z_t, 2.0)
        >>> [round(float(v), 4) for v in s.teacher_probs.flatten()]   # softmax(z_t / 2)
        [0.7311, 0.2689]
        >>> round(s.values["kl"], 4), round(float(s.grads["kl"][0, 0]), 4)   # T (q_s - q_t) = 2 (0.5 - 0.7311)
        (0.4438, -0.4621)
    """
    temperature = check_real("temperature", temperature, low=0.0, low_open=True)
    student, teacher, target, ignore_index = _inputs(student_logits, teacher_logits, target, ignore_index)
    values, grads = {}, {}
    with one_thread():
        for name in TERMS:
            value, grads[name] = _term(name, student, teacher, target, temperature, ignore_index)
            values[name] = float(value)
    valid = _valid(target, ignore_index)
    n_valid = int(valid.sum())
    return TemperatureState(temperature=temperature, teacher_probs=torch.softmax(teacher / temperature, 1),
                            student_probs=torch.softmax(student, 1), values=values, grads=grads,
                            grad_rms={k: _grad_rms(g, valid, n_valid) for k, g in grads.items()}, valid=valid,
                            n_valid=n_valid)


@dataclass(frozen=True)
class TemperatureSweep:
    """The two terms over a range of temperatures (:func:`temperature_sweep`).

    ``temperatures`` ``(K,)``; ``values[term]`` ``(K,)``; ``grad_rms[term]`` ``(K,)``, the root mean square over the
    valid pixels of ``N`` times the gradient's norm at each pixel (``N`` valid pixels: the KL term's mean makes
    ``N`` times its gradient the per-pixel gradient :math:`T(q_s^T - q_t^T)`); ``confidence`` ``(K,)``, the
    teacher's mean largest probability at each temperature; ``pixel_grads[term]`` ``(K, P, C)``, the gradient at
    each of the ``P`` pixels asked for.
    """

    temperatures: Tensor
    values: dict[str, Tensor]
    grad_rms: dict[str, Tensor]
    confidence: Tensor
    pixel_grads: dict[str, Tensor]
    n_valid: int


def _grad_rms(grad: Tensor, valid: Tensor, n_valid: int) -> float:
    if n_valid == 0:
        return 0.0
    per_pixel = (n_valid * grad).square().sum(1)
    return float(per_pixel[valid].mean().sqrt())


def temperature_sweep(student_logits: Tensor, teacher_logits: Tensor, temperatures: Sequence[float] = TEMPERATURES, *,
                      target: Tensor | None = None, ignore_index: int | None = None,
                      pixels: Sequence[Sequence[int]] = ()) -> TemperatureSweep:
    """:func:`temperature_terms` at each of ``temperatures`` (positive, increasing): the curves of the terms, of the
    size of their gradients and of the teacher's confidence, and the gradients at ``pixels`` (indices
    ``(b, *spatial)``, e.g. of :func:`pick_pixels`).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> z_s, z_t = torch.randn(2, 3, 4, 4, generator=g), 3 * torch.randn(2, 3, 4, 4, generator=g)
        >>> sweep = temperature_sweep(z_s, z_t, [0.5, 1.0, 4.0])
        >>> bool((sweep.confidence.diff() < 0).all())        # the teacher flattens as T grows
        True
    """
    ts = [check_real(f"temperatures[{i}]", t, low=0.0, low_open=True) for i, t in enumerate(temperatures)]
    if not ts or any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f"Expected `temperatures` to be a non-empty increasing sequence of numbers > 0, "
                         f"but got {list(temperatures)!r:.120}.")
    student, teacher, target, ignore_index = _inputs(student_logits, teacher_logits, target, ignore_index)
    index = _pixel_index(pixels, target.shape)
    valid = _valid(target, ignore_index)
    n_valid = int(valid.sum())
    values = {name: [] for name in TERMS}
    rms = {name: [] for name in TERMS}
    at_pixels = {name: [] for name in TERMS}
    confidence = []
    with one_thread():
        for t in ts:
            for name in TERMS:
                value, grad = _term(name, student, teacher, target, t, ignore_index)
                values[name].append(float(value))
                rms[name].append(_grad_rms(grad, valid, n_valid))
                at_pixels[name].append(grad.movedim(1, -1)[index])
            top = torch.softmax(teacher / t, 1).amax(1)
            confidence.append(float(top[valid].mean()) if n_valid else float("nan"))
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return TemperatureSweep(temperatures=as_tensor(ts), values={k: as_tensor(v) for k, v in values.items()},
                            grad_rms={k: as_tensor(v) for k, v in rms.items()}, confidence=as_tensor(confidence),
                            pixel_grads={k: torch.stack(v) for k, v in at_pixels.items()}, n_valid=n_valid)


def _pixel_index(pixels: Any, shape: Sequence[int]) -> tuple[Tensor, ...]:
    """``pixels`` (indices ``(b, *spatial)`` into ``shape``) as one advanced index per dimension."""
    if isinstance(pixels, (str, bytes)) or not isinstance(pixels, Sequence):
        raise TypeError(f"Expected `pixels` to be a sequence of indices (b, *spatial), but got {pixels!r:.80}.")
    rows = []
    for i, p in enumerate(pixels):
        if not isinstance(p, Sequence) or len(p) != len(shape):
            raise ValueError(f"Expected `pixels[{i}]` to be an index of {len(shape)} ints (b, *spatial), "
                             f"but got {p!r}.")
        rows.append([check_int(f"pixels[{i}][{d}]", v, low=0, high=n - 1) for d, (v, n) in enumerate(zip(p, shape))])
    table = torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(shape))
    return tuple(table.T)


def pick_pixels(teacher_logits: Tensor, *, target: Tensor | None = None,
                ignore_index: int | None = None) -> dict[str, tuple[int, ...]]:
    """Two valid pixels worth looking at: ``"confident"``, where the teacher's largest probability (at T = 1) is
    highest, and ``"hesitant"``, where it is lowest. Each as its index ``(b, *spatial)``.

    Example:
        >>> z = torch.zeros(1, 3, 1, 2)
        >>> z[0, 0, 0, 1] = 5.0
        >>> pick_pixels(z)
        {'confident': (0, 0, 1), 'hesitant': (0, 0, 0)}
    """
    _, teacher, target, ignore_index = _inputs(teacher_logits, teacher_logits, target, ignore_index)
    valid = _valid(target, ignore_index)
    if not bool(valid.any()):
        raise ValueError("Expected some valid pixel (a `target` value other than `ignore_index`), but got none.")
    top, ok = torch.softmax(teacher, 1).amax(1), valid
    best = int(torch.where(ok, top, -1.0).flatten().argmax())
    worst = int(torch.where(ok, top, 2.0).flatten().argmin())
    unravel = lambda i: tuple(int(k) for k in torch.unravel_index(torch.tensor(i), top.shape))  # noqa: E731
    return {"confident": unravel(best), "hesitant": unravel(worst)}
