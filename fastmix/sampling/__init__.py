"""Everything random about a batch, drawn once in O(B) tensors (the kernels are pure functions).

policy.py   MixPolicy: the knobs, checked          params.py   MixParams, MixKind: what was drawn
sample.py   sample_params: policy -> MixParams     partners.py who is mixed with whom
boxes.py    the CutMix boxes                       beta.py     lambda ~ Beta(alpha, alpha)
fmix.py     FMix's Fourier-noise masks             classmix.py ClassMix's masks of half the classes
methods.py  MixMethod: which method drew a sample  streams.py  one generator per process (seed,
                                                               DataLoader worker, DDP rank)
"""
from .methods import MixMethod
from .params import MixKind, MixParams
from .policy import MixPolicy
from .sample import sample_params

__all__ = ["MixKind", "MixMethod", "MixParams", "MixPolicy", "sample_params"]
