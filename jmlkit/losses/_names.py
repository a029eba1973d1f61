"""Region losses by name: the one table behind :class:`~jmlkit.losses.CompoundLoss` and
:func:`~jmlkit.losses.get_loss` (it imports neither, so they do not import each other)."""
from __future__ import annotations

from typing import Any

from torch import nn

from jmlkit._checks import check_choice, check_str

from .dice import DiceSemimetricLoss, _dml_score
from .jaccard import JaccardMetricLoss, SoftJaccardLoss, _jml1_score, _jml2_score, _sjl_score
from .lovasz import LovaszSoftmaxLoss

#: The options the Lovász-Softmax loss takes (any other raises ``TypeError``).
LOVASZ_KEYS = frozenset({"mode", "from_logits", "classes", "per_image", "ignore_index", "sync_distributed",
                         "validate_args"})

def check_known_options(loss: str, options: dict[str, Any], accepted: Any) -> dict[str, Any]:
    """``options`` when each is one ``loss`` takes; otherwise a ``TypeError`` naming the unknown ones, the loss
    and the accepted options (the message of :class:`~jmlkit.losses._base.RegionLossBase`)."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"{loss} got unknown option(s) {unknown}; expected some of {sorted(accepted)}.")
    return options


#: Region loss name -> builder taking the loss options as keywords.
REGION_LOSSES = {
    "jml": lambda **kw: JaccardMetricLoss(**kw),
    "jml1": lambda **kw: JaccardMetricLoss(variant=1, **kw),
    "jml2": lambda **kw: JaccardMetricLoss(variant=2, **kw),
    "dml": lambda **kw: DiceSemimetricLoss(**kw),
    "sjl": lambda **kw: SoftJaccardLoss(**kw),
    "lovasz": lambda **kw: LovaszSoftmaxLoss(**check_known_options("LovaszSoftmaxLoss", kw, LOVASZ_KEYS)),
}


#: Region loss name -> its per-class score ``score(stats, smooth)`` of the four sums of
#: :func:`~jmlkit.losses.region_statistics` (``sx``, ``sy``, ``sxy``, ``sd``: sums of x, y, x·y, |x − y|
#: per image and class); the loss is ``1 - score``, reduced over the selected classes. Exposed for teaching and
#: analysis code that needs the loss of every element of a batch at once (notebook 01's loss maps).
REGION_SCORES = {"jml": _jml1_score, "jml1": _jml1_score, "jml2": _jml2_score, "dml": _dml_score, "sjl": _sjl_score}


def loss_key(name: Any, arg: str = "name") -> str:
    """``name`` as a table key: stripped, lower case, without spaces (``" CE + JML"`` -> ``"ce+jml"``)."""
    return check_str(arg, name).strip().lower().replace(" ", "")


def build_region_loss(name: Any, **options: Any) -> nn.Module:
    """The region loss called ``name`` (a key of :data:`REGION_LOSSES`) with ``options``."""
    return REGION_LOSSES[check_choice("region_loss", loss_key(name, "region_loss"), tuple(REGION_LOSSES))](**options)
