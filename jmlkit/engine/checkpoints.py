"""Checkpoints and run folders: the model spec, ``model.pt``, and reading a complete run folder back."""
from __future__ import annotations

import json
import os
import warnings
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
from jmlkit.layout import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE

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
    A checkpoint holds tensors and plain values only (``None``, bools, numbers, strings, lists, tuples,
    dicts with string keys), so that it loads with ``torch.load(weights_only=True)``: ``spec`` or an
    ``extra`` value holding anything else is a ``TypeError`` naming it, and nothing is written.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    _check_plain("spec", spec)
    for key, value in extra.items():
        _check_plain(key, value)
    payload = {"model_spec": dict(spec), "state_dict": state, "config": config.to_dict() if config else None, **extra}
    atomic_torch_save(payload, path)
    return path


def _check_plain(name: str, value: Any) -> None:
    """``TypeError`` naming ``name`` unless ``value`` is a tensor or plain values (what ``weights_only`` loads).

    Types are matched exactly: a subclass (``numpy.float64``, a named tuple, a ``str`` enum) pickles its class."""
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(f"{name}[{i}]", item)
        return
    if type(value) is dict:
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"Expected the keys of `{name}` to be strings (a checkpoint holds plain values), "
                                f"but got {key!r} ({type(key).__name__}).")
            _check_plain(f"{name}[{key!r}]", item)
        return
    raise TypeError(f"Expected `{name}` to hold tensors and plain values (None, bool, int, float, str, list, tuple, "
                    f"dict) so that the checkpoint loads with weights_only=True, but got {type(value).__name__}.")


def _checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or the ``model.pt`` of the complete run folder ``path``."""
    path = Path(path)
    if path.is_dir():
        require_complete(path)
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"Expected a checkpoint (model.pt) in the run folder {str(path)!r}, but it has none "
                                    "(trained with save_checkpoint=False?).")
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Expected a checkpoint file (model.pt or a run folder holding one), but {str(path)!r} does not exist.")
    return path


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0].split(". ")[0][:200]


def _refusal(err: BaseException) -> str | None:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words (``None``: not such a refusal).

    torch's message also says that ``weights_only=False`` "will likely succeed", or how to allow the object's
    class (``add_safe_globals``): advice we do not pass on."""
    text = str(err)
    if "weights only load failed" not in text.lower() and "WeightsUnpickler" not in text:
        return None
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.lower().startswith(("weights only load failed", "check the documentation",
                                                                    "please file an issue"))]
    return (lines[0] if lines else type(err).__name__).split(". ")[0][:200].rstrip(".")  # not the advice that follows


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The payload of the checkpoint file ``path``, loaded with ``weights_only=True``; checked."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says what matters
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # garbage, another format, a truncated file (RuntimeError, EOFError, OSError), pickled code
        refused = _refusal(err)
        if refused is not None and any(word in refused.lower() for word in ("global", "unsupported class")):
            raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint of tensors and plain values, but it holds a "
                             f"Python object torch.load refuses to run (weights_only): {refused}.") from None
        reason = refused if refused is not None else _first_line(err)
        if _size(path) == 0:
            raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint (model.pt), but it is empty.") from err
        detail = f"{type(err).__name__}: {reason}" if reason else type(err).__name__
        raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint (model.pt), but torch.load cannot read it "
                         f"with weights_only=True ({detail}).") from (None if refused else err)
    if not isinstance(payload, Mapping) or "model_spec" not in payload or "state_dict" not in payload:
        raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint with 'model_spec' and 'state_dict', but it is not.")
    spec, state = payload["model_spec"], payload["state_dict"]
    if (not isinstance(spec, Mapping) or not isinstance(spec.get("arch"), str)
            or not all(isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("num_classes", "in_channels"))
            or not isinstance(spec.get("kwargs", {}), Mapping) or not isinstance(spec.get("encoder"), (str, type(None)))):
        raise ValueError(f"Expected the 'model_spec' of {str(path)!r} to be a dict with arch (str), encoder, num_classes and "
                         f"in_channels (ints) and kwargs (a dict), but got {str(spec)[:120]}.")
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"Expected the 'state_dict' of {str(path)!r} to map parameter names to tensors, but it does not.")
    return dict(payload)


def read_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The payload of a checkpoint: ``model.pt``, or a complete run folder holding one (see :func:`load_checkpoint`).

    The file is read with ``torch.load(weights_only=True)``: tensors and plain values, never code. Raises
    ``FileNotFoundError`` (no such file, or a run folder without ``model.pt``), ``ValueError``
    naming the folder when it is not a complete run folder (:func:`~jmlkit.engine.runfolder.require_complete`)
    and ``ValueError`` naming the file when it is not a jmlkit checkpoint (garbage, another format, a
    truncated file, a pickled Python object that ``weights_only`` refuses to run, a malformed model spec).
    """
    return _read(_checkpoint_file(path), map_location)


def _fit_state(path: Path, model: nn.Module, spec: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> None:
    """``ValueError`` naming ``path`` unless ``state`` has exactly the keys and shapes of ``model``'s state dict."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), first {missing[0]!r}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), first {unexpected[0]!r}")
    if mismatched:
        k = mismatched[0]
        problems.append(f"{len(mismatched)} key(s) of another shape, first {k!r}: {tuple(state[k].shape)} in the file, "
                        f"{tuple(own[k].shape)} in the model")
    if problems:
        raise ValueError(f"Expected the state_dict of {str(path)!r} to fit its own model_spec (arch={spec['arch']!r}), "
                         "but it does not: " + "; ".join(problems) + ".")


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`jmlkit.engine.fit` (``model.pt``, or a run folder holding one), in eval mode.

    A run folder must be complete (its completion marker written: not an interrupted run, not one
    still running); a path to a ``model.pt`` file is read as it is, with ``weights_only=True`` (a file
    that holds pickled Python objects is refused, and none of its code runs). The model's ``jmlkit_spec``
    attribute is the checkpoint's model spec (``arch, encoder, num_classes, in_channels, kwargs``).
    Errors: see :func:`read_checkpoint`; also a ``ValueError`` naming the file when its weights do not fit
    the model of its own spec (the first missing, unexpected or differently shaped key).

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
    file = _checkpoint_file(path)
    payload = _read(file, map_location)
    try:
        model = build_from_spec(payload["model_spec"])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"Expected the model_spec of {str(file)!r} to describe a model of jmlkit.models.build_model, "
                         f"but it does not ({type(err).__name__}: {_first_line(err)}).") from None
    _fit_state(file, model, payload["model_spec"], payload["state_dict"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # what _fit_state does not see (e.g. a dtype torch cannot copy)
        raise ValueError(f"Expected the state_dict of {str(file)!r} to fit its own model_spec, but it does not "
                         f"({_first_line(err)}).") from None
    model.jmlkit_spec = dict(payload["model_spec"])
    return model.eval()


def load_run(run_dir: str | os.PathLike) -> tuple[TrainConfig, pd.DataFrame, dict[str, Any]]:
    """Read a complete run folder back: ``(config, history, metrics)`` (the model: :func:`load_checkpoint`).

    A folder without its completion marker (interrupted, still running) is a ``ValueError`` naming it.
    """
    run_dir = Path(run_dir)
    require_complete(run_dir)
    config = TrainConfig.from_json(run_dir / CONFIG_FILE)
    history = pd.read_csv(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).exists() else pd.DataFrame()
    metrics = json.loads((run_dir / METRICS_FILE).read_text()) if (run_dir / METRICS_FILE).exists() else {}
    return config, history, metrics
