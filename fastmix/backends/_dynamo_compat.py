"""One mark for torch.compile, set without importing torch._dynamo.

The backend choice is fixed for the process, so torch.compile may bake it in as a constant: that
is what ``torch.compiler.assume_constant_result`` does, by setting one attribute on the function.
Calling the decorator imports torch._dynamo (about 1.7 s), which every ``import fastmix`` and every
spawned DataLoader worker would pay; so the attribute is set here directly.
tests/test_ops.py checks that the public decorator still sets exactly this mark.
"""
from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

DYNAMO_CONSTANT_MARK = "_dynamo_marked_constant"


def assume_constant_result(fn: F) -> F:
    """torch.compiler.assume_constant_result(fn), without importing torch._dynamo."""
    setattr(fn, DYNAMO_CONSTANT_MARK, True)
    return fn
