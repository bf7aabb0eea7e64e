"""Random warps: per sample, seeded, label-preserving, shape- and range-keeping."""

import pytest
import torch

from mnist_exp.data.augment import RandomWarp, augment_generator, augments_epoch

CPU = torch.device("cpu")
BACKGROUND = -0.1307 / 0.3081  # a black pixel, normalised as MNIST is
STRONG = RandomWarp(rotation=15, translate=0.15, scale=0.15, shear=10)
ELASTIC = RandomWarp(elastic=1.5, elastic_sigma=4)


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


def test_elastic_alone_is_per_sample_seeded_and_range_keeping():
    batch = digits(8)
    out = ELASTIC(batch, augment_generator(3, CPU), BACKGROUND)
    flat = out.flatten(1)
    assert (torch.cdist(flat, flat) + torch.eye(8) * 1e9).min() > 1.0
    assert torch.equal(out, ELASTIC(batch, augment_generator(3, CPU), BACKGROUND))
    assert out.shape == batch.shape
    assert out.min() >= BACKGROUND - 1e-5 and out.max() <= batch.max() + 1e-5


def test_elastic_displacements_have_the_configured_size_and_are_smooth():
    """Each offset's standard deviation is `elastic` pixels wherever it is; neighbours move together."""
    in_grid_units = ELASTIC.displacements(512, 28, 28, augment_generator(0, CPU))
    offsets = in_grid_units * 14  # grid_sample spans 28 pixels with 2 units
    pixel_std = offsets.std(dim=0)  # over samples: [28, 28, 2]
    assert torch.allclose(pixel_std, torch.tensor(1.5), rtol=0.15), "the border moves as much as the middle"
    neighbours = torch.corrcoef(torch.stack([offsets[:, 10, 10, 0], offsets[:, 10, 11, 0]]))[0, 1]
    far_apart = torch.corrcoef(torch.stack([offsets[:, 2, 2, 0], offsets[:, 25, 25, 0]]))[0, 1]
    assert neighbours > 0.9 and abs(far_apart) < 0.2
    rough = RandomWarp(elastic=1.5, elastic_sigma=0.5).displacements(512, 28, 28, augment_generator(0, CPU))
    assert torch.corrcoef(torch.stack([rough[:, 10, 10, 0], rough[:, 10, 11, 0]]))[0, 1] < 0.5


def test_elastic_is_drawn_last_and_only_when_on():
    """So presets without it keep their random stream, and its smoothing alone changes nothing."""
    batch = digits(16)
    assert RandomWarp(elastic_sigma=2).is_identity
    plain = RandomWarp(rotation=10, elastic_sigma=2)(batch, augment_generator(5, CPU), BACKGROUND)
    assert torch.equal(plain, RandomWarp(rotation=10)(batch, augment_generator(5, CPU), BACKGROUND))
    barely_elastic = RandomWarp(rotation=10, elastic=1e-4)(batch, augment_generator(5, CPU), BACKGROUND)
    assert torch.allclose(barely_elastic, plain, atol=1e-3), "the same rotations, drawn first"
    assert not torch.equal(barely_elastic, plain)


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
    from mnist_exp.engine.optim import Schedule

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
    train_epoch(model, images, labels, progress, 16, optimizer, Schedule(None, optimizer, 4), augment=augment)
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
