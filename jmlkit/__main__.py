"""Command line: ``python -m jmlkit train ...`` (one training run) and ``python -m jmlkit run ...`` (notebooks).

Examples::

    python -m jmlkit train --dataset digits --labels ls --loss ce+jml --epochs 2 --out runs/ls
    python -m jmlkit train --labels kd --teacher runs/teacher --kd-temperature 2 --out runs/kd
    python -m jmlkit train --labels ssl --labeled-fraction 0.25 --ssl-method fixmatch --out runs/ssl
    torchrun --nproc_per_node=2 -m jmlkit train --labels hard --out runs/ddp
    python -m jmlkit run --profile quick --out runs/quick
    python -m jmlkit report runs/quick            # runs/quick/report/index.html
    python -m jmlkit student handout              # notebooks without their solution cells
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from jmlkit._checks import OneLineParser

_DESCRIPTION = "jmlkit: Jaccard Metric Losses for hard and soft labels."

_TRAIN_DESCRIPTION = """\
Train a segmentation model with hard, smoothed (ls), distilled (kd), semi-supervised (ssl) or
soft labels, evaluate it on the test split and write the run folder OUT (config.json,
history.csv, metrics.json with mIoU_D, ECE_D, ...; model.pt; recipe.json, the completion marker).
The folder is built aside (a hidden .OUT.partial-... next to it) and renamed to OUT only when
complete; OUT must be new or empty unless --overwrite, which replaces the run in OUT only when the
new one is complete (an interrupted run keeps it).

Options start from the profile of jmlkit.profiles, the same table the notebooks use (--profile):
{profiles}
then a --config JSON file, then the options given here. Under `torchrun --nproc_per_node=N -m jmlkit train ...`
the run uses DistributedDataParallel (gloo on CPU, NCCL on GPUs); only rank 0 writes.
"""


def _train_description() -> str:
    """:data:`_TRAIN_DESCRIPTION` with one line per profile, read from :data:`jmlkit.profiles.PROFILES`."""
    from jmlkit.profiles import PROFILE_NAMES, describe_training

    notes = {"smoke": " (seconds, for tests)"}
    lines = [f"  {name}: {describe_training(name)}{notes.get(name, '')}" for name in PROFILE_NAMES]
    return _TRAIN_DESCRIPTION.format(profiles="\n".join(lines))

_TRAIN_EPILOG = """\
examples:
  python -m jmlkit train --dataset digits --labels ls --loss ce+jml --epochs 2 --out runs/ls
  python -m jmlkit train --labels ls --smoothing boundary --epsilon 0.2 --out runs/bls
  python -m jmlkit train --model teacher --epochs 10 --out runs/teacher
  python -m jmlkit train --labels kd --teacher runs/teacher --kd-temperature 2 --out runs/kd
  python -m jmlkit train --labels ssl --labeled-fraction 0.25 --ssl-method ema --out runs/ssl
  python -m jmlkit train --labels soft --loss jml --dataset-kwargs size=48,noise=0.1 --out runs/soft
  torchrun --nproc_per_node=2 -m jmlkit train --num-threads 1 --out runs/ddp
  python -m jmlkit train --epochs 30 --out runs/ls --overwrite   # replace the run in runs/ls

exit codes:
  0    the run finished; OUT is complete
  1    a failure during training (the traceback is printed); no run folder written, a run in OUT is kept
  2    a usage error, found before any work: an unknown option (usage and the error), or one line on stderr
       for a bad value, missing data or teacher, an unavailable device, OUT a file, not writable or not
       empty without --overwrite (--debug: with the traceback); also when another process finished a
       run in OUT first: OUT is left as it is and this run is kept in OUT.kept-<pid>-<hex> next to it
  130  interrupted (Ctrl-C or SIGTERM): no run folder written, a run in OUT is kept
"""

_KEY_METRICS = ("Acc", "mIoU_D", "mIoU_I", "mIoU_C", "mDice_D", "ECE_D", "ECE_I", "SCE_D", "Brier", "NLL")


def _parse_dict(text: str) -> dict[str, Any]:
    """``'{"a": 1}'`` (JSON) or ``'a=1,b=x'`` (values decoded as JSON when they are)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"invalid JSON object {text!r}: {err}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
        return value
    out: dict[str, Any] = {}
    for part in _split_top_level(text):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pairs separated by commas, got {part!r}")
        key, raw = part.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: ``'a=1,b=[2,3]'`` -> ``['a=1', 'b=[2,3]']``."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _optional(cast: Any) -> Any:
    def parse(text: str) -> Any:
        if text.strip().lower() in ("none", "null", ""):
            return None
        return cast(text)

    parse.__name__ = getattr(cast, "__name__", "value")
    return parse


