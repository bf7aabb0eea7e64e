"""Random warps: per sample, seeded, label-preserving, shape- and range-keeping."""

import pytest
import torch

from mnist_exp.data.augment import RandomWarp, augment_generator, augments_epoch
from tests.conftest import plain_step

CPU = torch.device("cpu")
BACKGROUND = -0.1307 / 0.3081  # a black pixel, normalised as MNIST is
STRONG = RandomWarp(rotation=15, translate=0.15, scale=0.15, shear=10)


def digits(count: int = 8) -> torch.Tensor:
    """Normalised [N, 1, 28, 28] images: a bright bar on a black background, in the middle."""
    images = torch.full((count, 1, 28, 28), BACKGROUND)
    images[:, :, 8:20, 12:16] = 2.8
    return images


def test_every_sample_gets_its_own_transform():
    batch = digits(8)  # eight identical images in, eight different ones out
    out = STRONG(batch, augment_generator(0, CPU), BACKGROUND)
    flat = out.flatten(1)
    differences = torch.cdist(flat, flat)
    assert (differences + torch.eye(8) * 1e9).min() > 1.0


def test_same_seed_same_batch_other_seed_other_batch():
    batch = digits(16)
    first = STRONG(batch, augment_generator(3, CPU), BACKGROUND)
    again = STRONG(batch, augment_generator(3, CPU), BACKGROUND)
    other = STRONG(batch, augment_generator(4, CPU), BACKGROUND)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_keeps_shape_dtype_and_value_range():
    batch = torch.rand(32, 1, 28, 28) * (2.8 - BACKGROUND) + BACKGROUND
    out = STRONG(batch, augment_generator(0, CPU), BACKGROUND)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert out.min() >= BACKGROUND - 1e-5 and out.max() <= batch.max() + 1e-5


def test_pixels_from_outside_the_image_are_background():
    batch = torch.full((4, 1, 28, 28), 2.8)  # all ink: anything else came from outside
    out = RandomWarp(translate=0.3)(batch, augment_generator(0, CPU), BACKGROUND)
    assert torch.isclose(out, torch.tensor(BACKGROUND), atol=1e-4).any()


def test_all_zero_settings_leave_images_untouched():
    batch = digits(4)
    assert RandomWarp().is_identity
    assert RandomWarp()(batch, augment_generator(0, CPU), BACKGROUND) is batch


@pytest.mark.parametrize("setting", ["rotation", "translate", "scale", "shear"])
def test_each_setting_alone_changes_images(setting):
    value = {"rotation": 20, "translate": 0.2, "scale": 0.2, "shear": 20}[setting]
    batch = digits(8)
    out = RandomWarp(**{setting: value})(batch, augment_generator(0, CPU), BACKGROUND)
    assert (out - batch).abs().amax(dim=(1, 2, 3)).min() > 0.1


def test_hflip_mirrors_exactly_and_per_sample():
    batch = torch.rand(64, 1, 28, 28)
    assert torch.allclose(
        RandomWarp(hflip=1)(batch, augment_generator(0, CPU), 0.0), batch.flip(-1), atol=1e-5
    )
    out = RandomWarp(hflip=0.5)(batch, augment_generator(0, CPU), 0.0)
    mirrored = (out - batch.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    kept = (out - batch).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (mirrored ^ kept).all(), "each sample is either mirrored or left alone"
    assert 16 < mirrored.sum() < 48


def test_hflip_is_drawn_after_the_other_draws_and_applied_first():
    """So presets without it keep their random stream, and a mirror is one more draw on top."""
    batch = digits(16)
    batch[:, :, 2:6, 3:9] = 2.8  # not symmetric
    mirrored = RandomWarp(rotation=15, translate=0.15, scale=0.15, shear=10, hflip=1)
    out = mirrored(batch, augment_generator(5, CPU), BACKGROUND)
    assert torch.allclose(out, STRONG(batch.flip(-1), augment_generator(5, CPU), BACKGROUND), atol=1e-5)


def test_translation_moves_ink_by_at_most_the_configured_share():
    """Sample i is shifted as a whole: its centre of ink moves by at most translate * 28 px."""
    batch = digits(64)
    out = RandomWarp(translate=0.1)(batch, augment_generator(0, CPU), BACKGROUND)

    def centres(images):
        ink = (images - BACKGROUND).clamp(min=0).squeeze(1)
        grid = torch.arange(28.0)
        mass = ink.sum(dim=(1, 2))
        return torch.stack([(ink.sum(2) * grid).sum(1) / mass, (ink.sum(1) * grid).sum(1) / mass], 1)

    moved = (centres(out) - centres(batch)).abs()
    assert moved.max() <= 2.8 + 0.1
    assert moved.max() > 1.0, "some sample moved noticeably"


def test_labels_stay_with_their_images_through_a_training_epoch():
    """Each image's ink is in the quadrant its label names; after light augmentation it still is."""
    from mnist_exp.engine.loop import EpochProgress, train_epoch

    labels = torch.arange(64) % 4
    images = torch.full((64, 1, 28, 28), BACKGROUND)
    for i, label in enumerate(labels.tolist()):
        top, left = 3 + 14 * (label // 2), 3 + 14 * (label % 2)
        images[i, :, top : top + 8, left : left + 8] = 2.8
    seen = []

    def model(inputs):
        seen.append(inputs.detach().clone())
        return torch.zeros(len(inputs), 4, requires_grad=True)

    model.train = lambda: None
    transform = RandomWarp(rotation=10, translate=0.1, scale=0.1)

    def augment(batch):
        return transform(batch, augment_generator(0, CPU), BACKGROUND)

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    progress = EpochProgress(order=torch.randperm(64), lr=0.1)
    step = plain_step(model, optimizer)
    train_epoch(model, images, labels, progress, batch_size=16, take_step=step, augment=augment)
    augmented = torch.cat(seen)
    ink = (augmented - BACKGROUND).clamp(min=0).squeeze(1)
    quadrants = torch.stack(
        [ink[:, :14, :14].sum((1, 2)), ink[:, :14, 14:].sum((1, 2)), ink[:, 14:, :14].sum((1, 2)),
         ink[:, 14:, 14:].sum((1, 2))], 1
    ).argmax(1)  # fmt: skip
    assert torch.equal(quadrants, labels[progress.order])


def test_only_the_last_clean_final_epochs_train_unaugmented():
    assert [augments_epoch(epoch, 5, 2) for epoch in range(1, 6)] == [True, True, True, False, False]
    assert all(augments_epoch(epoch, 5, 0) for epoch in range(1, 6))
    assert not any(augments_epoch(epoch, 5, 5) for epoch in range(1, 6))
