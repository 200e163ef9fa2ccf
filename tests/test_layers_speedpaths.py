"""The fast paths of the StyleGAN2 layers compute what the plain formulations compute.

* FIR resampling (``gan_lab/nn/fir.py``): one autograd op whose backward is the FIR again, equal
  to the straightforward separable implementation it replaced (zero insertion, padding, two 1-D
  depthwise passes), with the same first and second derivatives;
* demodulation from ``styles^2 @ sum_k(w^2)^T`` instead of per-sample kernels;
* ``bias_act`` as one autograd op against the plain ops;
* the regression these fix: an R1 step's convolution calls no longer grow with the channel count
  (the double backward of a grouped convolution runs one convolution per channel group).
"""

from __future__ import annotations

import math
import shutil
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gan_lab.losses import path_lengths, r1_penalty
from gan_lab.nn import layers
from gan_lab.nn.fir import upfirdn2d
from gan_lab.nn.layers import (
    EqualizedLinear,
    bias_act,
    bias_act_reference,
    conv2d_resample,
    demodulation_coefficients,
    downsample2d,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)
from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator


def separable_upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
    """The lab's former upfirdn2d: zero insertion, pad/crop, two 1-D depthwise passes."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    left, right, top, bottom = padding
    x = F.pad(x, [max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)])
    x = x[:, :, max(-top, 0) : x.shape[2] - max(-bottom, 0), max(-left, 0) : x.shape[3] - max(-right, 0)]
    taps = (f * math.sqrt(gain)).flip(0).to(x.dtype)
    k = taps.numel()
    x = F.conv2d(x, taps.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c, stride=(1, down))
    return F.conv2d(x, taps.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c, stride=(down, 1))


# (up, down, padding): the layers' four uses, asymmetric and cropping (negative) paddings
FIR_CASES = [
    (2, 1, (2, 1, 2, 1)),  # upsample2d (the toRGB skip)
    (1, 1, (1, 1, 1, 1)),  # after the transposed convolution of an upsampling conv
    (1, 1, (2, 2, 2, 2)),  # before the stride-2 convolution of a downsampling conv
    (1, 2, (1, 1, 1, 1)),  # downsample2d / the 1x1 downsampling skip
    (1, 1, (-1, 2, 0, 3)),  # crop on one side, pad on the other
    (2, 1, (-1, 3, 1, -1)),
    (1, 2, (2, -1, -1, 1)),
    (2, 2, (1, 2, 2, 1)),
    (3, 1, (0, 0, 1, 0)),
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second intra-op thread only adds a wake-up per op (10 ms each on a busy
    2-core machine, which made gradgradcheck take 20 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ASYMMETRIC = torch.tensor([1.0, 2.0, 5.0, 3.0]) / 11  # catches a missing or extra flip


@pytest.mark.parametrize(("up", "down", "padding"), FIR_CASES)
def test_fir_equals_the_separable_implementation(up, down, padding) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8)
    for f in (setup_filter(), ASYMMETRIC):
        a = upfirdn2d(x, f, up, down, padding, gain=up * up)
        b = separable_upfirdn2d(x, f, up, down, padding, gain=up * up)
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("up", "down", "padding"), [FIR_CASES[i] for i in (0, 3, 5, 6, 7)])
def test_fir_gradcheck_and_gradgradcheck(up, down, padding) -> None:
    """Up and down, with padding and with cropping (float64, a small input: gradgradcheck
    differentiates every output element)."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)

    def fir(t):
        return upfirdn2d(t, ASYMMETRIC, up, down, padding, gain=up * up)

    assert torch.autograd.gradcheck(fir, (x,))
    assert torch.autograd.gradgradcheck(fir, (x,))


@pytest.mark.parametrize(("up", "down", "padding"), FIR_CASES[:4])
def test_fir_first_and_second_derivatives_equal_the_separable_ones(up, down, padding) -> None:
    torch.manual_seed(0)
    x0 = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    probe = None
    grads = []
    for fir in (upfirdn2d, separable_upfirdn2d):
        x = x0.clone().requires_grad_(True)
        y = fir(x, ASYMMETRIC.double(), up, down, padding, gain=up * up)
        probe = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        (g,) = torch.autograd.grad((y * probe).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g.square() * x).sum(), x)  # a second-order term
        grads.append((g.detach(), gg))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_fir_keeps_dtype_and_takes_a_2d_filter() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    f2 = torch.rand(3, 5)
    a = upfirdn2d(x, f2, padding=(2, 2, 1, 1))
    ref = F.conv2d(F.pad(x, [2, 2, 1, 1]), f2.flip([0, 1]).expand(3, 1, 3, 5), groups=3)
    torch.testing.assert_close(a, ref)
    assert upfirdn2d(x.double(), setup_filter(), down=2, padding=(1, 1, 1, 1)).dtype == torch.float64


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize(("up", "down"), [(2, 1), (1, 2)])
def test_conv2d_resample_equals_it_with_the_separable_fir(kernel, up, down, monkeypatch) -> None:
    torch.manual_seed(0)
    x, w, f = torch.randn(2, 6, 8, 8), torch.randn(5, 6, kernel, kernel), setup_filter()
    new = conv2d_resample(x, w, f, up=up, down=down)
    monkeypatch.setattr(layers, "upfirdn2d", separable_upfirdn2d)
    old = conv2d_resample(x, w, f, up=up, down=down)
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
    monkeypatch.undo()
    assert torch.equal(upsample2d(x, f), upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4))
    assert torch.equal(downsample2d(x, f), upfirdn2d(x, f, down=2, padding=(1, 1, 1, 1)))


