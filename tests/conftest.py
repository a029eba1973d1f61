"""Shared test set-up: offline hub, non-interactive plots, a deterministic hypothesis profile."""
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JMLKIT_HEADLESS", "1")  # notebooks executed by the tests have no widget front end

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# ------------------------------------------------------------------------------------------------ xdist groups
# `make test` runs `pytest -n 2 --dist loadgroup` so that the tests of one `xdist_group` (the DDP tests, the tests
# that execute notebooks, the browser test) run one after another on one worker instead of fighting over the two
# cores. pytest-xdist 3.8 marks a group by appending it to each node id, which pytest >= 9 no longer lets a plugin
# change, so the groups silently vanished. Instead, each worker writes {node id: group} to a folder the controller
# made, and the controller's scheduler (load scheduling with one scope per group, one per ungrouped test) reads it.
_GROUPS_KEY = "jmlkit_xdist_groups"


def _loadgroup(config) -> bool:
    return getattr(config.option, "dist", "no") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    if _loadgroup(node.config):
        if not hasattr(node.config, "_jmlkit_groups_dir"):
            node.config._jmlkit_groups_dir = tempfile.mkdtemp(prefix="jmlkit-xdist-groups-")
        node.workerinput[_GROUPS_KEY] = node.config._jmlkit_groups_dir


def pytest_collection_modifyitems(config, items):
    folder = getattr(config, "workerinput", {}).get(_GROUPS_KEY)
    if folder:
        groups = {item.nodeid: "_".join(sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                                                for m in item.iter_markers("xdist_group")}))
                  for item in items if item.get_closest_marker("xdist_group")}
        target = Path(folder) / f"{config.workerinput['workerid']}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(target)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if not _loadgroup(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class MarkGroupScheduling(LoadScopeScheduling):
        """Load scheduling in which the tests of one ``xdist_group`` mark form one scope."""

        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:
                folder = Path(getattr(config, "_jmlkit_groups_dir", "") or "/nonexistent")
                self._groups = {k: v for f in sorted(folder.glob("*.json")) for k, v in json.loads(f.read_text()).items()}
            group = self._groups.get(nodeid)
            return f"group:{group}" if group else nodeid

    return MarkGroupScheduling(config, log)


@pytest.fixture
def live(monkeypatch):
    """As in JupyterLab: widgets are built (not a batch run); every PNG a widget sends to the front end is kept."""
    pytest.importorskip("ipywidgets")
    import jmlkit.plot as plot
    from jmlkit.plot import explorers, interactive

    monkeypatch.setenv(plot.HEADLESS_ENV, "0")
    sent: list[bytes] = []
    monkeypatch.setattr(interactive, "_show_png", sent.append)
    monkeypatch.setattr(explorers, "_show_png", sent.append)
    return sent
