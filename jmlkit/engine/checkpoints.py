"""Checkpoints and run folders: the model spec, ``model.pt``, and reading a complete run folder back."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from jmlkit.engine.config import TrainConfig
from jmlkit.engine.distributed import unwrap
from jmlkit.engine.runfolder import require_complete
from jmlkit.io import atomic_torch_save

__all__ = ["model_spec", "build_from_spec", "save_checkpoint", "read_checkpoint", "load_checkpoint", "load_run"]


def model_spec(config: TrainConfig, num_classes: int, in_channels: int) -> dict[str, Any]:
    """``arch, encoder, num_classes, in_channels, kwargs`` of :func:`jmlkit.models.build_model` for a config."""
    return {
        "arch": config.model,
        "encoder": config.encoder,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "kwargs": dict(config.model_kwargs),
    }


def build_from_spec(spec: Mapping[str, Any], *, encoder_weights: str | None = None) -> nn.Module:
    """The model a spec describes: fresh weights, or the pretrained encoder ``encoder_weights``
    (``"imagenet"`` or a local file; :func:`jmlkit.models.build_model` raises when they cannot be loaded)."""
    from jmlkit.models import build_model

    return build_model(
        spec["arch"],
        spec.get("encoder"),
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        encoder_weights=encoder_weights,
        **dict(spec.get("kwargs", {})),
    )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, spec: Mapping[str, Any], *, config: TrainConfig | None = None,
                    **extra: Any) -> Path:
    """Write ``{"model_spec", "state_dict", "config", ...}`` to ``path`` atomically; :func:`load_checkpoint` reads it.

    ``spec`` holds ``arch, encoder, num_classes, in_channels, kwargs`` of :func:`jmlkit.models.build_model`.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {"model_spec": dict(spec), "state_dict": state, "config": config.to_dict() if config else None, **extra}
    atomic_torch_save(payload, path)
    return path


def read_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The payload of a checkpoint: ``model.pt``, or a complete run folder holding one (see :func:`load_checkpoint`).

    Raises ``FileNotFoundError`` (no such file, or a run folder without ``model.pt``), ``ValueError``
    naming the folder when it is not a complete run folder (:func:`~jmlkit.engine.runfolder.require_complete`)
    and ``ValueError`` naming the file when it is not a jmlkit checkpoint (garbage, another format).
    """
    path = Path(path)
    if path.is_dir():
        require_complete(path)
        if not (path / "model.pt").is_file():
            raise FileNotFoundError(f"Expected a checkpoint (model.pt) in the run folder {str(path)!r}, but it has none "
                                    "(trained with save_checkpoint=False?).")
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"Expected a checkpoint file (model.pt or a run folder holding one), but {str(path)!r} does not exist.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except OSError:
        raise
    except Exception as err:  # torch.load of garbage: UnpicklingError, ValueError, RuntimeError, EOFError, ...
        reason = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint (model.pt), but torch.load cannot read it "
                         f"({type(err).__name__}: {reason}).") from err
    if not isinstance(payload, Mapping) or "model_spec" not in payload or "state_dict" not in payload:
        raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint with 'model_spec' and 'state_dict', but it is not.")
    return dict(payload)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`jmlkit.engine.fit` (``model.pt``, or a run folder holding one), in eval mode.

    A run folder must be complete (its completion marker written: not an interrupted run, not one
    still running); a path to a ``model.pt`` file is read as it is. The model's ``jmlkit_spec``
    attribute is the checkpoint's model spec (``arch, encoder, num_classes, in_channels, kwargs``).
    Errors: see :func:`read_checkpoint`.

    >>> import tempfile, torch
    >>> from jmlkit.io import mark_done
    >>> from jmlkit.models import build_model
    >>> net = build_model("tiny", num_classes=3, in_channels=1)
    >>> spec = {"arch": "tiny", "encoder": None, "num_classes": 3, "in_channels": 1, "kwargs": {}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_checkpoint(f"{d}/model.pt", net, spec)
    ...     again = load_checkpoint(f"{d}/model.pt")
    ...     try:
    ...         load_checkpoint(d)  # a folder without its completion marker
    ...     except ValueError as err:
    ...         print(str(err).split(": ", 1)[1])
    ...     _ = mark_done(d, hash="abc")
    ...     again = load_checkpoint(d)
    no recipe.json; interrupted or still running?
    >>> x = torch.randn(1, 1, 16, 16)
    >>> bool(torch.equal(net.eval()(x), again(x))), again.jmlkit_spec["num_classes"]
    (True, 3)
    """
    payload = read_checkpoint(path, map_location=map_location)
    model = build_from_spec(payload["model_spec"])
    model.load_state_dict(payload["state_dict"])
    model.jmlkit_spec = dict(payload["model_spec"])
    return model.eval()


def load_run(run_dir: str | os.PathLike) -> tuple[TrainConfig, pd.DataFrame, dict[str, Any]]:
    """Read a complete run folder back: ``(config, history, metrics)`` (the model: :func:`load_checkpoint`).

    A folder without its completion marker (interrupted, still running) is a ``ValueError`` naming it.
    """
    run_dir = Path(run_dir)
    require_complete(run_dir)
    config = TrainConfig.from_json(run_dir / "config.json")
    history = pd.read_csv(run_dir / "history.csv") if (run_dir / "history.csv").exists() else pd.DataFrame()
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    return config, history, metrics