def _field_type(annotation: str) -> tuple[Any, bool]:
    """Argparse ``type`` from a (string) annotation, and whether it is a bool flag."""
    ann = annotation.replace(" ", "")
    optional = "|None" in ann or "None|" in ann
    base = ann.replace("|None", "").replace("None|", "")
    if base == "bool":
        return None, True
    if base.startswith("dict"):
        cast: Any = _parse_dict
    elif base == "int":
        cast = int
    elif base == "float":
        cast = float
    else:
        cast = str
    return (_optional(cast) if optional else cast), False


_METAVARS = {"out": "DIR", "teacher": "PATH", "encoder_weights": "WEIGHTS", "device": "DEVICE", "loss": "NAME",
             "dataset": "NAME", "model": "NAME", "encoder": "NAME"}


def _metavar(annotation: str) -> str:
    ann = annotation.replace(" ", "")
    if ann.startswith("dict"):
        return "K=V,..."
    if ann.startswith("int"):
        return "N"
    if ann.startswith("float"):
        return "X"
    return "NAME"


def _train_parser(prog: str = "python -m jmlkit train") -> argparse.ArgumentParser:
    from jmlkit.engine.config import SECTIONS, TrainConfig
    from jmlkit.engine.objectives import label_modes
    from jmlkit.profiles import PROFILE_NAMES

    parser = OneLineParser(
        prog=prog, description=_train_description(), epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="quick",
                        help="profile of jmlkit.profiles that sets every default (default: quick)")
    parser.add_argument("--config", metavar="FILE", help="JSON file of TrainConfig options (e.g. a run's config.json)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--debug", action="store_true",
                        help="usage errors and interruptions raise with their traceback instead of one line")
    quick = TrainConfig.from_profile("quick")
    for section in SECTIONS:  # one argument group per config section
        group = parser.add_argument_group(section.title)
        for f in dataclasses.fields(section):
            cast, is_bool = _field_type(str(f.type))
            names = ["--" + f.name.replace("_", "-")] + {"out": ["-o"], "model": ["--arch"]}.get(f.name, [])
            default = getattr(quick, f.name)
            shown = json.dumps(default) if isinstance(default, dict) else default
            help_text = f"{f.metadata.get('help', '')} (quick default: {shown})".replace("%", "%%")
            kwargs: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
            if is_bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif "choices" in f.metadata or f.name == "labels":
                kwargs.update(type=cast, choices=f.metadata.get("choices") or label_modes())
            else:
                kwargs.update(type=cast, metavar=_METAVARS.get(f.name) or _metavar(str(f.type)))
            group.add_argument(*names, **kwargs)
    return parser


class _UsageError(Exception):
    """A user error of ``python -m jmlkit train``, reported as one line with exit code 2."""


def _option_names(message: str) -> str:
    """``Expected `kd_temperature` ...`` -> ``Expected `--kd-temperature` ...``: config fields named as options.

    In ```dataset_kwargs` of dataset='digits': Expected `seed` ...`` only the head is rewritten: the rest names an
    option inside ``--dataset-kwargs`` (its ``seed``, not ``--seed``).
    """
    import re

    from jmlkit.engine.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    nested = re.match(r"`[a-z_]+_kwargs` of [^:]*: ", message)
    head, tail = (message[:nested.end()], message[nested.end():]) if nested else (message, "")
    return re.sub(r"`([a-z_]+)`", lambda m: f"`--{m[1].replace('_', '-')}`" if m[1] in fields else m[0], head) + tail


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _train_config(args: dict[str, Any]) -> Any:
    """The TrainConfig of the parsed options (``--profile``, then ``--config``, then the options given)."""
    from jmlkit.engine import TrainConfig

    profile = args.pop("profile")
    config_file = args.pop("config", None)
    overrides: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as err:
            raise _UsageError(f"--config {config_file}: {err}") from err
        if not isinstance(data, dict):
            raise _UsageError(f"Expected `--config` {config_file!r} to hold a JSON object of TrainConfig options, "
                              f"but it holds a {type(data).__name__}.")
        data.pop("overwrite", None)  # replacing a run is asked for on the command line, never inherited from a file
        overrides.update(data)
    overrides.update(args)
    return TrainConfig.from_profile(profile, keep_none=True, **overrides)


