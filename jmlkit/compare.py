r"""Compare finished training runs: find them, read them back, and put their accuracy and calibration side by side.

A *run folder* is what :func:`jmlkit.train.fit` writes (``config.json``, ``history.csv``,
``metrics.json``, ``model.pt``). The notebooks keep theirs under
``<output_dir>/runs/<config-name>__seed<k>/``, and a batch run of the notebooks
(``jmlkit run --out OUT``) gives ``OUT/<notebook>/runs/<config-name>__seed<k>/``::

    OUT/                                  find_runs(OUT)  ──►  one row per run folder
    ├── 02_label_smoothing/run.json            │                 (notebook, config, seed, path, ...)
    │   └── runs/ce_hard__seed0/               ├─► load_metrics   ──► tidy metrics (recipes.summarize: mean ± std)
    │       ├── config.json                    ├─► reliability_tables (from metrics.json, pooled over seeds)
    │       ├── metrics.json                   └─► evaluate_runs  (rebuilds each model and its eval split):
    │       └── model.pt                             ECE by distance to the boundary, class-wise calibration,
    └── 05_soft_labels/...                           errors against the data's soft labels

Soft-label errors (:class:`SoftLabelStats`, :func:`soft_label_metrics`) compare predicted
probabilities :math:`p \in [0,1]^{N\times K}` with the data set's soft labels :math:`y`
(partial-volume fractions, coverages, annotator averages) instead of the hard argmax label:

* ``L1`` :math:`= \frac1N\sum_i \tfrac12\lVert p_i - y_i\rVert_1` (total variation, in [0, 1]);
* ``soft_IoU`` per class :math:`= \sum_i \min(p_{ik}, y_{ik}) / \sum_i \max(p_{ik}, y_{ik})`, the
  Jaccard index with the soft intersection :math:`(\lVert p\rVert_1 + \lVert y\rVert_1 - \lVert p-y\rVert_1)/2`
  that the Jaccard metric loss uses (1 exactly when :math:`p = y`), and ``soft_Dice``
  :math:`= 2\sum\min / (\sum p + \sum y)`; ``soft_mIoU``/``soft_mDice`` average the classes;
* over the *band* entries, those with a target :math:`y_{ik}` strictly inside ``band``
  (default (0.2, 0.8), the partial-volume pixels): ``MAE_band`` :math:`=` mean :math:`|p_{ik}-y_{ik}|`,
  ``extreme_band`` = share of predictions below ``extreme`` or above ``1 - extreme``, and
  ``slope_band`` = least-squares slope of :math:`p` on :math:`y` (1: the prediction follows the
  target; larger: it is pushed towards 0 and 1; smaller: towards a constant);
* ``curve``: mean and standard deviation of :math:`p_{ik}` per bin of :math:`y_{ik}`
  (the "predicted against target probability" diagram), ``band_hist``: histogram of :math:`p_{ik}`
  over the band entries.

Example:
    >>> import torch
    >>> y = torch.tensor([[[0.3, 1.0]], [[0.7, 0.0]]]).reshape(1, 2, 1, 2)   # (B, K, H, W)
    >>> m = soft_label_metrics(y, y)                                          # a perfect prediction
    >>> m["L1"], m["soft_mIoU"], m["MAE_band"], m["slope_band"]
    (0.0, 1.0, 0.0, 1.0)
    >>> hard = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]]).reshape(1, 2, 1, 2)
    >>> round(soft_label_metrics(hard, y)["MAE_band"], 4), soft_label_metrics(hard, y)["extreme_band"]
    (0.3, 1.0)
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

__all__ = [
    "RUN_DIR_RE",
    "run_folder_name",
    "parse_run_name",
    "notebook_status",
    "resolve_results_dir",
    "find_runs",
    "load_metrics",
    "first_configs",
    "pool_reliability",
    "reliability_tables",
    "SoftLabelStats",
    "soft_label_metrics",
    "evaluate_run",
    "evaluate_runs",
    "mean_boundary_tables",
    "plot_tradeoff",
    "plot_reliability_grid",
    "plot_soft_target_curves",
    "plot_band_histograms",
    "plot_per_class_calibration",
    "plot_soft_predictions",
]

#: Folder name of one run: ``<config-name>__seed<k>``.
RUN_DIR_RE = re.compile(r"^(?P<config>.+)__seed(?P<seed>\d+)$")
_CONFIG_COLUMNS = ("dataset", "labels", "loss", "epsilon", "model", "epochs")


# ============================================================================ finding runs


def run_folder_name(config: str, seed: int) -> str:
    """``"<config>__seed<seed>"``, the folder of one run.

    >>> run_folder_name("ce-ls", 2)
    'ce-ls__seed2'
    """
    if not isinstance(config, str) or not config or "/" in config or os.sep in config:
        raise ValueError(f"Expected `config` to be a non-empty name without path separators, but got {config!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Expected `seed` to be a non-negative int, but got {seed!r}.")
    return f"{config}__seed{seed}"


def parse_run_name(name: str) -> tuple[str, int] | None:
    """``(config, seed)`` of a run folder name, or ``None`` if it is not one.

    >>> parse_run_name("jml-ls__seed3"), parse_run_name("figures")
    (('jml-ls', 3), None)
    """
    m = RUN_DIR_RE.match(str(name))
    return (m["config"], int(m["seed"])) if m else None


def notebook_status(root: str | os.PathLike) -> dict[str, str]:
    """Status of each notebook run of a batch folder, from the runner's ``<root>/<run>/run.json``.

    ``{"02_label_smoothing": "ok", "05_soft_labels": "running", ...}``; folders without a
    ``run.json`` (interactive runs) are not listed.
    """
    root = Path(root)
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for record in sorted(root.glob("*/run.json")):
        try:
            status = json.loads(record.read_text(encoding="utf-8")).get("status")
        except (OSError, ValueError, AttributeError):
            status = "unreadable"
        out[record.parent.name] = str(status)
    return out


def resolve_results_dir(
    results_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    profile: str = "quick",
    *,
    exclude: str | os.PathLike | None = None,
) -> Path | None:
    """The folder to read runs from: ``results_dir`` when given, else the first of
    ``Path(output_dir).parent`` (the batch folder when the runner injected ``output_dir``) and
    ``../runs/<profile>`` that holds a finished run (``exclude``: a folder whose runs do not count,
    e.g. the notebook's own ``output_dir``). ``None`` when neither holds one.
    """
    if results_dir is not None:
        return Path(results_dir)
    for candidate in (Path(output_dir).parent, Path("..") / "runs" / str(profile)):
        if len(find_runs(candidate, exclude=exclude)):
            return candidate
    return None


def _is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "metrics.json").is_file()


def find_runs(
    root: str | os.PathLike,
    *,
    notebooks: Sequence[str] | None = None,
    exclude: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    only_finished: bool = True,
    max_depth: int = 3,
) -> pd.DataFrame:
    """Every finished run folder under ``root``, one row each.

    A run folder sits in a ``runs`` folder, is named ``<config>__seed<k>`` and holds ``config.json``
    and ``metrics.json`` (:func:`jmlkit.train.fit` writes ``metrics.json`` last, so a folder with it
    is complete).

    Args:
        root: a batch folder (``OUT``), one notebook's ``output_dir``, or its ``runs`` folder.
        notebooks: keep only these notebook stems (or prefixes such as ``"02"``).
        exclude: folders whose runs are left out (e.g. the calling notebook's own ``output_dir``).
        only_finished: leave out the notebooks whose runner ``run.json`` does not say ``ok``
            (still running, failed); notebooks without ``run.json`` always count.
        max_depth: how deep below ``root`` to look; the default 3 finds ``root/<notebook>/runs/<run>``
            but not runs nested deeper (e.g. an exercise's ``<notebook>/exercise/runs/<run>``).

    Returns:
        DataFrame with columns ``notebook`` (the first folder below ``root``, or ``root``'s own
        name), ``config``, ``seed``, ``run`` (folder name), ``path``, ``has_model`` and the
        config fields ``dataset, labels, loss, epsilon, model, epochs``; sorted by notebook, then
        configurations in the order they finished (the notebook's own order: main comparison
        first, sweeps after), then seed. Empty (with these columns) when nothing is found.
    """
    root = Path(root)
    columns = ["notebook", "config", "seed", "run", "path", "has_model", *_CONFIG_COLUMNS]
    if not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"Expected `max_depth` to be a positive int, but got {max_depth!r}.")
    if not root.is_dir():
        return pd.DataFrame(columns=columns)
    if exclude is None:
        excluded: list[Path] = []
    elif isinstance(exclude, (str, os.PathLike)):
        excluded = [Path(exclude).resolve()]
    else:
        excluded = [Path(e).resolve() for e in exclude]
    status = notebook_status(root) if only_finished else {}
    rows = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            resolved = child.resolve()
            if any(resolved == e or e in resolved.parents for e in excluded):
                continue
            parsed = parse_run_name(child.name)
            if parsed is not None and folder.name == "runs" and _is_run_dir(child):
                rel = child.relative_to(root).parts
                here = root.resolve()
                if len(rel) > 1 and rel[0] != "runs":
                    notebook = rel[0]
                else:  # root is one notebook's output_dir, or its runs/ folder
                    notebook = here.parent.name if here.name == "runs" and len(rel) == 1 else here.name
                if only_finished and status.get(notebook, "ok") != "ok":
                    continue
                rows.append(_run_row(child, notebook, *parsed))
            elif depth + 1 < max_depth:
                stack.append((child, depth + 1))
    df = pd.DataFrame(rows, columns=columns)
    if notebooks is not None:
        wanted = [str(n) for n in notebooks]
        df = df[df["notebook"].map(lambda s: any(s == w or s.startswith(w) for w in wanted))]
    # configurations in the order they were trained (first metrics.json of each), then seeds
    finished = df["path"].map(lambda p: (Path(p) / "metrics.json").stat().st_mtime)
    order = finished.groupby([df["notebook"], df["config"]]).transform("min")
    df = df.assign(_order=order).sort_values(["notebook", "_order", "config", "seed"], kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def _run_row(path: Path, notebook: str, config: str, seed: int) -> dict[str, Any]:
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    row = {"notebook": notebook, "config": config, "seed": seed, "run": path.name, "path": str(path),
           "has_model": (path / "model.pt").is_file()}
    for key in _CONFIG_COLUMNS:
        row[key] = cfg.get(key)
    return row


def first_configs(runs: pd.DataFrame, n: int, *, by: str = "notebook") -> pd.DataFrame:
    """The runs of the first ``n`` configurations (in table order) of each ``by`` group, all seeds.

    >>> runs = pd.DataFrame({"notebook": ["a", "a", "a", "b"], "config": ["x", "x", "y", "z"], "seed": [0, 1, 0, 0]})
    >>> first_configs(runs, 1)[["notebook", "config", "seed"]].values.tolist()
    [['a', 'x', 0], ['a', 'x', 1], ['b', 'z', 0]]
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"Expected `n` to be a positive int, but got {n!r}.")
    if not isinstance(runs, pd.DataFrame) or "config" not in runs.columns:
        raise TypeError("Expected `runs` to be a DataFrame with a `config` column.")
    if by not in runs.columns:
        keep = set(list(dict.fromkeys(runs["config"]))[:n])
        return runs[runs["config"].isin(keep)]
    mask = runs.groupby(by, sort=False)["config"].transform(lambda c: c.isin(list(dict.fromkeys(c))[:n]))
    return runs[mask.astype(bool)]


def _check_runs(runs: Any) -> pd.DataFrame:
    """A table of runs with a ``path`` column (``run_dir``, the column of :mod:`jmlkit.recipes` tables, also works)."""
    if isinstance(runs, pd.DataFrame) and "path" not in runs.columns and "run_dir" in runs.columns:
        runs = runs.assign(path=runs["run_dir"])
    if not isinstance(runs, pd.DataFrame) or "path" not in runs.columns:
        raise TypeError("Expected `runs` to be the DataFrame of find_runs() (or of jmlkit.recipes.run_configs), "
                        f"but got {type(runs).__name__}.")
    return runs


def load_metrics(runs: pd.DataFrame, *, extra: Sequence[str] = ()) -> pd.DataFrame:
    """``runs`` (of :func:`find_runs`) joined with the scalar metrics of each ``metrics.json``.

    Every numeric top-level value becomes a column (``mIoU_D``, ``ECE_D``, ``train_time_s``...);
    lists and tables (``IoU_per_class``, ``reliability``) are left out, except the keys named in
    ``extra``, which are kept as objects.
    """
    runs = _check_runs(runs)
    records = []
    for path in runs["path"]:
        metrics = json.loads((Path(path) / "metrics.json").read_text(encoding="utf-8"))
        rec = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rec.update({k: metrics.get(k) for k in extra})
        records.append(rec)
    return pd.concat([runs.reset_index(drop=True), pd.DataFrame(records)], axis=1)


# ============================================================================ reliability


def pool_reliability(tables: Iterable[pd.DataFrame | Mapping[str, Sequence[Any]]]) -> pd.DataFrame:
    """Pool reliability tables of several runs (same bins): counts add, confidence and accuracy
    are count-weighted means. Accepts DataFrames or the dict-of-lists form ``metrics.json`` stores.

    >>> t = {"bin": [0, 1], "lower": [0.0, 0.5], "upper": [0.5, 1.0], "count": [1, 3],
    ...      "confidence": [0.4, 0.9], "accuracy": [0.0, 1.0]}
    >>> pool_reliability([t, t])[["count", "accuracy", "gap"]].round(2).values.tolist()
    [[2.0, 0.0, -0.4], [6.0, 1.0, 0.1]]
    """
    frames = [pd.DataFrame(dict(t)) if not isinstance(t, pd.DataFrame) else t for t in tables]
    if not frames:
        raise ValueError("Expected at least one reliability table, but got none.")
    n_bins = {len(f) for f in frames}
    if len(n_bins) != 1:
        raise ValueError(f"Expected reliability tables with the same number of bins, but got {sorted(n_bins)}.")
    base = frames[0][["bin", "lower", "upper"]].reset_index(drop=True).copy()
    counts = np.stack([f["count"].to_numpy(float) for f in frames])
    conf = np.stack([np.nan_to_num(f["confidence"].to_numpy(float)) for f in frames])
    acc = np.stack([np.nan_to_num(f["accuracy"].to_numpy(float)) for f in frames])
    total = counts.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        base["count"] = total
        base["fraction"] = total / total.sum() if total.sum() > 0 else 0.0
        base["confidence"] = np.where(total > 0, (counts * conf).sum(0) / total, np.nan)
        base["accuracy"] = np.where(total > 0, (counts * acc).sum(0) / total, np.nan)
    base["gap"] = base["accuracy"] - base["confidence"]
    return base


def _ece_of(table: pd.DataFrame) -> float:
    w = table["fraction"].to_numpy(float)
    gap = np.nan_to_num(table["gap"].to_numpy(float))
    return float((w * np.abs(gap)).sum())


def reliability_tables(
    runs: pd.DataFrame,
    *,
    by: Sequence[str] = ("notebook", "config"),
) -> dict[tuple, dict[str, Any]]:
    """Reliability tables read from each run's ``metrics.json`` and pooled over the seeds of a group.

    Returns ``{group key: {"reliability": DataFrame, "ECE_D": pooled ECE}}`` (the dict form
    :func:`jmlkit.viz.reliability_diagram` accepts), keys as tuples of the values of the ``by``
    columns that ``runs`` has (a :mod:`jmlkit.recipes` table has ``config`` but no ``notebook``).
    Runs whose ``metrics.json`` has no ``reliability`` table are skipped.
    """
    runs = _check_runs(runs)
    by = [c for c in by if c in runs.columns]
    if not by:
        raise ValueError(f"Expected `runs` to have a grouping column among `by`, but its columns are {list(runs.columns)}.")
    out: dict[tuple, dict[str, Any]] = {}
    for key, group in runs.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        tables = []
        for path in group["path"]:
            rel = json.loads((Path(path) / "metrics.json").read_text(encoding="utf-8")).get("reliability")
            if rel:
                tables.append(rel)
        if tables:
            pooled = pool_reliability(tables)
            out[key] = {"reliability": pooled, "ECE_D": _ece_of(pooled)}
    return out


# ============================================================================ soft-label errors


class SoftLabelStats:
    """Streaming errors of predicted probabilities against soft labels (see the module docstring).

    State: a few sums per class, ``n_bins x 4`` sums for the curve and ``hist_bins`` counts,
    whatever the number of pixels; ``update`` any number of batches, then ``compute()``.

    Args:
        num_classes: ``K``.
        band: open interval of target values whose entries are the partial-volume "band".
        extreme: a band prediction below ``extreme`` or above ``1 - extreme`` counts as pushed to 0/1.
        n_bins: bins of the target probability for ``curve``.
        hist_bins: bins of the predicted probability for ``band_hist``.
    """

    def __init__(self, num_classes: int, *, band: tuple[float, float] = (0.2, 0.8), extreme: float = 0.1,
                 n_bins: int = 10, hist_bins: int = 20) -> None:
        for name, value, low in (("num_classes", num_classes, 2), ("n_bins", n_bins, 1), ("hist_bins", hist_bins, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected `{name}` to be an int >= {low}, but got {value!r}.")
        if (not isinstance(band, (tuple, list)) or len(band) != 2
                or not 0.0 <= float(band[0]) < float(band[1]) <= 1.0):
            raise ValueError(f"Expected `band` to be a pair (low, high) with 0 <= low < high <= 1, but got {band!r}.")
        if not 0.0 < float(extreme) < 0.5:
            raise ValueError(f"Expected `extreme` to be in (0, 0.5), but got {extreme!r}.")
        self.num_classes, self.n_bins, self.hist_bins = num_classes, n_bins, hist_bins
        self.band, self.extreme = (float(band[0]), float(band[1])), float(extreme)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        f64 = torch.float64
        k = self.num_classes
        self.n_pixels = 0
        self.l1 = torch.zeros((), dtype=f64)
        self.inter = torch.zeros(k, dtype=f64)  # sum min(p, y)
        self.union = torch.zeros(k, dtype=f64)  # sum max(p, y)
        self.sum_p = torch.zeros(k, dtype=f64)
        self.sum_y = torch.zeros(k, dtype=f64)
        self.curve = torch.zeros(self.n_bins, 4, dtype=f64)  # count, sum y, sum p, sum p^2
        self.band_sums = torch.zeros(7, dtype=f64)  # n, |p-y|, extreme, y, p, y^2, y*p
        self.hist = torch.zeros(self.hist_bins, dtype=f64)

    @torch.no_grad()
    def update(self, probs: Tensor, soft: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate a batch: ``probs`` and ``soft`` ``(B, K, *spatial)``, ``mask`` bool ``(B, *spatial)``."""
        if not isinstance(probs, Tensor) or not isinstance(soft, Tensor):
            raise TypeError(f"Expected `probs` and `soft` to be tensors, but got {type(probs).__name__} and "
                            f"{type(soft).__name__}.")
        if probs.shape != soft.shape or probs.ndim < 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f"Expected `probs` and `soft` of the same shape (B, {self.num_classes}, *spatial), but "
                             f"got {tuple(probs.shape)} and {tuple(soft.shape)}.")
        p = probs.detach().double().movedim(1, -1).reshape(-1, self.num_classes).cpu()
        y = soft.detach().double().movedim(1, -1).reshape(-1, self.num_classes).cpu()
        if mask is not None:
            if mask.shape != (probs.shape[0], *probs.shape[2:]):
                raise ValueError(f"Expected `mask` of shape {(probs.shape[0], *probs.shape[2:])}, but got {tuple(mask.shape)}.")
            keep = mask.detach().reshape(-1).cpu().bool()
            p, y = p[keep], y[keep]
        self.n_pixels += p.shape[0]
        self.l1 += 0.5 * (p - y).abs().sum()
        self.inter += torch.minimum(p, y).sum(0)
        self.union += torch.maximum(p, y).sum(0)
        self.sum_p += p.sum(0)
        self.sum_y += y.sum(0)
        pf, yf = p.reshape(-1), y.reshape(-1)
        b = (yf * self.n_bins).long().clamp_(0, self.n_bins - 1)
        for j, v in enumerate((torch.ones_like(yf), yf, pf, pf * pf)):
            self.curve[:, j] += torch.bincount(b, weights=v, minlength=self.n_bins)
        inside = (yf > self.band[0]) & (yf < self.band[1])
        pb, yb = pf[inside], yf[inside]
        ext = ((pb < self.extreme) | (pb > 1 - self.extreme)).double()
        self.band_sums += torch.stack([torch.tensor(float(pb.numel()), dtype=torch.float64), (pb - yb).abs().sum(),
                                       ext.sum(), yb.sum(), pb.sum(), (yb * yb).sum(), (yb * pb).sum()])
        hb = (pb * self.hist_bins).long().clamp_(0, self.hist_bins - 1)
        self.hist += torch.bincount(hb, minlength=self.hist_bins).double()

    def compute(self) -> dict[str, Any]:
        """``L1, soft_mIoU, soft_mDice, MAE_band, extreme_band, slope_band, band_fraction`` (floats),
        ``soft_IoU_per_class``, ``soft_Dice_per_class`` (lists), ``curve`` and ``band_hist`` (DataFrames)."""
        nan = float("nan")
        n = self.n_pixels
        present = self.union > 0
        iou = torch.where(present, self.inter / self.union.clamp(min=1e-300), torch.full_like(self.inter, nan))
        denom = self.sum_p + self.sum_y
        dice = torch.where(denom > 0, 2 * self.inter / denom.clamp(min=1e-300), torch.full_like(self.inter, nan))
        nb, s_abs, s_ext, s_y, s_p, s_yy, s_yp = self.band_sums.tolist()
        if nb > 0:
            var_y = s_yy / nb - (s_y / nb) ** 2
            slope = (s_yp / nb - (s_y / nb) * (s_p / nb)) / var_y if var_y > 1e-12 else nan
        else:
            slope = nan
        c = self.curve
        count = c[:, 0].numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_y = np.where(count > 0, c[:, 1].numpy() / count, np.nan)
            mean_p = np.where(count > 0, c[:, 2].numpy() / count, np.nan)
            std_p = np.sqrt(np.clip(np.where(count > 0, c[:, 3].numpy() / count, np.nan) - mean_p**2, 0, None))
        edges = np.linspace(0, 1, self.n_bins + 1)
        curve = pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count.astype(np.int64),
                              "target": mean_y, "predicted": mean_p, "predicted_std": std_p})
        h_edges = np.linspace(0, 1, self.hist_bins + 1)
        hist = self.hist.numpy()
        band_hist = pd.DataFrame({"lower": h_edges[:-1], "upper": h_edges[1:], "count": hist.astype(np.int64),
                                  "density": hist / (hist.sum() * (1 / self.hist_bins)) if hist.sum() > 0
                                  else np.zeros_like(hist)})
        return {
            "L1": float(self.l1 / n) if n else nan,
            "soft_mIoU": float(np.nanmean(iou.numpy())) if bool(present.any()) else nan,
            "soft_mDice": float(np.nanmean(dice.numpy())) if bool((denom > 0).any()) else nan,
            "MAE_band": s_abs / nb if nb else nan,
            "extreme_band": s_ext / nb if nb else nan,
            "slope_band": slope,
            "band_fraction": nb / (n * self.num_classes) if n else nan,
            "soft_IoU_per_class": iou.tolist(),
            "soft_Dice_per_class": dice.tolist(),
            "curve": curve,
            "band_hist": band_hist,
        }


def soft_label_metrics(probs: Tensor, soft: Tensor, mask: Tensor | None = None, **kwargs: Any) -> dict[str, Any]:
    """One-shot :class:`SoftLabelStats` (``kwargs`` go to its constructor); see the module example."""
    if not isinstance(probs, Tensor) or probs.ndim < 2:
        raise TypeError(f"Expected `probs` to be a tensor (B, K, *spatial), but got {type(probs).__name__}.")
    stats = SoftLabelStats(int(probs.shape[1]), **kwargs)
    stats.update(probs, soft, mask)
    return stats.compute()


# ============================================================================ evaluating runs


def _base(data: Any) -> Any:
    while hasattr(data, "dataset"):
        data = data.dataset
    return data


@torch.no_grad()
def evaluate_run(
    path: str | os.PathLike,
    *,
    max_distance: int = 8,
    n_bins: int = 15,
    band: tuple[float, float] = (0.2, 0.8),
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
) -> dict[str, Any]:
    """Rebuild a run's model (``model.pt``) and its evaluation data (:func:`jmlkit.recipes.eval_dataset`:
    the run's ``eval_split``, first ``eval_limit`` items) and measure what ``metrics.json`` does not hold.

    Args:
        path: the run folder.
        max_distance: distances to the boundary tracked one by one (farther ones are pooled).
        n_bins: confidence bins.
        band: target interval of the soft-label "band" (data sets with soft labels only).
        batch_size: evaluation batch size.
        device: ``"auto"`` (cuda when available), ``"cpu"``...

    Returns:
        ``{"boundary": DataFrame (distance, count, accuracy, confidence, ECE)``,
        ``"per_class": DataFrame (class, class_name, count, ECE_class, reliability of p_k against 1[y=k])``,
        ``"soft": dict of`` :class:`SoftLabelStats` ``or None}``.
    """
    from jmlkit.metrics import BoundaryCalibration
    from jmlkit.metrics.functional import calibration_stats
    from jmlkit.recipes import eval_dataset
    from jmlkit.train import TrainConfig, load_checkpoint
    from jmlkit.utils import pick_device

    path = Path(path)
    config = TrainConfig.from_json(path / "config.json")
    dev = pick_device(device)
    model = load_checkpoint(path, map_location=dev).to(dev)
    data = eval_dataset(config)
    base = _base(data)
    k = int(base.num_classes)
    ignore = getattr(base, "ignore_index", config.ignore_index)
    names = list(getattr(base, "class_names", [str(i) for i in range(k)]))
    boundary = BoundaryCalibration(k, max_distance=max_distance, n_bins=n_bins, ignore_index=ignore, validate_args=False)
    cw = torch.zeros(k, n_bins, 2, dtype=torch.float64)
    n_valid = 0.0
    soft_stats = None
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for batch in loader:
        probs = torch.softmax(model(batch["image"].to(dev)).float(), dim=1).cpu()
        labels = batch["label"].long()
        boundary.update(probs, labels)
        st = calibration_stats(probs, labels, k, n_bins=n_bins, fine_bins=n_bins, ignore_index=ignore,
                               scores=False, per_image=False, validate_args=False)
        cw += st["classwise"].cpu()
        n_valid += float(st["top"][:, 0].sum())
        if "soft" in batch:
            if soft_stats is None:
                soft_stats = SoftLabelStats(k, band=band)
            soft_stats.update(probs, batch["soft"].float(), labels != ignore if ignore is not None else None)
    # class-wise calibration: sum_b |sum_y - sum_p| / N for each class (SCE_D is their mean)
    per_class = pd.DataFrame({
        "class": np.arange(k),
        "class_name": names[:k],
        "ECE_class": ((cw[..., 1] - cw[..., 0]).abs().sum(-1) / max(n_valid, 1.0)).numpy(),
        "frequency": (cw[..., 1].sum(-1) / max(n_valid, 1.0)).numpy(),
        "mean_prob": (cw[..., 0].sum(-1) / max(n_valid, 1.0)).numpy(),
    })
    return {"boundary": boundary.compute(), "per_class": per_class,
            "soft": soft_stats.compute() if soft_stats is not None else None}


def evaluate_runs(runs: pd.DataFrame, *, on_error: str = "warn", **kwargs: Any) -> dict[str, pd.DataFrame]:
    """:func:`evaluate_run` on every run with a ``model.pt``, as tidy tables.

    Args:
        runs: :func:`find_runs` (or :mod:`jmlkit.recipes`) table.
        on_error: ``"warn"``: a run whose model or data cannot be rebuilt (e.g. a checkpoint of an
            older model definition) is skipped with a ``UserWarning`` and listed in ``"skipped"``;
            ``"raise"``: the error propagates.
        **kwargs: options of :func:`evaluate_run`.

    Returns ``{"boundary", "per_class", "soft", "curve", "band_hist", "skipped"}``: each the run
    columns (``notebook, config, seed``...) joined with the per-run rows (``soft``: one row of the
    scalar soft-label errors per run; ``soft``, ``curve`` and ``band_hist`` are empty for data
    without soft labels; ``skipped``: ``path`` and ``error`` of each skipped run).
    """
    import warnings

    if on_error not in ("warn", "raise"):
        raise ValueError(f"Expected `on_error` to be 'warn' or 'raise', but got {on_error!r}.")
    runs = _check_runs(runs)
    keep = [c for c in ("notebook", "config", "seed", "dataset", "labels", "loss") if c in runs.columns]
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("boundary", "per_class", "soft", "curve", "band_hist")}
    skipped = []
    for _, row in runs.iterrows():
        if "has_model" in runs.columns and not row["has_model"]:
            continue
        try:
            res = evaluate_run(row["path"], **kwargs)
        except (RuntimeError, ValueError, TypeError, KeyError, OSError) as err:
            if on_error == "raise":
                raise
            message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.warn(f"evaluate_runs: skipped {row['path']} ({message})", UserWarning, stacklevel=2)
            skipped.append({c: row[c] for c in keep} | {"path": row["path"], "error": message})
            continue
        ident = {c: row[c] for c in keep}
        for name in ("boundary", "per_class"):
            parts[name].append(res[name].assign(**ident))
        if res["soft"] is not None:
            s = res["soft"]
            scalars = {k: v for k, v in s.items() if isinstance(v, float)}
            parts["soft"].append(pd.DataFrame([{**ident, **scalars}]))
            parts["curve"].append(s["curve"].assign(**ident))
            parts["band_hist"].append(s["band_hist"].assign(**ident))
    out = {}
    for name, frames in parts.items():
        if frames:
            df = pd.concat(frames, ignore_index=True)
            out[name] = df[keep + [c for c in df.columns if c not in keep]]
        else:
            out[name] = pd.DataFrame(columns=keep)
    out["skipped"] = pd.DataFrame(skipped, columns=[*keep, "path", "error"])
    return out


def mean_boundary_tables(boundary: pd.DataFrame, *, by: Sequence[str] = ("config",)) -> dict[str, pd.DataFrame]:
    """Per-distance tables averaged over seeds, keyed by the ``by`` values joined with ``" / "``:
    columns ``distance, count`` (summed), ``accuracy, confidence, ECE`` (means) and ``ECE_std``;
    ready for :func:`jmlkit.viz.calibration_vs_boundary_distance`."""
    by = list(by)
    out = {}
    for key, group in boundary.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = group.groupby("distance", sort=True)
        table = pd.DataFrame({"count": g["count"].sum(), "accuracy": g["accuracy"].mean(),
                              "confidence": g["confidence"].mean(), "ECE": g["ECE"].mean(),
                              "ECE_std": g["ECE"].std()}).reset_index()
        out[" / ".join(str(k) for k in key)] = table
    return out


# ============================================================================ figures


def _label(key: Any) -> str:
    return " / ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def plot_reliability_grid(
    tables: Mapping[Any, Any],
    *,
    ncols: int | None = None,
    title: str | None = None,
    panel_size: tuple[float, float] = (2.8, 3.0),
) -> Figure:
    """Reliability diagrams side by side, one panel per run (or group of seeds).

    Args:
        tables: ``{label: reliability DataFrame or {"reliability": DataFrame, "ECE_D": float}}``
            (e.g. :func:`reliability_tables`); tuple labels are joined with ``" / "``.
        ncols: panels per row (default: all in one row, at most 4).
        title: figure title.
        panel_size: inches per panel.

    Each panel: accuracy per confidence bin (bars), the gap to the diagonal (red) and the diagonal;
    the title gives the ECE and the share of pixels in the most confident bin.
    """
    if not isinstance(tables, Mapping) or not tables:
        raise ValueError("Expected `tables` to be a non-empty mapping label -> reliability table.")
    n = len(tables)
    ncols = min(n, 4) if ncols is None else ncols
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"Expected `ncols` to be a positive int, but got {ncols!r}.")
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax, (key, data) in zip(axes, tables.items()):
        if isinstance(data, Mapping):
            df, ece = data["reliability"], data.get("ECE_D")
        else:
            df, ece = data, None
        df = pd.DataFrame(df) if not isinstance(df, pd.DataFrame) else df
        lower, upper = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
        ok = df["count"].to_numpy(float) > 0
        centre, width = (lower + upper) / 2, upper - lower
        acc, conf = df["accuracy"].to_numpy(float), df["confidence"].to_numpy(float)
        ax.bar(centre[ok], acc[ok], width=width[ok], color="#1f77b4", edgecolor="black", linewidth=0.4)
        ax.bar(centre[ok], (conf - acc)[ok], bottom=acc[ok], width=width[ok], color="#d62728", alpha=0.35,
               edgecolor="#d62728", hatch="//", linewidth=0.4)
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
        top = float(df["count"].to_numpy(float)[-1] / max(df["count"].sum(), 1))
        label = _label(key)
        ax.set_title(f"{label}\n" + ("" if ece is None else f"ECE {100 * ece:.2f}%, ") + f"{100 * top:.0f}% px in top bin",
                     fontsize="medium")
        ax.set(xlim=(0, 1), ylim=(0, 1))
    for ax in axes[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n]):
        if i % ncols == 0:
            ax.set_ylabel("accuracy")
        if i + ncols >= n:  # nothing drawn below this panel
            ax.set_xlabel("confidence")
            ax.xaxis.set_tick_params(labelbottom=True)
    if title:
        fig.suptitle(title)
    return fig


def plot_tradeoff(
    summary: pd.DataFrame,
    *,
    x: str = "mIoU_D",
    y: str = "ECE_D",
    label: str = "config",
    group: str | None = "notebook",
    percent: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (5.5, 4.2),
) -> Figure:
    """Scatter of two metrics of :func:`jmlkit.recipes.summarize` (means, with std error bars when there are
    several seeds), one point per row, labelled by ``label``, one colour per ``group``."""
    need = {f"{x}_mean", f"{y}_mean", label} | ({group} if group else set())
    if not isinstance(summary, pd.DataFrame) or not need <= set(summary.columns):
        raise ValueError(f"Expected a recipes.summarize() table with columns {sorted(need)}.")
    f = 100.0 if percent else 1.0
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    groups = list(dict.fromkeys(summary[group])) if group else [None]
    for i, g in enumerate(groups):
        rows = summary[summary[group] == g] if group else summary
        xe = rows.get(f"{x}_std", pd.Series(np.nan, index=rows.index)).fillna(0).to_numpy(float) * f
        ye = rows.get(f"{y}_std", pd.Series(np.nan, index=rows.index)).fillna(0).to_numpy(float) * f
        ax.errorbar(rows[f"{x}_mean"].to_numpy(float) * f, rows[f"{y}_mean"].to_numpy(float) * f, xerr=xe, yerr=ye,
                    fmt="o", color=f"C{i}", capsize=2, label=str(g) if g is not None else None)
        for _, r in rows.iterrows():
            ax.annotate(str(r[label]), (r[f"{x}_mean"] * f, r[f"{y}_mean"] * f), textcoords="offset points",
                        xytext=(4, 3), fontsize="x-small")
    unit = " (%)" if percent else ""
    ax.set(xlabel=f"{x}{unit}", ylabel=f"{y}{unit}")
    if group:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_soft_target_curves(curves: Mapping[str, pd.DataFrame], *, title: str | None = None,
                            band: tuple[float, float] | None = (0.2, 0.8), figsize=(4.6, 4.2)) -> Figure:
    """Mean predicted probability (± one std, shaded) against the target probability, one line per
    run; the diagonal is "predicts the soft label exactly". ``curves``: ``{label: curve}`` with the
    ``curve`` tables of :class:`SoftLabelStats` (e.g. grouped from :func:`evaluate_runs`' ``"curve"``)."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("Expected `curves` to be a non-empty mapping label -> curve DataFrame.")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    if band is not None:
        ax.axvspan(*band, color="0.92", zorder=0, label=f"band {band[0]:g} < y < {band[1]:g}")
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="p = y")
    for i, (label, df) in enumerate(curves.items()):
        ok = df["count"].to_numpy() > 0
        x = df["target"].to_numpy(float)[ok]
        y = df["predicted"].to_numpy(float)[ok]
        s = df["predicted_std"].to_numpy(float)[ok]
        ax.plot(x, y, "o-", color=f"C{i}", label=str(label), markersize=4)
        ax.fill_between(x, np.clip(y - s, 0, 1), np.clip(y + s, 0, 1), color=f"C{i}", alpha=0.15, linewidth=0)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="target probability y (soft label)", ylabel="predicted probability p")
    ax.legend(fontsize="small", loc="upper left")
    if title:
        ax.set_title(title)
    return fig


def plot_band_histograms(hists: Mapping[str, pd.DataFrame], *, title: str | None = None,
                         panel_size: tuple[float, float] = (3.0, 2.6)) -> Figure:
    """Histograms (densities) of the predicted probabilities at band entries, one panel per run."""
    if not isinstance(hists, Mapping) or not hists:
        raise ValueError("Expected `hists` to be a non-empty mapping label -> band_hist DataFrame.")
    n = len(hists)
    fig = Figure(figsize=(panel_size[0] * n, panel_size[1] + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True, squeeze=False)).ravel()
    for i, (ax, (label, df)) in enumerate(zip(axes, hists.items())):
        lower, upper = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
        ax.bar((lower + upper) / 2, df["density"].to_numpy(float), width=upper - lower, color=f"C{i}",
               edgecolor="black", linewidth=0.4)
        ax.set(xlim=(0, 1), xlabel="predicted probability p", title=str(label))
    axes[0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    return fig


def plot_per_class_calibration(per_class: pd.DataFrame, *, by: str = "config", value: str = "ECE_class",
                               title: str | None = None, ax=None) -> Figure:
    """Grouped bars of a per-class value (default the class-wise calibration error), mean over
    seeds with the standard deviation as error bars; ``per_class`` is :func:`evaluate_runs`' table."""
    need = {by, "class", "class_name", value}
    if not isinstance(per_class, pd.DataFrame) or not need <= set(per_class.columns):
        raise ValueError(f"Expected a per-class DataFrame with columns {sorted(need)}.")
    stats = per_class.groupby([by, "class", "class_name"], sort=False)[value].agg(["mean", "std"]).reset_index()
    groups = list(dict.fromkeys(stats[by]))
    classes = stats[["class", "class_name"]].drop_duplicates().sort_values("class")
    n, k = len(classes), len(groups)
    if ax is None:
        fig = Figure(figsize=(min(11.0, max(5.0, 0.22 * n * k + 2.0)), 3.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    width = 0.8 / max(k, 1)
    x = np.arange(n)
    for i, g in enumerate(groups):
        s = stats[stats[by] == g].set_index("class").reindex(classes["class"])
        ax.bar(x - 0.4 + width * (i + 0.5), s["mean"].to_numpy(float), width=width, label=str(g),
               yerr=np.nan_to_num(s["std"].to_numpy(float)) if s["std"].notna().any() else None, capsize=2)
    ax.set_xticks(x, classes["class_name"].astype(str).tolist(), rotation=45 if n > 6 else 0,
                  ha="right" if n > 6 else "center")
    ax.set(ylabel="class-wise calibration error" if value == "ECE_class" else value, xlabel="class")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_soft_predictions(
    image: Tensor,
    soft: Tensor,
    probs: Mapping[str, Tensor],
    *,
    class_index: int,
    class_name: str | None = None,
    title: str | None = None,
) -> Figure:
    """One image: the input, the soft target of one class, and each run's predicted probability of
    that class, on the same colour scale; the last row shows ``p - y`` per run.

    Args:
        image: ``(C_in, H, W)``.
        soft: ``(K, H, W)`` soft labels.
        probs: ``{label: (K, H, W)}`` predicted probabilities.
        class_index: the class shown.
        class_name: its name for the titles.
        title: figure title.
    """
    if not isinstance(probs, Mapping) or not probs:
        raise ValueError("Expected `probs` to be a non-empty mapping label -> (K, H, W) probabilities.")
    if soft.ndim != 3 or not 0 <= class_index < soft.shape[0]:
        raise ValueError(f"Expected `soft` (K, H, W) and 0 <= class_index < K, but got shape {tuple(soft.shape)} "
                         f"and class_index={class_index}.")
    name = class_name or f"class {class_index}"
    n = len(probs) + 2
    fig = Figure(figsize=(2.3 * n, 4.6 + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    img = image.detach().float().cpu()
    img = img[0] if img.ndim == 3 else img
    y = soft[class_index].detach().float().cpu()
    axes[0, 0].imshow(img.numpy(), cmap="gray")
    axes[0, 0].set_title("image")
    im = axes[0, 1].imshow(y.numpy(), cmap="magma", vmin=0, vmax=1)
    axes[0, 1].set_title(f"target y ({name})")
    band = ((y > 0.2) & (y < 0.8)).float().numpy()
    axes[1, 1].imshow(band, cmap="gray_r", vmin=0, vmax=1)
    axes[1, 1].set_title("band 0.2 < y < 0.8")
    axes[1, 0].set_visible(False)
    for j, (label, p) in enumerate(probs.items(), start=2):
        pk = p[class_index].detach().float().cpu()
        axes[0, j].imshow(pk.numpy(), cmap="magma", vmin=0, vmax=1)
        axes[0, j].set_title(f"p: {label}")
        err = axes[1, j].imshow((pk - y).numpy(), cmap="RdBu_r", vmin=-0.5, vmax=0.5)
        axes[1, j].set_title(f"p - y: {label}")
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="probability")
    fig.colorbar(err, ax=axes[1, :].tolist(), shrink=0.8, label="p - y")
    if title:
        fig.suptitle(title)
    return fig
