"""The study's five networks: registry, shapes, gradients, parameter counts, 2.5D, speed paths."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

from livgui.models import registry
from livgui.models.blocks import SegmentationNet, fold_batchnorm, pad_to_multiple
from livgui.models.registry import UnknownArchitecture, available, build

NETWORKS_2D = ["unet2d", "attention_unet2d", "unet3plus2d", "resunetpp2d"]
ALL_NETWORKS = [*NETWORKS_2D, "unet3d"]

#: Small configurations for fast CPU tests.
SMALL: dict[str, dict[str, Any]] = {
    "unet2d": {"base_c": 8},
    "attention_unet2d": {"base_c": 8},
    "unet3plus2d": {"base_c": 8},
    "resunetpp2d": {"base_c": 8},
    "unet3d": {"base_c": 4, "depth": 3},
}


def _input(name: str, batch: int = 2, channels: int = 1, size: int = 64) -> torch.Tensor:
    if name == "unet3d":
        return torch.randn(batch, channels, 32, 32, 32)
    return torch.randn(batch, channels, size, size)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build_meta(name: str, **hp: Any) -> nn.Module:
    """Build on the meta device: parameter shapes without allocating or initialising."""
    with torch.device("meta"):
        return build(name, **hp)


# --- registry -------------------------------------------------------------------------


def test_registry_lists_all_five_with_a_summary() -> None:
    listed = available()
    for name in ALL_NETWORKS:
        assert name in listed
        assert len(listed[name]) > 10, f"{name} has no useful summary"


def test_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(UnknownArchitecture) as err:
        build("unet9d")
    message = str(err.value)
    assert "unet9d" in message
    assert "unet2d" in message  # lists what is registered


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        registry.register("unet2d")(nn.Identity)


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_hparams_rebuild_the_same_architecture(name: str) -> None:
    model = build(name, **SMALL[name], num_classes=3)
    assert isinstance(model, SegmentationNet)
    assert model.arch == name
    again = build(name, **model.hparams)
    got = {k: v.shape for k, v in again.state_dict().items()}
    assert got == {k: v.shape for k, v in model.state_dict().items()}


# --- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_output_is_logits_of_the_input_size(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, **SMALL[name], num_classes=3).eval()
    x = _input(name)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (x.shape[0], 3, *x.shape[2:])
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_sizes_not_divisible_by_two_to_the_depth_are_padded_internally(name: str) -> None:
    model = build(name, **SMALL[name]).eval()
    shape = (1, 1, 20, 36, 30) if name == "unet3d" else (1, 1, 60, 52)
    with torch.inference_mode():
        y = model(torch.randn(shape))
    assert y.shape[2:] == shape[2:]
    assert model.size_divisor == 2 ** model.hparams["depth"]


@pytest.mark.parametrize("name", NETWORKS_2D)
@pytest.mark.parametrize("depth", [2, 3])
def test_depth_is_configurable(name: str, depth: int) -> None:
    model = build(name, base_c=4, depth=depth).eval()
    with torch.inference_mode():
        y = model(torch.randn(1, 1, 32, 32))
    assert y.shape == (1, 2, 32, 32)
    assert model.size_divisor == 2**depth


def test_padding_is_skipped_when_the_size_already_fits() -> None:
    x = torch.randn(1, 1, 64, 64)
    assert pad_to_multiple(x, 16) is x
    padded = pad_to_multiple(torch.randn(1, 1, 60, 50), 16)
    assert padded.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_wrong_input_layout_is_a_clear_error(name: str) -> None:
    model = build(name, **SMALL[name])
    with pytest.raises(ValueError, match=rf"{name} expects .* C=1"):
        model(_input(name, channels=2))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.randn(4, 4))


@pytest.mark.parametrize("name", ALL_NETWORKS)
@pytest.mark.parametrize("bad", [{"base_c": 0}, {"depth": 0}, {"num_classes": 0}])
def test_nonsense_hyper_parameters_are_refused(name: str, bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        build(name, **bad)


# --- gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(1)
    model = build(name, **SMALL[name], in_channels=3, num_classes=3).train()
    x = _input(name, channels=3)
    target = torch.randint(0, 3, (x.shape[0], *x.shape[2:]))
    loss = nn.functional.cross_entropy(model(x), target)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
    first = [
        m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d) and m.in_channels == 3
    ]
    assert first, "no input convolution found"
    for conv in first:
        assert conv.weight.grad is not None
        assert conv.weight.grad.abs().sum() > 0, f"{name}: input layer gets a zero gradient"


# --- parameter counts (STUDY.md table, 1 input channel) -------------------------------

STUDY_COUNTS = [
    ("unet2d", {"base_c": 64, "depth": 4, "bilinear": False, "num_classes": 2}, 31.04e6),
    ("unet2d", {"base_c": 64, "depth": 4, "bilinear": True, "num_classes": 2}, 17.3e6),
    ("attention_unet2d", {"base_c": 64, "num_classes": 2}, 34.88e6),
    ("unet3plus2d", {"base_c": 64, "num_classes": 2}, 26.97e6),
    ("unet3d", {"base_c": 32, "depth": 3, "num_classes": 3}, 19.07e6),
]


@pytest.mark.parametrize(("name", "hp", "expected"), STUDY_COUNTS)
def test_parameter_counts_match_the_study_table(
    name: str, hp: dict[str, Any], expected: float
) -> None:
    count = _n_params(_build_meta(name, in_channels=1, **hp))
    assert abs(count - expected) / expected < 0.03, f"{name} {hp}: {count:,} vs {expected:,.0f}"


def test_defaults_are_the_study_configurations() -> None:
    assert _build_meta("unet2d").hparams["base_c"] == 64
    for name, hp, _ in STUDY_COUNTS[1:]:
        default = _n_params(_build_meta(name))
        assert default == _n_params(_build_meta(name, **hp)), name


def test_unet3d_holds_the_papers_19069955_parameters_with_its_3_input_channels() -> None:
    # Cicek et al. 2016 report 19,069,955 parameters for 3 input channels and 3 labels,
    # counting conv weights and one bias per conv output; batch-norm statistics and the
    # up-convolutions' biases are not counted. Here the batch norm shift plays the conv
    # bias's role, so: conv weights + BN shifts + the output conv's bias.
    model = _build_meta("unet3d", in_channels=3, num_classes=3)
    weights = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv3d | nn.ConvTranspose3d)
    )
    shifts = sum(m.bias.numel() for m in model.modules() if isinstance(m, nn.BatchNorm3d))
    assert weights + shifts + 3 == 19_069_955


def _resunetpp_count(in_ch: int, n_cls: int) -> int:
    """ResUNet++ trainable parameters computed layer by layer from Jha et al. 2019, Fig. 2.

    Stem 16, residual blocks 32/64/128 (stride 2) with SE (ratio 8), ASPP bridge 256
    (four 3x3 branches + BN, 1x1 projection), three decoder stages (attention with three
    BN-ReLU-3x3 conv units, x2 up-sampling, concatenation, residual block 128/64/32),
    ASPP 16, 1x1 output. Convs feeding a batch norm have no bias; BN has scale + shift.
    """

    def conv(i: int, o: int, k: int, bias: bool) -> int:
        return k * k * i * o + (o if bias else 0)

    def bn(c: int) -> int:
        return 2 * c

    def se(c: int) -> int:
        return 2 * c * (c // 8)

    def res(i: int, o: int, pre_bn: bool = True) -> int:
        body = (bn(i) if pre_bn else 0) + conv(i, o, 3, False) + bn(o) + conv(o, o, 3, True)
        return body + conv(i, o, 1, False) + bn(o) + se(o)

    def aspp(i: int, o: int) -> int:
        return 4 * (conv(i, o, 3, False) + bn(o)) + conv(o, o, 1, True)

    def att(g: int, x: int) -> int:
        return bn(g) + conv(g, x, 3, True) + 2 * (bn(x) + conv(x, x, 3, True))

    encoder = res(in_ch, 16, pre_bn=False) + res(16, 32) + res(32, 64) + res(64, 128)
    decoder = (
        att(64, 256) + res(256 + 64, 128) + att(32, 128) + res(128 + 32, 64)
        + att(16, 64) + res(64 + 16, 32)
    )  # fmt: skip
    return encoder + aspp(128, 256) + decoder + aspp(32, 16) + conv(16, n_cls, 1, True)


def test_resunetpp_count_follows_the_papers_layer_table() -> None:
    expected = _resunetpp_count(1, 2)
    assert expected == 4_060_674  # the figure documented in docs/networks.md
    assert _n_params(_build_meta("resunetpp2d", in_channels=1, num_classes=2)) == expected
    assert _n_params(_build_meta("resunetpp2d", in_channels=3, num_classes=1)) == (
        _resunetpp_count(3, 1)
    )


# --- 2.5D -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS_2D)
def test_context_slices_give_a_two_point_five_d_model(name: str) -> None:
    model = build(name, **SMALL[name], context_slices=2).eval()
    assert model.in_channels == 5
    assert model.hparams["context_slices"] == 2
    with torch.inference_mode():
        y = model(torch.randn(2, 5, 64, 64))
    assert y.shape == (2, 2, 64, 64)
    with pytest.raises(ValueError, match="C=5"):
        model(torch.randn(2, 1, 64, 64))


def test_context_slices_and_in_channels_must_agree() -> None:
    assert build("unet2d", base_c=4, in_channels=3, context_slices=1).in_channels == 3
    with pytest.raises(ValueError, match="contradicts"):
        build("unet2d", base_c=4, in_channels=4, context_slices=1)
    with pytest.raises(ValueError, match="context_slices"):
        build("unet2d", base_c=4, context_slices=-1)


# --- inference paths ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_eval_batches_do_not_couple_samples(name: str) -> None:
    torch.manual_seed(2)
    model = build(name, **SMALL[name]).eval()
    x = _input(name, batch=2)
    with torch.inference_mode():
        both = model(x)
        one = model(x[1:])
    torch.testing.assert_close(both[1:], one, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_channels_last_gives_the_same_logits(name: str) -> None:
    torch.manual_seed(3)
    model = build(name, **SMALL[name]).eval()
    x = _input(name, batch=1)
    fmt = torch.channels_last_3d if name == "unet3d" else torch.channels_last
    with torch.inference_mode():
        ref = model(x)
        model = model.to(memory_format=fmt)
        got = model(x.contiguous(memory_format=fmt))
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def _randomise_batchnorm(model: nn.Module) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)


@pytest.mark.parametrize("name", ALL_NETWORKS)
def test_folding_batchnorm_keeps_the_logits(name: str) -> None:
    torch.manual_seed(7)
    model = build(name, **SMALL[name]).eval()
    _randomise_batchnorm(model)
    x = _input(name, batch=1)
    n_bn = sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in model.modules())
    with torch.inference_mode():
        ref = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    left = sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in folded.modules())
    assert folded is model and not model.training
    # Only ResUNet++'s pre-activation batch norms (BN before a conv) cannot be folded.
    assert left == 0 if name != "resunetpp2d" else 0 < left < n_bn
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-4)


def test_bf16_autocast_on_cpu() -> None:
    torch.manual_seed(4)
    model = build("unet2d", base_c=8).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
    assert got.shape == ref.shape
    assert got.dtype == torch.bfloat16
    err = (got.float() - ref).abs().mean() / ref.abs().mean()
    assert err < 0.05


# --- UNet 3+ options ------------------------------------------------------------------


def test_unet3plus_deep_supervision_and_cgm_train_every_head() -> None:
    torch.manual_seed(5)
    model = build("unet3plus2d", base_c=4, deep_supervision=True, cgm=True).train()
    x = torch.randn(2, 1, 48, 40)
    outs, probs = model.forward_deep(x)
    assert len(outs) == 5
    assert all(o.shape == (2, 2, 48, 40) for o in outs)
    assert probs is not None and probs.shape == (2, 2)
    target = torch.randint(0, 2, (2, 48, 40))
    loss = sum(nn.functional.cross_entropy(o, target) for o in outs) + probs.sum()
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_unet3plus_cgm_silences_images_it_judges_empty() -> None:
    model = build("unet3plus2d", base_c=4, cgm=True).eval()
    assert model.cgm is not None
    head = model.cgm[1]
    assert isinstance(head, nn.Conv2d)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, -5.0]))  # "organ absent" for every image
        y = model(torch.randn(1, 1, 32, 32))
    assert torch.count_nonzero(y) == 0
    with pytest.raises(ValueError, match="deep_supervision"):
        build("unet3plus2d", base_c=4).forward_deep(torch.randn(1, 1, 32, 32))


# --- dependencies ---------------------------------------------------------------------


def test_networks_import_and_build_without_scipy_nibabel_or_qt() -> None:
    # The GPU machine has only torch, numpy and safetensors: block the rest and build all.
    code = (
        "import sys\n"
        "for m in ('scipy', 'nibabel', 'pydicom', 'PySide6', 'pyqtgraph', 'PIL'):\n"
        "    sys.modules[m] = None\n"
        "from livgui.models.registry import build\n"
        f"for name in {ALL_NETWORKS!r}:\n"
        "    build(name, base_c=4)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
