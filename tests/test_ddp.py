"""fastmix.MixupCollate under DistributedDataParallel on the CPU: two processes (gloo), each with a
DistributedSampler and the collate in its DataLoader, train a tiny model on soft targets. The loss
goes down, stays finite, and the two ranks draw different lambdas from the same seed."""
import datetime
import math
import os
import queue
import socket
import traceback

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import fastmix

WORLD_SIZE = 2
NUM_CLASSES = 4
EPOCHS = 8
TIMEOUT_S = 90
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220], [210, 210, 60]], dtype=np.float64)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ColouredSquares(torch.utils.data.Dataset):
    """64 images (16, 16, 3) uint8 HWC: a class colour plus noise; learnable from the mean colour."""

    def __init__(self, n=64):
        rng = np.random.default_rng(0)
        self.labels = [i % NUM_CLASSES for i in range(n)]
        noise = rng.normal(0, 40, (n, 16, 16, 3))
        self.images = np.clip(COLOURS[self.labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def train(rank, port, results, done):
    error, value = None, None
    try:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        torch.set_num_threads(1)
        torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE,
                                             timeout=datetime.timedelta(seconds=TIMEOUT_S))
        torch.manual_seed(0)  # same initial model on both ranks (DDP also broadcasts rank 0's)

        ds = ColouredSquares()
        sampler = torch.utils.data.distributed.DistributedSampler(ds, num_replicas=WORLD_SIZE, rank=rank, seed=0)
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=NUM_CLASSES, seed=0, mode="elem")
        collate = fastmix.MixupCollate(mix, dtype=torch.float32, mean=MEAN, std=STD)
        loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler, num_workers=0, collate_fn=collate)

        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, NUM_CLASSES),
        )
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.Adam(ddp.parameters(), lr=0.03)
        losses, lams, shapes = [], [], set()
        for epoch in range(EPOCHS):
            sampler.set_epoch(epoch)
            for images, targets in loader:
                shapes.add((tuple(images.shape), images.dtype, tuple(targets.shape)))
                lams.append(mix.last_params.lam.clone())
                loss = -(targets * ddp(images).log_softmax(-1)).sum(-1).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        # DDP kept the replicas in step: both ranks end with the same weights.
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(weights) for _ in range(WORLD_SIZE)]
        torch.distributed.all_gather(gathered, weights)
        in_step = all(torch.equal(gathered[0], g) for g in gathered)
        torch.distributed.barrier()
        value = {"losses": losses, "lams": torch.stack(lams).tolist(), "shapes": shapes, "in_step": in_step}
    except BaseException:  # report it to the test instead of leaving the other rank waiting
        error = traceback.format_exc()
    results.put((rank, error, value))
    results.close()
    results.join_thread()  # the result is in the pipe, whatever happens next
    # Leave without tearing gloo down: freeing DDP's reducer (and with it the gloo process group)
    # while gloo's work thread still releases a finished allreduce deadlocks on the GIL now and
    # then (torch 2.13, seen here). Wait until the test has every rank's result, then exit.
    done.wait(TIMEOUT_S)
    os._exit(0 if error is None else 1)


@pytest.mark.slow
def test_ddp_training_with_mixup_collate_on_cpu():
    context = mp.get_context("spawn")
    results, done = context.Queue(), context.Event()
    port = free_port()
    procs = [context.Process(target=train, args=(rank, port, results, done), daemon=True)
             for rank in range(WORLD_SIZE)]
    for p in procs:
        p.start()
    out = {}
    try:
        for _ in range(WORLD_SIZE):
            rank, error, value = results.get(timeout=TIMEOUT_S)
            assert error is None, f"rank {rank} failed:\n{error}"
            out[rank] = value
    except queue.Empty:
        raise AssertionError(f"no result from ranks {sorted(set(range(WORLD_SIZE)) - set(out))} within {TIMEOUT_S} s")
    finally:
        done.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    steps = EPOCHS * len(ColouredSquares()) // (WORLD_SIZE * 8)
    for rank, value in out.items():
        losses = value["losses"]
        assert len(losses) == steps
        assert all(math.isfinite(loss) for loss in losses), losses
        first, last = np.mean(losses[:4]), np.mean(losses[-8:])
        assert last < first - 0.1, f"rank {rank}: the loss did not go down: first {first:.3f}, last {last:.3f}"
        assert value["shapes"] == {((8, 3, 16, 16), torch.float32, (8, NUM_CLASSES))}
        assert value["in_step"]
    # Same Mixup seed, different ranks: different streams.
    lams0, lams1 = torch.tensor(out[0]["lams"]), torch.tensor(out[1]["lams"])
    assert lams0.shape == lams1.shape == (steps, 8)
    assert not torch.equal(lams0, lams1)
    assert not torch.equal(lams0[0], lams1[0]), "the ranks start with the same lambdas"
