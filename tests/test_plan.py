"""The in-place plans of csrc/mix_plan.h, built on the host: torch.ops.fastmix.device_plan (the CUDA
kernels', which fastmix.Mixup copies to the GPU beside the params) and torch.ops.fastmix.inplace_plan
(the CPU kernels' steps, which numba takes from the extension).

A device plan is checked here without running a kernel: its bytes are parsed, its launches checked
for races (groups of one launch touch disjoint samples and head slots; heads are saved in the first
launch and read in the second), and its steps walked on symbolic samples, so that every mixed
sample is written once, from its own original and its partner's. Long cycles are cut into segments:
no thread walks more than SEGMENT + 1 steps, whatever the batch (it was B + 1 for a roll of B
samples when the device built the plan in one block)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastmix import MixParams
from fastmix.backends import checks
from fastmix.backends.device_params import plan_shape, to_device, with_plans
from fastmix.sampling.partners import derangement_partners

from .helpers import HAS_NUMBA, random_params, requires_cpp

pytestmark = requires_cpp

SEGMENT = 32  # csrc/mix_plan.h's kSegmentSteps
SAVE, APPLY, APPLY_FROM_BUFFER, PAIR, SAVE_HEAD, APPLY_FROM_HEAD = range(6)  # StepOp
NONE, BLEND, PASTE = 0, 1, 2
MAGIC = 0x4C504D46


def parse_plan(plan: torch.Tensor) -> dict:
    """The fields of a device plan's bytes (csrc/mix_plan.h: header, groups, steps)."""
    header = plan[:64].view(torch.int32)
    assert int(header[0]) == MAGIC
    shape = dict(zip(checks.PLAN_SHAPE_FIELDS, header[1:7].tolist()))
    assert header[7:].tolist() == [0] * 9
    groups = shape["first_groups"] + shape["second_groups"]
    directory = plan[64:64 + 8 * groups].view(torch.int32).view(groups, 2).tolist()
    offset = 64 + (8 * groups + 63) // 64 * 64
    assert plan.numel() == offset + 64 * shape["steps"]
    raw = plan[offset:].view(shape["steps"], 64)
    words = raw.view(torch.int32)  # a, b, (op kind_a kind_b pad), lam_a, lam_b, box_a[4], box_b[4], pad[3]
    steps = {
        "a": words[:, 0].tolist(), "b": words[:, 1].tolist(), "op": raw[:, 8].tolist(),
        "kind_a": raw[:, 9].tolist(), "kind_b": raw[:, 10].tolist(),
        "lam_a": words[:, 3].view(torch.float32).tolist(), "lam_b": words[:, 4].view(torch.float32).tolist(),
        "box_a": words[:, 5:9].tolist(), "box_b": words[:, 9:13].tolist(),
    }
    launches = [directory[:shape["first_groups"]], directory[shape["first_groups"]:]]
    return {"shape": shape, "launches": launches, "steps": steps}


def group_lengths(parsed: dict) -> list:
    return [length for launch in parsed["launches"] for _, length in launch]


