"""The ops are real dispatcher ops: schemas with mutation annotations, fake kernels, opcheck-clean,
and usable inside torch.compile(fullgraph=True)."""
import pytest
import torch

import fastmix

from .helpers import requires_cpp, random_params, random_values, reference_mix_, reference_targets

pytestmark = requires_cpp


def test_schemas_declare_the_mutation():
    assert str(torch.ops.fastmix.mix_.default._schema) == (
        "fastmix::mix_(Tensor(a!) images, Tensor partner, Tensor lam, Tensor kind, Tensor box, Tensor? plan=None, "
        "int[] plan_shape=[], Tensor? pixel_mask=None, Tensor? mask_field=None, Tensor? field_threshold=None) -> ()"
    )
    assert "-> Tensor" in str(torch.ops.fastmix.mix_targets.default._schema)
    assert str(torch.ops.fastmix.device_plan.default._schema) == (
        "fastmix::device_plan(Tensor partner, Tensor lam, Tensor kind, Tensor box) -> Tensor")
    assert str(torch.ops.fastmix.inplace_plan.default._schema) == "fastmix::inplace_plan(Tensor partner, Tensor kind) -> Tensor"


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_mix(dtype, channels_last):
    generator = torch.Generator().manual_seed(0)
    images = random_values((6, 3, 8, 9), dtype, generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    params = random_params(6, 8, 9, generator)
    torch.library.opcheck(torch.ops.fastmix.mix_.default, (images, *params.as_tuple()))


def test_opcheck_mix_and_the_collate_with_a_mask_field():
    """FMix's elem-mode masks as the ops take them (mask_field, field_threshold): the fake kernels
    and the schemas agree with the CPU kernels."""
    generator = torch.Generator().manual_seed(4)
    images = random_values((6, 3, 8, 9), torch.float32, generator)
    params = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem", num_classes=3, seed=1).sample(6, 8, 9)
    masks = {"mask_field": params.mask_field, "field_threshold": params.field_threshold}
    torch.library.opcheck(torch.ops.fastmix.mix_.default, (images, *params.as_tuple()), masks)
    out = torch.empty(6, 3, 8, 9)
    samples = [random_values((8, 9, 3), torch.uint8, generator) for _ in range(6)]
    torch.library.opcheck(torch.ops.fastmix.collate_mix_.default,
                          (out, samples, *params.as_tuple(), torch.full((3,), 1 / 255), torch.zeros(3), True), masks)


def test_opcheck_mix_with_a_plan_and_the_plan_ops():
    """mix_ with the CUDA kernels' plan (which the CPU kernel checks and ignores), and the two host
    ops that build the plans (outputs sized by the partner map: unbacked sizes under tracing)."""
    generator = torch.Generator().manual_seed(9)
    images = random_values((6, 3, 8, 9), torch.float32, generator)
    params = random_params(6, 8, 9, generator)
    plan = torch.ops.fastmix.device_plan(*params.as_tuple())
    shape = plan[:64].view(torch.int32)[1:7].tolist()
    torch.library.opcheck(torch.ops.fastmix.mix_.default, (images, *params.as_tuple(), plan, shape))
    torch.library.opcheck(torch.ops.fastmix.device_plan.default, params.as_tuple(),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    torch.library.opcheck(torch.ops.fastmix.inplace_plan.default, (params.partner, params.kind),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


@pytest.mark.parametrize("hwc", [False, True])
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.bfloat16])
def test_opcheck_mix_into_and_collate(hwc, out_dtype):
    generator = torch.Generator().manual_seed(4)
    images = random_values((4, 8, 9, 3) if hwc else (4, 3, 8, 9), torch.uint8, generator)
    params = random_params(4, 8, 9, generator)
    out = torch.empty(4, 3, 8, 9, dtype=out_dtype)
    scale, bias = (torch.empty(0), torch.empty(0)) if out_dtype == torch.uint8 else (torch.rand(3), torch.rand(3))
    args = (*params.as_tuple(), scale, bias, hwc)
    torch.library.opcheck(torch.ops.fastmix.mix_into_.default, (out, images, *args))
    torch.library.opcheck(torch.ops.fastmix.collate_mix_.default, (out, list(images.unbind(0)), *args))


@pytest.mark.parametrize("dense", [False, True])
def test_opcheck_mix_targets(dense):
    generator = torch.Generator().manual_seed(1)
    labels = torch.rand(5, 11, generator=generator) if dense else torch.randint(0, 11, (5,), generator=generator)
    partner, lam, kind, _ = random_params(5, 4, 4, generator).as_tuple()
    torch.library.opcheck(torch.ops.fastmix.mix_targets.default, (labels, partner, lam, kind, 11, 0.1))


@pytest.mark.slow
def test_torch_compile_fullgraph_mixes_in_place():
    def train_step_inputs(images, labels, partner, lam, kind, box):
        torch.ops.fastmix.mix_(images, partner, lam, kind, box)
        targets = torch.ops.fastmix.mix_targets(labels, partner, lam, kind, 10, 0.1)
        return images * 2.0, targets

    compiled = torch.compile(train_step_inputs, fullgraph=True, backend="inductor")
    generator = torch.Generator().manual_seed(2)
    for _ in range(2):  # second call reuses the compiled graph
        images = random_values((8, 3, 16, 16), torch.float32, generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        params = random_params(8, 16, 16, generator)
        expected = reference_mix_(images.clone(), params)
        doubled, targets = compiled(images, labels, *params.as_tuple())
        assert torch.equal(images, expected), "the compiled graph must mutate the caller's tensor"
        assert torch.equal(doubled, expected * 2.0)
        assert torch.equal(targets, reference_targets(labels, params, 10, 0.1))


@pytest.mark.parametrize("backend", ["cpp", "auto"])
def test_torch_compile_fullgraph_of_the_functional_api(backend):
    """fastmix.mix_ itself compiles without graph breaks (host-side checks are skipped while tracing),
    with an explicit backend and with the automatic choice (marked constant for the compiler)."""
    def mix(images, params):
        return fastmix.mix_(images, params, backend=backend)

    compiled = torch.compile(mix, fullgraph=True, backend="aot_eager")
    generator = torch.Generator().manual_seed(3)
    images = random_values((4, 3, 8, 8), torch.float32, generator)
    params = random_params(4, 8, 8, generator)
    expected = reference_mix_(images.clone(), params)
    compiled(images, params)
    assert torch.equal(images, expected)


def test_the_backend_choice_is_marked_constant_the_way_torch_compiler_marks_it():
    """The choice carries the mark torch.compiler.assume_constant_result sets (set directly by
    fastmix.backends._dynamo_compat, so that importing fastmix does not import torch._dynamo);
    a torch that marks differently fails here."""
    from fastmix.backends import _dynamo_compat, registry

    def probe():
        return 0

    def ours():
        return 0

    marked = torch.compiler.assume_constant_result(probe)
    assert vars(marked) == vars(_dynamo_compat.assume_constant_result(ours))
    assert getattr(registry._resolve_name, _dynamo_compat.DYNAMO_CONSTANT_MARK, False) is True


def test_import_fastmix_does_not_import_torch_dynamo():
    """torch._dynamo costs seconds to import; plain eager users and spawned DataLoader workers
    should not pay for it."""
    import subprocess
    import sys

    code = "import sys, fastmix; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