# ---------------------------------------------------------------------------- demodulation
def per_sample_modulated_conv2d(x, weight, styles, demodulate=True, up=1, f=None):
    """The literal formula: per-sample kernels, demodulated, as a grouped convolution."""
    n, o, i = x.shape[0], weight.shape[0], weight.shape[1]
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
    y = conv2d_resample(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, i, *w.shape[3:]), f, up=up, groups=n)
    return y.reshape(n, o, *y.shape[2:])


def test_demodulation_coefficients_equal_the_per_sample_kernel_norms() -> None:
    torch.manual_seed(0)
    weight, styles = torch.randn(16, 12, 3, 3), torch.randn(4, 12) * 3
    w = weight.unsqueeze(0) * styles.reshape(4, 1, -1, 1, 1)
    expected = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    torch.testing.assert_close(demodulation_coefficients(weight, styles), expected, rtol=1e-5, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in float32 whatever autocast says
        d = demodulation_coefficients(weight, styles)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_the_per_sample_kernels(fused, up, demodulate) -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 8, 8, 8), torch.randn(5, 8, 3, 3), torch.randn(3, 8)
    f = setup_filter()
    expected = per_sample_modulated_conv2d(x, weight, styles, demodulate, up, f)
    y = modulated_conv2d(x, weight, styles, demodulate, up, f, fused=fused)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)


def test_modulated_conv_gradients_equal_the_per_sample_kernels() -> None:
    """First and second order (float32: modulated_conv2d computes the kernel side in float32)."""
    torch.manual_seed(0)
    x0, w0, s0 = torch.randn(2, 4, 6, 6), torch.randn(3, 4, 3, 3), torch.randn(2, 4)
    grads = []
    for fn in (modulated_conv2d, per_sample_modulated_conv2d):
        x, w, s = (t.clone().requires_grad_(True) for t in (x0, w0, s0))
        y = fn(x, w, s, True, 2, setup_filter())
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)  # path-length-like
        grads.append(torch.autograd.grad(gx.square().sum(), [w, s]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


# ---------------------------------------------------------------------------- bias_act
@pytest.mark.parametrize(
    ("activation", "gain", "clamp", "has_bias"),
    [
        ("lrelu", math.sqrt(2), 256.0, True),
        ("lrelu", math.sqrt(2), 0.5, True),
        ("linear", 1.0, 0.5, True),
        ("linear", 0.7, None, False),
        ("lrelu", 1.0, None, False),
    ],
)
def test_bias_act_equals_the_plain_ops(activation, gain, clamp, has_bias) -> None:
    torch.manual_seed(0)
    x0, b0 = torch.randn(2, 5, 4, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    results = []
    for fn in (bias_act, bias_act_reference):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = fn(x, b if has_bias else None, activation, gain, clamp)
        inputs = [x, b] if has_bias else [x]
        g = torch.autograd.grad((y * y.detach().cos()).sum(), inputs, create_graph=True)
        second = sum((t.square() * x0.sum()).sum() for t in g) + (g[0] * x).sum()
        gg = torch.autograd.grad(second, inputs, allow_unused=True, materialize_grads=True)
        results.append((y, *g, *gg))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)
    x = x0.clone().requires_grad_(True)

    def op(t):
        return bias_act(t, b0 if has_bias else None, activation, gain, clamp)

    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))


def test_bias_act_leaves_its_input_alone() -> None:
    x = torch.randn(2, 3, 4, 4)
    before = x.clone()
    bias_act(x, None, "lrelu", 1.0, 0.1)
    bias_act(x, torch.zeros(3), "lrelu", 2.0, 0.1)
    assert torch.equal(x, before)
    assert bias_act(x, None) is x


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="inductor needs a C compiler")
def test_bias_act_under_torch_compile() -> None:
    """model.compile=true: the fused op traced by torch.compile gives what it gives eagerly
    (torch 2.14's inductor miscompiled ``torch.add(b, F.linear(...), alpha=gain)``)."""
    torch.manual_seed(0)
    layer = EqualizedLinear(8, 6, activation="lrelu")
    x = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(layer)(x), layer(x))


# ---------------------------------------------------------------------------- the regression
class CountConvolutions(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if "convolution" in name:
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


def r1_step_convolutions(width: int) -> int:
    torch.manual_seed(0)
    D = StyleGANDiscriminator(16, 3, channel_base=width * 16, channel_max=width, mbstd_group=2)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    with CountConvolutions() as mode:
        logits = D(x)
        loss = r1_penalty(logits, x).mean() + logits.sum() * 0
        loss.backward()
    return sum(mode.calls.values())


def path_length_step_convolutions(width: int) -> int:
    torch.manual_seed(0)
    G = StyleGANGenerator(16, 3, z_dim=8, w_dim=8, map_layers=1, channel_base=width * 16, channel_max=width)
    with CountConvolutions() as mode:
        ws = G.mapping(torch.randn(2, 8))
        images = G.synthesis(ws)
        path_lengths(images, ws, torch.randn_like(images)).mean().backward()
    return sum(mode.calls.values())


def test_r1_and_path_length_convolution_calls_do_not_grow_with_the_channels() -> None:
    """The separable grouped FIR made an R1 step run about one convolution per channel per FIR
    layer (6,201 calls at 512 channels); now it is a fixed few dozen whatever the width."""
    narrow, wide = r1_step_convolutions(4), r1_step_convolutions(32)
    assert narrow == wide
    assert wide < 100
    narrow, wide = path_length_step_convolutions(4), path_length_step_convolutions(32)
    assert narrow == wide
    assert wide < 150
