"""sync_distributed: 2 CPU processes (gloo) with DDP give the loss and gradients of one process on the whole batch."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import jmlkit.losses as L

pytestmark = pytest.mark.xdist_group("dist")
WORLD = 2
CASES = [("jml", "hard", "batch"), ("jml", "soft", "batch"), ("dml", "hard", "class"), ("jml", "soft", "image"),
         ("jml", "hard", {"batch": 0.5, "class": 0.5}),
         # the cross-entropy and the Lovász loss, with more ignored pixels on the first rank than on the second
         ("ce", "ignored", "batch"), ("lovasz", "ignored", "batch"), ("lovasz", "ignored", "image")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_data(B=4, C=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 2, 6, 6, generator=g)
    t = torch.randint(0, C, (B, 6, 6), generator=g)
    t[:2] = t[:2].clamp(max=1)  # class 2 only on the second rank: presence must be global
    y = torch.softmax(3 * torch.randn(B, C, 6, 6, generator=g), 1)
    model = torch.nn.Conv2d(2, C, 1)
    with torch.no_grad():
        model.weight.copy_(torch.randn(C, 2, 1, 1, generator=g))
        model.bias.zero_()
    return model, x, t, y


def loss_fn(name, target, logits, aggregate, sync):
    if name == "ce":
        return L.soft_cross_entropy(logits, target, ignore_index=255, sync_distributed=sync)
    if name == "lovasz":
        return L.lovasz_softmax_loss(logits, target, ignore_index=255, per_image=aggregate == "image",
                                     sync_distributed=sync)
    fn = L.jaccard_metric_loss if name == "jml" else L.dice_semimetric_loss
    return fn(logits, target, aggregate=aggregate, sync_distributed=sync)


def pick(kind, t, y):
    if kind == "ignored":
        t = t.clone()
        t[0, :4] = 255
        t[1, 2:, :3] = 255
    return t if kind != "soft" else y


def worker(rank, port, out, cases):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for i, (name, kind, aggregate) in enumerate(cases):
            model, x, t, y = make_data()
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            part = slice(rank * 2, rank * 2 + 2)
            target = pick(kind, t, y)[part]
            loss = loss_fn(name, target, ddp(x[part]), aggregate, sync=True)
            loss.backward()
            if rank == 0:
                out[i] = (loss.item(), model.weight.grad.clone(), model.bias.grad.clone())
    finally:
        dist.destroy_process_group()


def test_ddp_matches_single_process():
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(worker, args=(free_port(), out, CASES), nprocs=WORLD, join=True)
    for i, (name, kind, aggregate) in enumerate(CASES):
        model, x, t, y = make_data()
        loss = loss_fn(name, pick(kind, t, y), model(x), aggregate, sync=False)
        loss.backward()
        got_loss, got_w, got_b = out[i]
        assert got_loss == pytest.approx(loss.item(), abs=1e-6), (name, kind, aggregate)
        torch.testing.assert_close(got_w, model.weight.grad, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got_b, model.bias.grad, atol=1e-6, rtol=1e-5)


def test_sync_without_process_group_is_a_no_op():
    _, x, t, _ = make_data()
    z = torch.randn(4, 3, 6, 6)
    assert L.jaccard_metric_loss(z, t, sync_distributed=True).item() == L.jaccard_metric_loss(z, t).item()
