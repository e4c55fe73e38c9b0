"""SharedPolicy: the knobs a training loop changes (mixing on/off, probabilities, alphas, ...) in a
few bytes of shared memory, so that DataLoader workers read the main process's values for every
batch they start, whether they were forked or spawned, persistent or not.

A ``Mixup`` (and the ``MixupCollate`` around it) is copied into each worker: a plain attribute set
in the main process afterwards never reaches the copies (timm's ``mixup_enabled`` has that hole).
Here every copy maps the same 256 bytes: a fork inherits the mapping, and a spawned worker gets it
through torch's multiprocessing pickler, which sends shared tensors by handle. A plain ``pickle`` or
``copy.deepcopy`` makes an independent copy with the same values.

Writes are validated in full (a MixPolicy is built from the new values) before a byte changes, and
guarded by a sequence number, so a reader sees only states that were validated: never half of one
update.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any, Dict, Tuple

import numpy as np
import torch

from .sampling.policy import METHODS, MODES, RESIZE_INTERPOLATIONS, MixPolicy, check_bool

# Slots of the shared float64 array (num_classes is stored through an int64 view of its slot).
_SEQUENCE, _ENABLED, _MIXUP_ALPHA, _CUTMIX_ALPHA, _MINMAX_LO, _MINMAX_HI, _PROB, _SWITCH_PROB = range(8)
_MODE, _CORRECT_LAM, _SMOOTHING, _NUM_CLASSES, _MULTI_LABEL = range(8, 13)
_FMIX_ALPHA, _FMIX_DECAY_POWER, _CLASSMIX = range(13, 16)
_RESIZEMIX_ALPHA, _RESIZEMIX_LAM_MIN, _RESIZEMIX_LAM_MAX, _RESIZEMIX_INTERPOLATION = range(16, 20)
_METHOD_PROBS = slice(20, 20 + len(METHODS))  # NaN: method_probs is None
_SLOTS = 32  # (room for a few more knobs)


class SharedPolicy:
    """A MixPolicy and the ``mixup_enabled`` switch, readable by every process that holds a copy."""

    def __init__(self, policy: MixPolicy, enabled: bool = True) -> None:
        self._storage = torch.zeros(_SLOTS, dtype=torch.float64).share_memory_()
        self._attach()
        self._write(policy, check_bool("mixup_enabled", enabled))

    def _attach(self) -> None:
        self._values = self._storage.numpy()  # views of the shared bytes: reads and writes of about 100 ns
        self._integers = self._values.view(np.int64)
        self._seen: bytes = b""
        self._lock = threading.Lock()
        self._cached: Tuple[MixPolicy, bool] = (None, False)  # type: ignore[assignment]

    def read(self) -> Tuple[MixPolicy, bool]:
        """The current (policy, mixup_enabled); rebuilt only after a change (a microsecond otherwise)."""
        while True:
            sequence = self._integers[_SEQUENCE]
            snapshot = self._values.tobytes()
            if sequence % 2 == 0 and self._integers[_SEQUENCE] == sequence:
                break  # not torn by a concurrent write
        if snapshot != self._seen:
            self._cached = self._decode(np.frombuffer(snapshot, dtype=np.float64))  # the snapshot, not the live bytes
            self._seen = snapshot
        return self._cached

    def update(self, **changes: Any) -> None:
        """Set knobs by MixPolicy field name (and ``enabled``); refused as a whole, before any write,
        when the new policy is not valid. Writes come from the training loop: threads of one
        process take a lock (a write from another process, a worker, is not coordinated)."""
        with self._lock:
            self._update(changes)

    def _update(self, changes: Dict[str, Any]) -> None:
        policy, enabled = self.read()
        if "enabled" in changes:
            enabled = check_bool("mixup_enabled", changes.pop("enabled"))
        if changes:
            policy = dataclasses.replace(policy, **changes)  # MixPolicy validates, with its messages
        self._write(policy, enabled)

    def _write(self, policy: MixPolicy, enabled: bool) -> None:
        lo, hi = policy.cutmix_minmax if policy.cutmix_minmax is not None else (math.nan, math.nan)
        self._integers[_SEQUENCE] += 1  # odd: a write is under way
        v = self._values
        v[_ENABLED] = float(enabled)
        v[_MIXUP_ALPHA], v[_CUTMIX_ALPHA] = policy.mixup_alpha, policy.cutmix_alpha
        v[_MINMAX_LO], v[_MINMAX_HI] = lo, hi
        v[_PROB], v[_SWITCH_PROB] = policy.prob, policy.switch_prob
        v[_MODE] = MODES.index(policy.mode)
        v[_CORRECT_LAM], v[_SMOOTHING] = float(policy.correct_lam), policy.label_smoothing
        v[_MULTI_LABEL] = float(policy.multi_label)
        v[_FMIX_ALPHA], v[_FMIX_DECAY_POWER] = policy.fmix_alpha, policy.fmix_decay_power
        v[_CLASSMIX] = float(policy.classmix)
        v[_RESIZEMIX_ALPHA] = policy.resizemix_alpha
        v[_RESIZEMIX_LAM_MIN], v[_RESIZEMIX_LAM_MAX] = policy.resizemix_lam_min, policy.resizemix_lam_max
        v[_RESIZEMIX_INTERPOLATION] = RESIZE_INTERPOLATIONS.index(policy.resizemix_interpolation)
        v[_METHOD_PROBS] = policy.method_probs if policy.method_probs is not None else math.nan
        self._integers[_NUM_CLASSES] = policy.num_classes
        self._integers[_SEQUENCE] += 1  # even: consistent again

    def _decode(self, v: np.ndarray) -> Tuple[MixPolicy, bool]:
        minmax = None if math.isnan(v[_MINMAX_LO]) else (float(v[_MINMAX_LO]), float(v[_MINMAX_HI]))
        policy = MixPolicy(
            mixup_alpha=float(v[_MIXUP_ALPHA]),
            cutmix_alpha=float(v[_CUTMIX_ALPHA]),
            cutmix_minmax=minmax,
            prob=float(v[_PROB]),
            switch_prob=float(v[_SWITCH_PROB]),
            mode=MODES[int(v[_MODE])],
            correct_lam=bool(v[_CORRECT_LAM]),
            label_smoothing=float(v[_SMOOTHING]),
            num_classes=int(v.view(np.int64)[_NUM_CLASSES]),
            multi_label=bool(v[_MULTI_LABEL]),
            fmix_alpha=float(v[_FMIX_ALPHA]),
            fmix_decay_power=float(v[_FMIX_DECAY_POWER]),
            classmix=bool(v[_CLASSMIX]),
            resizemix_alpha=float(v[_RESIZEMIX_ALPHA]),
            resizemix_lam_min=float(v[_RESIZEMIX_LAM_MIN]),
            resizemix_lam_max=float(v[_RESIZEMIX_LAM_MAX]),
            resizemix_interpolation=RESIZE_INTERPOLATIONS[int(v[_RESIZEMIX_INTERPOLATION])],
            method_probs=None if math.isnan(v[_METHOD_PROBS][0]) else tuple(float(w) for w in v[_METHOD_PROBS]),
        )
        return policy, bool(v[_ENABLED])

    def __getstate__(self) -> Dict[str, Any]:
        # torch's multiprocessing pickler (DataLoader workers) sends the shared tensor by handle;
        # plain pickle sends its bytes.
        return {"storage": self._storage}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._storage = state["storage"]
        if not self._storage.is_shared():  # an independent copy (plain pickle, deepcopy): share it anew
            self._storage.share_memory_()
        self._attach()


def shared_knob(field: str, attribute: str) -> property:
    """A writable attribute named ``attribute`` of a class with a ``shared`` SharedPolicy: ``field``
    is a MixPolicy field name, or "enabled" for the mixing switch."""

    def get(self: Any) -> Any:
        policy, enabled = self.shared.read()
        if field == "method_probs":  # read back as given: by name
            return policy.method_probs_by_name
        return enabled if field == "enabled" else getattr(policy, field)

    def set_(self: Any, value: Any) -> None:
        try:
            self.shared.update(**{field: value})
        except (TypeError, ValueError) as exc:  # name the attribute the user wrote (mix_prob, not prob)
            message = str(exc)
            if attribute != field and message.startswith(f"{field}:"):
                raise type(exc)(attribute + message[len(field):]) from None
            raise

    return property(get, set_, doc=f"timm's knob, read and written through the shared policy ({field})")


#: timm's attribute names, then the other methods' knobs -> the field each reads and writes
#: ("enabled": the mixing switch).
TIMM_KNOBS = {
    "mixup_enabled": "enabled", "mixup_alpha": "mixup_alpha", "cutmix_alpha": "cutmix_alpha",
    "cutmix_minmax": "cutmix_minmax", "mix_prob": "prob", "switch_prob": "switch_prob", "mode": "mode",
    "correct_lam": "correct_lam", "label_smoothing": "label_smoothing", "num_classes": "num_classes",
    "multi_label": "multi_label",
    "fmix_alpha": "fmix_alpha", "fmix_decay_power": "fmix_decay_power", "classmix": "classmix",
    "resizemix_alpha": "resizemix_alpha", "resizemix_lam_min": "resizemix_lam_min",
    "resizemix_lam_max": "resizemix_lam_max", "resizemix_interpolation": "resizemix_interpolation",
    "method_probs": "method_probs",
}


def with_timm_knobs(cls: type) -> type:
    """Give a class with a ``shared`` SharedPolicy timm's knobs as writable attributes (an attribute
    the class defines itself is kept)."""
    for attribute, field in TIMM_KNOBS.items():
        if attribute not in cls.__dict__:
            setattr(cls, attribute, shared_knob(field, attribute))
    return cls
