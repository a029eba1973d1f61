"""Training engine (being split into config, objectives, loop, evaluation, checkpoints, distributed)."""
from jmlkit.engine.loop import *  # noqa: F401,F403
from jmlkit.engine.loop import (LABEL_MODES, FitResult, Prediction, TrainConfig, evaluate, fit, load_checkpoint,  # noqa: F401
                                load_run, lr_factor, make_dataset, make_loss, predict, save_checkpoint)
from jmlkit.engine.loop import _resolve_device as resolve_device  # noqa: F401