def _interrupted_line(out: str | None, before: Any) -> str:
    """What an interruption leaves, in one line (``before``: the completion marker of OUT before the run)."""
    from jmlkit.layout import read_done

    if out is None:
        return "interrupted: nothing written"
    now = read_done(out)
    if now is not None and now != before:
        return f"interrupted after the run finished: {out} is complete"
    if before is not None:
        return f"interrupted: no run folder written; the previous run in {out} is kept"
    return f"interrupted: no run folder written to {out}"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def train_main(argv: Sequence[str] | None = None) -> int:
    """``python -m jmlkit train``: parse options, check them (:func:`jmlkit.engine.preflight`), run
    :func:`jmlkit.engine.fit` with that check (``checked=``: nothing checked twice, the teacher loaded once), print
    the metrics.

    Returns the exit code: 0 done, 2 a usage error found before any work (one line on stderr),
    130 interrupted (Ctrl-C or SIGTERM; no run folder written). A failure during training raises.
    """
    import os
    import signal
    import threading

    import jmlkit.engine as engine
    from jmlkit.engine.runfolder import FolderTaken
    from jmlkit.layout import read_done

    prog = "python -m jmlkit train"
    parser = _train_parser(prog)
    args = vars(parser.parse_args(list(argv) if argv is not None else None))
    progress = args.pop("progress", True)
    quiet = args.pop("quiet", False)
    debug = args.pop("debug", False)
    out = args.get("out")
    before = None
    main_thread = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt) if main_thread else None
    try:
        try:
            config = _train_config(args)
            out = config.out
            before = read_done(out) if out is not None else None
            checked = engine.preflight(config)
        except (_UsageError, ValueError, TypeError, FileNotFoundError) as err:
            if debug:
                raise
            print(f"{prog}: error: {_one_line(_option_names(str(err)))}", file=sys.stderr)
            return 2
        try:
            result = engine.fit(config, checked=checked, progress=progress and not quiet)  # checked once
        except FolderTaken as err:  # another process finished a run in OUT first: left as it is, ours kept aside
            if debug:
                raise
            print(f"{prog}: error: {_one_line(_option_names(str(err)))}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: {_interrupted_line(out, before)}", file=sys.stderr)
        return 130
    finally:
        if main_thread and old_term is not None:
            signal.signal(signal.SIGTERM, old_term)

    if not quiet and int(os.environ.get("RANK", "0")) == 0:
        shown = {k: result.metrics[k] for k in _KEY_METRICS if isinstance(result.metrics.get(k), (int, float))}
        print("metrics (" + (config.eval_split or "no eval split") + "): "
              + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))
        print(f"train time: {result.metrics.get('train_time_s', float('nan')):.1f} s")
        if result.run_dir is not None:
            print(f"run folder: {result.run_dir}")
    return 0


def _top_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m jmlkit", description=_DESCRIPTION,
        epilog="Run `python -m jmlkit COMMAND --help` for the options of a command.",
    )
    from jmlkit import __version__

    parser.add_argument("--version", action="version", version=f"jmlkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train one model (label modes hard, ls, kd, ssl, soft) and write a run folder", add_help=False)
    sub.add_parser("run", help="execute notebooks with papermill (profiles, sweeps, figures, summary.csv)", add_help=False)
    sub.add_parser("readme", help="rewrite the README's generated blocks (the paper's claims, the result tables) from the result files", add_help=False)
    sub.add_parser("report", help="render a batch folder of `run` as HTML: an index and one page per executed notebook", add_help=False)
    sub.add_parser("student", help="write student copies of the notebooks: solution cells removed, outputs cleared", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jmlkit`` and the ``jmlkit`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return train_main(argv[1:])
    if argv and argv[0] == "run":
        from jmlkit.runner import main_run

        return int(main_run(argv[1:]) or 0)
    if argv and argv[0] == "readme":
        from jmlkit.runner.readme import main_readme

        return main_readme(argv[1:])
    if argv and argv[0] == "report":
        from jmlkit.runner.report import main_report

        return main_report(argv[1:])
    if argv and argv[0] == "student":
        from jmlkit.runner.student import main_student

        return main_student(argv[1:])
    parser = _top_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2 if argv else 0
    return 0  # pragma: no cover - train/run are dispatched above


if __name__ == "__main__":
    sys.exit(main())
