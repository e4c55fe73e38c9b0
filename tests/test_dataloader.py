"""fastmix.Mixup with a real torch DataLoader: in the training loop, and inside worker processes
(pickled into them, one independent stream per worker)."""
import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

import fastmix


class RandomImages(Dataset):
    def __init__(self, n=37, num_classes=10):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 3, 24, 20), dtype=torch.uint8, generator=generator)
        self.labels = torch.randint(0, num_classes, (n,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


class CollateThenMix:
    """default_collate, then mix the batch in place (picklable: usable with worker processes)."""

    def __init__(self, mix):
        self.mix = mix

    def __call__(self, samples):
        images, labels = default_collate(samples)
        images, targets = self.mix(images, labels)
        return images, targets, self.mix.last_params.lam.clone()


def test_mixes_batches_in_the_training_loop_including_an_odd_last_batch():
    ds = RandomImages()
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=0)
    sizes = []
    for images, labels in DataLoader(ds, batch_size=8, shuffle=True, drop_last=False):
        original = images.clone()
        out, targets = mix(images, labels)
        assert out is images and targets.shape == (len(labels), 10)
        torch.testing.assert_close(targets.sum(1), torch.ones(len(labels)), rtol=0, atol=1e-5)
        if len(labels) >= 2:
            assert not torch.equal(out, original)
        sizes.append(len(labels))
    assert sizes[-1] == 37 % 8, "the odd last batch went through"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_mixup_inside_dataloader_workers(num_workers):
    ds = RandomImages(n=64)
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=10, seed=3)
    loader = DataLoader(
        ds, batch_size=8, num_workers=num_workers, collate_fn=CollateThenMix(mix),
        generator=torch.Generator().manual_seed(0),
    )
    lams = []
    for images, targets, lam in loader:
        assert images.dtype == torch.uint8 and targets.shape == (8, 10)
        lams.append(lam)
    assert len(lams) == 8
    # Every batch got its own draw: no two batches share the same lambdas.
    assert len({tuple(l.tolist()) for l in lams}) == len(lams)
    if num_workers == 2:
        # Batches alternate between the two workers; their streams must differ from the start.
        assert not torch.equal(lams[0], lams[1])


def test_mixup_pickles_without_its_generator():
    mix = fastmix.Mixup(mixup_alpha=0.5, num_classes=3, seed=1)
    first = mix.sample(6)
    clone = pickle.loads(pickle.dumps(mix))
    assert clone.policy == mix.policy and clone.seed == 1
    # A fresh process-local stream: the unpickled copy starts where a new object would.
    assert torch.equal(clone.sample(6).lam, first.lam)
