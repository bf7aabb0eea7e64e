"""Recipe pieces: the weight average, label smoothing, the validation split, the new presets."""

import json

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from mnist_exp.cli.shorthand import expand_group_shorthand
from mnist_exp.data.tensors import split_indices
from mnist_exp.engine.loop import EpochProgress, cross_entropy, train_epoch
from mnist_exp.engine.weight_average import averaged_weights, weight_average
from mnist_exp.inference.checkpoint import load_trained_model
from mnist_exp.models import count_parameters
from mnist_exp.rundir.metrics import RunMetrics
from tests.conftest import plain_step, run_cli


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 26 * 26, 10))


def test_weight_average_is_the_warmed_up_moving_average_of_weights_and_bn_statistics():
    torch.manual_seed(0)
    model = small_net()
    ema = weight_average(model, decay=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = None
    for updates in range(12):
        loss = model(torch.randn(8, 1, 28, 28)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update_parameters(model)
        current = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
        kept = min(0.5, (1 + updates) / (10 + updates))  # 2/11, 3/12, ... then 0.5 from the 9th update on
        expected = (
            current
            if expected is None
            else {k: kept * expected[k] + (1 - kept) * current[k] for k in current}
        )
    averaged = averaged_weights(ema.state_dict())
    for key in ("0.weight", "3.bias", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(averaged[key].float(), expected[key])
    assert averaged["1.num_batches_tracked"] == 12
    assert not torch.allclose(averaged["0.weight"], model.state_dict()["0.weight"])
    small_net().load_state_dict(averaged)  # loadable into a fresh network


def test_weight_average_is_off_at_zero():
    assert weight_average(small_net(), decay=0.0) is None


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_training_loss_uses_the_configured_label_smoothing(smoothing):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    images, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    expected = F.cross_entropy(model(images), labels, label_smoothing=smoothing).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the loss of unchanged weights
    progress = EpochProgress(order=torch.arange(32), lr=0.0)
    step = plain_step(model, optimizer, loss_fn=cross_entropy(smoothing))
    train_epoch(model, images, labels, progress, batch_size=32, take_step=step)
    assert progress.mean_loss_and_accuracy()[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("val_size,train_subset", [(10_000, 0), (5_000, 20_000), (0, 1_000), (1, 59_999)])
def test_validation_split_never_overlaps_training_and_is_the_same_every_run(val_size, train_subset):
    train, val = split_indices(60_000, val_size, train_subset)
    assert len(val) == val_size
    assert len(train) == (train_subset or 60_000 - val_size)
    assert not set(train.tolist()) & set(val.tolist())
    assert len(set(train.tolist())) == len(train)
    again_train, again_val = split_indices(60_000, val_size, train_subset)
    assert torch.equal(train, again_train) and torch.equal(val, again_val)


NEW_MODELS = {
    "v3_plus": (18_594, 18_594),
    "small_7k": (0, 7_999),
    "tiny_5k": (0, 4_999),
    "wide_41k": (0, 99_999),
    "wide_99k": (0, 99_999),
}


@pytest.mark.parametrize("name", NEW_MODELS)
def test_new_models_fit_their_parameter_budget(compose_config, name):
    low, high = NEW_MODELS[name]
    model = instantiate(compose_config(f"model={name}").model)
    assert low <= count_parameters(model) <= high
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_v3_plus_is_v3_layer_for_layer(compose_config):
    v3, v3_plus = (instantiate(compose_config(f"model={m}").model) for m in ("v3", "v3_plus"))
    assert [type(m) for m in v3.modules()][1:] == [type(m) for m in v3_plus.modules()][1:]
    assert [p.shape for p in v3.parameters()] == [p.shape for p in v3_plus.parameters()]


@pytest.mark.parametrize(
    "preset,model",
    [
        ("v3_plus", "v3_plus"),
        ("small_7k", "small_7k"),
        ("tiny_5k", "tiny_5k"),
        ("wide_41k", "wide_41k"),
        ("wide_99k", "wide_99k"),
        ("fashion_v3_plus", "v3_plus"),
        ("fashion_wide_1m", "wide_1m"),
    ],
)
def test_new_presets_turn_the_recipe_pieces_on(compose_config, preset, model):
    cfg = compose_config(f"experiment={preset}")
    assert cfg.model.name == model
    assert cfg.data.augment.name != "none"
    assert cfg.scheduler._target_.endswith("OneCycleLR")


def test_recipe_pieces_are_off_by_default(compose_config):
    cfg = compose_config()
    assert cfg.data.augment.name == "none" and cfg.data.augment.rotation == 0
    assert cfg.trainer.label_smoothing == 0 and cfg.trainer.ema_decay == 0
    assert cfg.data.augment.clean_final_epochs == 0


@pytest.mark.parametrize("preset,clean_final_epochs", [("small_7k", 2), ("tiny_5k", 2), ("v3_plus", 0)])
def test_the_smallest_models_finish_on_clean_images(compose_config, preset, clean_final_epochs):
    """Round 11's validation chose a clean finish for the two smallest models only."""
    assert compose_config(f"experiment={preset}").data.augment.clean_final_epochs == clean_final_epochs


@pytest.mark.parametrize(
    "preset,activation,cycle_momentum",
    [("small_7k", "silu", True), ("tiny_5k", "relu", False), ("v3_plus", "silu", True)],
)
def test_the_presets_keep_the_winners_of_rounds_19_21_and_33(
    compose_config, preset, activation, cycle_momentum
):
    """SiLU won `small_7k`'s validation and lost `tiny_5k`'s (round 19); a fixed beta1 won `tiny_5k`'s
    (round 21) and lost `small_7k`'s (round 22) and `v3_plus`'s (round 31); SiLU without dropout
    won `v3_plus`'s (round 33)."""
    cfg = compose_config(f"experiment={preset}")
    assert (cfg.model.activation, cfg.scheduler.cycle_momentum) == (activation, cycle_momentum)


def test_dotted_augment_choice_selects_the_preset():
    argv = ["data.augment=light", "data.augment.rotation=5", "-m", "data.augment=none,strong", "seed=1"]
    assert expand_group_shorthand(argv) == [
        "data/augment=light", "data.augment.rotation=5", "-m", "data/augment=none,strong", "seed=1"
    ]  # fmt: skip


def test_an_optional_group_chosen_with_plus_as_hydras_docs_spell_it_is_chosen(compose_config):
    argv = ["+experiment=v3_plus", "-m", "+hparams_search=optuna", "++experiment=seed_v1", "+seed=1"]
    assert expand_group_shorthand(argv) == [
        "experiment=v3_plus", "-m", "hparams_search=optuna", "++experiment=seed_v1", "+seed=1"
    ]  # fmt: skip
    with pytest.raises(ConfigCompositionException, match="Multiple values for experiment"):
        compose_config("+experiment=v3_plus")  # what Hydra alone answers


def test_run_with_every_recipe_piece_records_validation_and_saves_the_average(tmp_path):
    """Real MNIST: augmentation, label smoothing, EMA and a validation split in one short run."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "data.augment=light", "trainer.label_smoothing=0.1", "trainer.ema_decay=0.9",
        "data.val_size=500", "data.train_subset=1000", "trainer.epochs=2", "trainer.device=cpu",
        "trainer.threads=1", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"final_val_acc", "best_val_acc"} <= metrics.keys()
    assert all("val_acc" in record and "val_loss" in record for record in metrics["history"])
    assert ["test_acc" in record for record in metrics["history"]] == [False, True]
    assert metrics["final_test_acc"] == metrics["history"][-1]["test_acc"] and "best_test_acc" not in metrics

    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    trained = load_trained_model(run_dir / "checkpoints" / "last.pt")
    averaged = averaged_weights(state["ema"])
    assert not torch.equal(averaged["0.weight"], state["model"]["0.weight"])
    torch.testing.assert_close(trained.model.state_dict()["0.weight"], averaged["0.weight"])

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0}).Reload()
    assert "samples/train_digits" in events.Tags()["images"]


def test_clean_final_epochs_train_exactly_as_without_augmentation(tmp_path):
    """Real MNIST, two epochs: the clean epoch is the unaugmented training, bit for bit."""

    def history(*overrides: str) -> list[dict]:
        run_dir = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        result = run_cli(
            *overrides, "model=tiny_5k", "data.train_subset=300", "trainer.epochs=2", "trainer.device=cpu",
            "trainer.threads=1", "trainer.channels_last=false", f"hydra.run.dir={run_dir}", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        records = json.loads((run_dir / "metrics.json").read_text())["history"]
        return [(record["train_loss"], record["test_acc"]) for record in records]

    augmented = history("data/augment=strong")
    last_clean = history("data/augment=strong", "data.augment.clean_final_epochs=1")
    all_clean = history("data/augment=strong", "data.augment.clean_final_epochs=2")
    assert last_clean[0] == augmented[0] and last_clean[1] != augmented[1]
    assert all_clean == history("data/augment=none") != augmented


def test_unknown_augment_preset_lists_the_available_ones(tmp_path):
    result = run_cli("data.augment=wild", cwd=tmp_path)
    assert result.returncode == 1
    assert "Could not find 'data/augment/wild'" in result.stderr
    assert all(name in result.stderr for name in ("light", "none", "strong"))
    assert not (tmp_path / "outputs").exists()


def test_with_a_validation_split_the_best_epoch_is_chosen_by_validation_accuracy(tmp_path):
    metrics = RunMetrics(tmp_path / "metrics.json", "v3", 1, "cpu", epochs=3)
    assert metrics.add_epoch({"epoch": 1, "val_acc": 98.0})
    assert not metrics.add_epoch({"epoch": 2, "val_acc": 97.0})
    assert not metrics.add_epoch({"epoch": 3, "val_acc": 97.5, "test_acc": 99.9})
    document = metrics.document("completed")
    assert (document["best_val_acc"], document["final_test_acc"]) == (98.0, 99.9)
    assert "best_test_acc" not in document


def test_without_a_validation_split_no_epoch_is_chosen_as_best(tmp_path):
    metrics = RunMetrics(tmp_path / "metrics.json", "v3", 1, "cpu", epochs=2)
    assert not metrics.add_epoch({"epoch": 1, "test_acc": 98.0})
    assert not metrics.add_epoch({"epoch": 2, "test_acc": 98.5})
    document = metrics.document("completed")
    assert document["final_test_acc"] == 98.5
    assert not {"best_test_acc", "best_val_acc"} & set(document), "a peak picked on test is no result"