def verify_plan(params: MixParams, plan: torch.Tensor) -> dict:
    """The plan is race-free within each launch and applies params exactly: every mixed sample is
    written once from the originals of itself and its partner (through a register buffer or a head
    slot where that original is gone), every other sample never. Returns the parsed plan."""
    partner, kind = params.partner.tolist(), params.kind.tolist()
    lam, box = params.lam.tolist(), params.box.clamp(0, 2**31 - 1).tolist()
    batch = len(partner)
    mixed = [kind[i] != NONE and partner[i] != i for i in range(batch)]
    parsed = parse_plan(plan)
    shape, steps = parsed["shape"], parsed["steps"]
    assert shape["batch"] == batch
    assert shape["paste"] == int(any(m and k == PASTE for m, k in zip(mixed, kind)))
    assert shape["head_slots"] == 0 or shape["second_groups"] > 0
    value = [("original", i) for i in range(batch)]
    heads = [None] * shape["head_slots"]
    written = [0] * batch
    saved_in_first = set()
    covered = []
    for launch, directory in enumerate(parsed["launches"]):
        users = {}  # sample or ("head", h) -> the groups of this launch that read or write it
        writer = {}  # ... -> the group of this launch that writes it
        writes_in_launch = set()
        for g, (start, length) in enumerate(directory):
            assert length >= 1 and 0 <= start and start + length <= shape["steps"]
            covered.extend(range(start, start + length))
            buffer = None
            for t in range(start, start + length):
                op, a, b = steps["op"][t], steps["a"][t], steps["b"][t]
                assert steps["kind_a"][t] == kind[a] and steps["lam_a"][t] == np.float32(lam[a])
                assert steps["box_a"][t] == box[a]
                for thing in {a} | ({b} if op in (APPLY, PAIR) else set()) | ({("head", b)} if op >= SAVE_HEAD else set()):
                    users.setdefault(thing, set()).add(g)
                for thing in ({a} if op not in (SAVE, SAVE_HEAD) else set()) | ({b} if op == PAIR else set()) | (
                        {("head", b)} if op == SAVE_HEAD else set()):
                    assert writer.setdefault(thing, g) == g, f"launch {launch}: {thing} written by two groups"
                if op == SAVE:
                    buffer = value[a]
                elif op == SAVE_HEAD:
                    assert launch == 0 and value[a] == ("original", a) and heads[b] is None
                    heads[b] = value[a]
                    saved_in_first.add(a)
                else:
                    assert mixed[a] and value[a] == ("original", a), f"step {t} writes {a} twice or unmixed"
                    if op == PAIR:
                        assert partner[a] == b and partner[b] == a and mixed[b] and value[b] == ("original", b)
                        assert steps["kind_b"][t] == kind[b] and steps["box_b"][t] == box[b]
                        value[b], written[b] = ("mixed", b), written[b] + 1
                        writes_in_launch.add(b)
                    else:
                        source = {APPLY: lambda: value[b], APPLY_FROM_BUFFER: lambda: buffer,
                                  APPLY_FROM_HEAD: lambda: heads[b]}[op]()
                        if op == APPLY:
                            assert b == partner[a]
                        if op == APPLY_FROM_HEAD:
                            assert launch == 1, "a head is read in the second launch, after the first saved it"
                        assert source == ("original", partner[a]), f"step {t}: {a} reads {source}"
                    value[a], written[a] = ("mixed", a), written[a] + 1
                    writes_in_launch.add(a)
        for thing, g in writer.items():
            assert users[thing] == {g}, f"launch {launch}: {thing} written by group {g}, used by {users[thing]}"
        if launch == 0:
            assert not (saved_in_first & writes_in_launch), "a head's sample is written while it is saved"
    assert sorted(covered) == list(range(shape["steps"])), "the groups cover every step once"
    assert written == [int(m) for m in mixed]
    return parsed


def structured_partners(batch: int, generator: torch.Generator) -> dict:
    idx = torch.arange(batch)
    maps = {"flip": idx.flip(0), "roll": idx.roll(1), "roll -3": idx.roll(-3), "star": torch.zeros(batch, dtype=torch.int64),
            "chain": (idx + 1).clamp(max=batch - 1), "functional graph": torch.randint(0, batch, (batch,), generator=generator),
            "permutation": torch.randperm(batch, generator=generator)}
    if batch % 2 and batch >= 3:
        maps["odd 3-cycle"] = derangement_partners(batch)
    return maps


def with_partner(partner: torch.Tensor, generator: torch.Generator, paste: bool = True) -> MixParams:
    p = random_params(partner.shape[0], 8, 8, generator, allow_paste=paste)
    return MixParams(partner, p.lam, p.kind, p.box)


def all_blend(partner: torch.Tensor) -> MixParams:
    batch = partner.shape[0]
    return MixParams(partner, torch.full((batch,), 0.25), torch.ones(batch, dtype=torch.uint8),
                     torch.zeros(batch, 4, dtype=torch.int64))


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 33, 64, 65, 256, 1500])
def test_every_device_plan_is_race_free_and_applies_its_params(batch):
    generator = torch.Generator().manual_seed(batch)
    for name, partner in structured_partners(batch, generator).items():
        for params in (all_blend(partner), with_partner(partner, generator)):
            parsed = verify_plan(params, torch.ops.fastmix.device_plan(*params.as_tuple()))
            assert max(group_lengths(parsed), default=0) <= SEGMENT + 1, name


def test_random_params_give_valid_plans():
    generator = torch.Generator().manual_seed(0)
    for trial in range(200):
        batch = int(torch.randint(1, 200, (), generator=generator))
        params = random_params(batch, 6, 6, generator)
        verify_plan(params, torch.ops.fastmix.device_plan(*params.as_tuple()))


