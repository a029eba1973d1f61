"""2 CPU processes on gloo give the same compute() as one process on all the data."""
from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


from jmlkit.metrics import BoundaryCalibration, CalibrationMetrics, SegmentationMetrics, to_python

C, IGN = 4, 255
pytestmark = pytest.mark.xdist_group("dist")


def _data():
    g = torch.Generator().manual_seed(11)
    # uneven shards: rank 0 gets 3 images, rank 1 gets 2 (exercises the padded 'cat' gather)
    probs = (2 * torch.randn(5, C, 8, 8, generator=g)).softmax(1)
    target = torch.randint(0, C, (5, 8, 8), generator=g)
    target[target == 3] = torch.where(torch.rand(int((target == 3).sum()), generator=g) < 0.5, 3, IGN)
    target[4] = IGN  # rank 1 holds an image whose pixels are all ignored
    target[0][target[0] == 2] = 0  # image 0's target lacks class 2, which its prediction holds
    return probs, target


def _metrics():
    return [
        SegmentationMetrics(C, ignore_index=IGN),  # present="target" (Wang et al.), the default
        SegmentationMetrics(C, ignore_index=IGN, present="union"),
        CalibrationMetrics(C, ignore_index=IGN, n_bins=10),
        CalibrationMetrics(C, ignore_index=IGN, region="boundary", boundary_width=1),
        BoundaryCalibration(C, ignore_index=IGN, max_distance=3),
    ]


def _flatten(results):
    """``{"<metric>.<key>[.<column>]": number or list}``: every figure, vector and table column, all tensors."""
    flat = {}
    for i, out in enumerate(results):
        for key, val in out.items():
            for column, v in (val.items() if isinstance(val, dict) else [("", val)]):
                assert isinstance(v, torch.Tensor), (key, column)
                flat[f"{i}.{key}{'.' if column else ''}{column}"] = to_python(v)
    return flat


def _worker(rank, port, queue):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        probs, target = _data()
        shard = slice(0, 3) if rank == 0 else slice(3, 5)
        metrics = _metrics()
        for m in metrics:
            m.update(probs[shard][:1], target[shard][:1])  # several updates per rank
            m.update(probs[shard][1:], target[shard][1:])
        results = [m.compute() for m in metrics]
        if rank == 0:
            queue.put(_flatten(results))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a, b):
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, abs=1e-9)


def test_two_gloo_processes_equal_one_process():
    probs, target = _data()
    metrics = _metrics()
    for m in metrics:
        m.update(probs, target)
    single = _flatten([m.compute() for m in metrics])
    for key in ("mIoU_I", "mIoU_C", "mDice_I"):  # the data tells the two definitions apart
        assert single[f"0.{key}"] != pytest.approx(single[f"1.{key}"], abs=1e-6), key

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        distributed = queue.get(timeout=120)
    finally:
        for p in procs:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert distributed.keys() == single.keys()
    bad = [k for k in single if not _close(single[k], distributed[k])]
    assert not bad, {k: (single[k], distributed[k]) for k in bad}
