import pytest
import torch
from hydra.utils import instantiate

from mnist_exp.models import count_parameters, layer_summary

SEED_PARAMETERS = {"v1": 420_614, "v2": 99_746, "v3": 18_594}


@pytest.mark.parametrize("name", SEED_PARAMETERS)
def test_seed_models_have_the_seeds_parameter_counts(compose_config, name):
    model = instantiate(compose_config(f"model={name}").model)
    assert count_parameters(model) == SEED_PARAMETERS[name]


@pytest.mark.parametrize("name", SEED_PARAMETERS)
def test_seed_models_map_a_batch_of_digits_to_ten_logits(compose_config, name):
    model = instantiate(compose_config(f"model={name}").model)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_v3_summary_follows_the_seeds_layer_table(compose_config):
    model = instantiate(compose_config("model=v3").model)
    rows = layer_summary(model, (1, 28, 28))
    convs = [(shape, params) for name, shape, params in rows if name.startswith("Conv2d")]
    assert convs == [
        ("[-1, 8, 28, 28]", 80),
        ("[-1, 8, 28, 28]", 584),
        ("[-1, 16, 14, 14]", 1_168),
        ("[-1, 16, 14, 14]", 2_320),
        ("[-1, 32, 7, 7]", 4_640),
        ("[-1, 32, 7, 7]", 9_248),
    ]
    pools = [shape for name, shape, _ in rows if name.startswith("MaxPool2d")]
    assert pools == ["[-1, 8, 14, 14]", "[-1, 16, 7, 7]", "[-1, 32, 3, 3]"]
    assert sum(params for _, _, params in rows) == 18_594


def test_v1_last_conv_has_no_batch_norm_and_a_hidden_layer_of_100(compose_config):
    model = instantiate(compose_config("model=v1").model)
    layers = list(model)
    last_conv = max(i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Conv2d))
    assert isinstance(layers[last_conv + 1], torch.nn.AdaptiveAvgPool2d)
    linears = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(256, 100), (100, 10)]


def test_groups_equal_to_the_channels_make_a_depthwise_conv(compose_config):
    """A depthwise 3x3 block followed by a pointwise 1x1 block: a depthwise-separable conv."""
    blocks = "model.blocks=[{channels:8},{channels:8,groups:8},{channels:24,kernel:1}]"
    model = instantiate(compose_config("model=v3", blocks).model)
    convs = [layer for layer in model if isinstance(layer, torch.nn.Conv2d)]
    depthwise, pointwise = convs[1], convs[2]
    assert depthwise.groups == 8 and depthwise.weight.shape == (8, 1, 3, 3)
    assert pointwise.kernel_size == (1, 1) and (pointwise.in_channels, pointwise.out_channels) == (8, 24)


def test_groups_from_the_command_line_split_a_conv(compose_config):
    model = instantiate(compose_config("model=v3", "model.blocks.1.groups=2").model)
    conv = [layer for layer in model if isinstance(layer, torch.nn.Conv2d)][1]
    assert conv.groups == 2 and conv.weight.shape == (8, 4, 3, 3)


@pytest.mark.parametrize(("name", "kind"), [("silu", torch.nn.SiLU), ("gelu", torch.nn.GELU)])
def test_the_activation_is_chosen_per_model_at_no_parameter_cost(compose_config, name, kind):
    plain = instantiate(compose_config("model=v1").model)
    smooth = instantiate(compose_config("model=v1", f"model.activation={name}").model)
    kinds = [type(layer) for layer in smooth]
    assert kinds == [kind if layer is torch.nn.ReLU else layer for layer in map(type, plain)]
    assert kind in kinds and count_parameters(smooth) == count_parameters(plain)


def test_the_validated_activation_names_are_the_models_own():
    from mnist_exp.config.validation import ACTIVATIONS as VALIDATED
    from mnist_exp.models import ACTIVATIONS

    assert tuple(ACTIVATIONS) == VALIDATED