STEP_COUNTS = {
    # (partner map, B): (longest group, head slots, second launch) -- every thread walks at most the
    # longest group; a head slot is one sample of scratch on the GPU
    ("flip", 256): (1, 0, False), ("flip", 4096): (1, 0, False),
    ("roll", 256): (32, 8, True), ("roll", 4096): (32, 128, True),
}


@pytest.mark.parametrize("batch", [256, 4096])
def test_long_cycles_are_cut_into_segments_so_that_no_thread_walks_more_than_a_segment(batch):
    """Issue 25, point 5: a roll (one cycle of B samples) was B + 1 dependent steps for one thread;
    cut into segments of 32 it is 32 steps per thread, with B / 32 heads saved first (a
    3x224x224 bfloat16 sample is 301,056 bytes: 2.4 MB of scratch for B = 256, 38.5 MB for 4096).
    A random permutation's long cycles are cut the same way; a flip has no cycle to cut."""
    permutation = torch.randperm(batch, generator=torch.Generator().manual_seed(batch))
    assert max(cycle_lengths(permutation)) > SEGMENT, "the permutation has a long cycle to cut"
    found = {}
    for name, partner in [("flip", torch.arange(batch).flip(0)), ("roll", torch.arange(batch).roll(1)),
                          ("permutation", permutation)]:
        params = all_blend(partner)
        parsed = verify_plan(params, torch.ops.fastmix.device_plan(*params.as_tuple()))
        shape = parsed["shape"]
        found[name] = (max(group_lengths(parsed)), shape["head_slots"], shape["second_groups"] > 0)
        print(f"B={batch} {name}: longest group {found[name][0]} steps, {shape['head_slots']} head slots, "
              f"{shape['first_groups']} + {shape['second_groups']} groups, {shape['steps']} steps")
        assert found[name][0] <= SEGMENT + 1
        if name != "permutation":
            assert found[name] == STEP_COUNTS[name, batch]
    assert found["permutation"][2], "its long cycles run in two launches"


def cycle_lengths(partner: torch.Tensor) -> list:
    p, seen, lengths = partner.tolist(), set(), []
    for start in range(len(p)):
        n, i = 0, start
        while i not in seen:
            seen.add(i)
            i, n = p[i], n + 1
        if n:
            lengths.append(n)
    return lengths


def test_a_star_or_a_chain_is_cut_too_with_heads_only_where_a_read_crosses_a_segment():
    """A star's 1499 steps read one sample nobody writes: 47 segments, no head, one launch; a
    chain's cross each segment boundary once: a head per boundary, two launches."""
    star = verify_plan(all_blend(torch.zeros(1500, dtype=torch.int64)),
                       torch.ops.fastmix.device_plan(*all_blend(torch.zeros(1500, dtype=torch.int64)).as_tuple()))
    assert star["shape"]["head_slots"] == 0 and star["shape"]["second_groups"] == 0
    assert max(group_lengths(star)) <= SEGMENT and len(group_lengths(star)) == 47
    chain_params = all_blend((torch.arange(1500) + 1).clamp(max=1499))
    chain = verify_plan(chain_params, torch.ops.fastmix.device_plan(*chain_params.as_tuple()))
    assert chain["shape"]["head_slots"] == 46 and chain["shape"]["second_groups"] == 47


def test_the_numba_backend_walks_the_extensions_plan():
    """numba's plan comes from torch.ops.fastmix.inplace_plan where the extension is loaded; its own
    port (plan.port_plan) builds the same steps where it is not."""
    if not HAS_NUMBA:
        pytest.skip("numba is not installed")
    from fastmix.backends.numba import plan

    generator = torch.Generator().manual_seed(3)
    for batch in [1, 2, 7, 64, 301]:
        for name, partner in structured_partners(batch, generator).items():
            params = with_partner(partner, generator)
            ours = torch.ops.fastmix.inplace_plan(params.partner, params.kind).numpy()
            assert np.array_equal(plan.inplace_plan(params.partner.numpy(), params.kind.numpy()), ours)
            port = plan.make_inplace_plan(params.partner.numpy(), params.kind.numpy())
            assert np.array_equal(port, ours), name  # the port is csrc/mix_plan.h's algorithm, step for step
            fast = plan.port_plan(params.partner.numpy(), params.kind.numpy())
            assert sorted(map(tuple, fast)) == sorted(map(tuple, ours)), name  # the flip shortcut: any order


BAD_PLAN_ARGS = [
    # (id, arguments, message: the same from the op and from fastmix/backends/checks.py)
    ("partner int32", lambda p: (p.partner.int(), p.lam, p.kind, p.box),
     r"partner: expected int64 of shape \(B,\) on the CPU \(the plan is built on the host\), got int32 of shape \(4,\) on cpu$"),
    ("partner 2-D", lambda p: (p.partner.view(2, 2), p.lam, p.kind, p.box), r"partner: .*got int64 of shape \(2, 2\) on cpu$"),
    ("partner on meta", lambda p: (p.partner.to("meta"), p.lam, p.kind, p.box), r"partner: .* on meta$"),
    ("lam float64", lambda p: (p.partner, p.lam.double(), p.kind, p.box),
     r"lam: expected float32 of shape \(4,\), got float64 of shape \(4,\)$"),
    ("box (B, 3)", lambda p: (p.partner, p.lam, p.kind, p.box[:, :3]), r"box: expected int64 of shape \(4, 4\)"),
    ("partner == B", lambda p: (torch.tensor([1, 4, 3, 2]), p.lam, p.kind, p.box),
     r"partner\[1\]: expected an index in \[0, 4\), got 4$"),
    ("kind 6", lambda p: (p.partner, p.lam, torch.tensor([1, 6, 0, 0], dtype=torch.uint8), p.box),
     r"kind\[1\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 6$"),
    ("lam NaN", lambda p: (p.partner, torch.tensor([0.5, float("nan"), 1.0, 1.0]), p.kind, p.box),
     r"lam\[1\]: expected a value in \[0, 1\], got nan$"),
]


def _refusal(call):
    with pytest.raises((ValueError, TypeError)) as caught:
        call()
    return caught.type, str(caught.value).splitlines()[0]


@pytest.mark.parametrize("make, message", [case[1:] for case in BAD_PLAN_ARGS], ids=[case[0] for case in BAD_PLAN_ARGS])
def test_the_plan_ops_refuse_bad_params_as_their_python_checks_do(make, message):
    import re

    params = MixParams(torch.tensor([1, 0, 3, 2]), torch.full((4,), 0.5), torch.ones(4, dtype=torch.uint8),
                       torch.zeros(4, 4, dtype=torch.int64))
    args = make(params)
    op = _refusal(lambda: torch.ops.fastmix.device_plan(*args))
    assert op == _refusal(lambda: checks.check_device_plan_args(*args)), op
    assert op[0] is ValueError and re.match(message, op[1]), op[1]
    if "lam" not in message and "box" not in message:  # inplace_plan takes partner and kind only
        partner, _, kind, _ = args
        assert _refusal(lambda: torch.ops.fastmix.inplace_plan(partner, kind)) == \
            _refusal(lambda: checks.check_inplace_plan_args(partner, kind))


def test_a_plans_shape_is_read_from_its_header():
    params = all_blend(torch.arange(100).roll(1))
    plan = torch.ops.fastmix.device_plan(*params.as_tuple())
    assert plan_shape(plan) == list(parse_plan(plan)["shape"].values()) == [100, 4, 4, 4, 104, 0]


def test_params_and_plans_pack_into_one_buffer_of_aligned_sections(monkeypatch):
    """What fastmix.Mixup sends to the GPU, checked on the CPU: one pinned buffer (here: a plain
    one), one copy, and views of it that equal the tensors that went in."""
    pinned = []
    real_empty = torch.empty

    def empty(*args, pin_memory=False, **kwargs):
        pinned.append(pin_memory)
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(torch, "empty", empty)
    generator = torch.Generator().manual_seed(8)
    params = random_params(37, 8, 8, generator)
    tensors = [*params.as_tuple(), torch.ops.fastmix.device_plan(*params.as_tuple())]
    moved = to_device(tensors, torch.device("cpu"))
    assert pinned == [True]
    base = moved[0].untyped_storage().data_ptr()
    for t, m in zip(tensors, moved):
        assert torch.equal(t, m) and m.dtype == t.dtype and m.shape == t.shape
        assert m.untyped_storage().data_ptr() == base and (m.data_ptr() - base) % 64 == 0
    (partner, lam, kind, box), plans = with_plans(params.as_tuple(), torch.device("cpu"), [params.as_tuple()])
    assert torch.equal(plans[0][0], tensors[4]) and plans[0][1] == plan_shape(tensors[4])
