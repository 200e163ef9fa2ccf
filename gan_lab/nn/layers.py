"""StyleGAN2 building blocks in plain PyTorch (no compiled extension).

References: Karras et al. 2018 "Progressive Growing of GANs" (equalized learning rate, minibatch
standard deviation), Karras et al. 2019 "A Style-Based Generator" (mapping network, noise
inputs), Karras et al. 2020 "Analyzing and Improving the Image Quality of StyleGAN" (weight
(de)modulation, skip generator, residual discriminator, [1,3,3,1] resampling filters) and
StyleGAN2-ADA (Karras et al. 2020) for the exact layer conventions (gains, clamping, padding).

Equalized learning rate: a layer's weight is stored as ``w ~ N(0, 1) / lr_mul`` and used as
``w * lr_mul / sqrt(fan_in)`` (bias stored ``b / lr_mul``, used ``b * lr_mul``). Adam then takes
steps of the same size for every layer whatever its fan-in, and ``lr_mul`` slows a layer down
(0.01 for the mapping network).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.nn.fir import upfirdn2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through leaky ReLU (He init)


# ---------------------------------------------------------------------------- activations
def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Pixel norm of the latent (StyleGAN): ``x / sqrt(mean(x^2) + eps)`` along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act_reference(
    x: Tensor, bias: Tensor | None, activation: str = "linear", gain: float = 1.0, clamp: float | None = None
) -> Tensor:
    """``bias_act`` written as plain autograd ops (what ``bias_act`` computes; the tests compare them)."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).reshape(shape)
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif activation != "linear":
        raise ValueError(f"activation={activation!r} is not one of 'linear', 'lrelu'")
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _act_grad(dy: Tensor, y: Tensor, slope: float | None, gain: float, clamp: float | None) -> Tensor:
    """``dy * d(y)/d(x + b)`` from the output ``y`` alone: ``gain``, times ``slope`` where ``y <= 0``
    (leaky ReLU keeps the sign), times 0 where the clamp held ``y`` at +-clamp."""
    if slope is not None:
        dy = torch.ops.aten.leaky_relu_backward(dy, y, slope, True)
    if clamp is not None:
        dy = torch.ops.aten.hardtanh_backward(dy, y, -clamp, clamp)
    return dy * gain if gain != 1 else dy


class _BiasActGrad(torch.autograd.Function):
    """The backward of ``_BiasAct`` (linear in ``dy``, piecewise constant in ``y``), itself
    differentiable: its backward is the same masked scaling, so R1 and path length (double
    backward) run it again instead of the autograd of four elementwise ops."""

    @staticmethod
    def forward(ctx, dy: Tensor, y: Tensor, slope: float | None, gain: float, clamp: float | None) -> Tensor:
        ctx.save_for_backward(y)
        ctx.args = (slope, gain, clamp)
        return _act_grad(dy, y, slope, gain, clamp)

    @staticmethod
    def backward(ctx, ddx: Tensor) -> tuple[Tensor, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        (y,) = ctx.saved_tensors
        return _BiasActGrad.apply(ddx, y, *ctx.args), None, None, None, None


class _BiasAct(torch.autograd.Function):
    """``clamp(gain * act(x + b))`` in three passes over the activations (``gain * b + gain * x``
    in one op, then leaky ReLU and clamp in place; the gain commutes with leaky ReLU since it is
    positive), saving only the output for the backward (four passes: mask, scale, bias sum)
    where the autograd of the plain ops makes eleven (add, leaky ReLU, mul, clamp and their
    backwards)."""

    @staticmethod
    def forward(
        ctx, x: Tensor, bias: Tensor | None, slope: float | None, gain: float, clamp: float | None
    ) -> Tensor:
        if bias is not None:
            b = bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
            if gain == 1:
                y = x + b
            elif torch.compiler.is_compiling():
                # torch.compile fuses the elementwise ops anyway, and its inductor (torch 2.14)
                # miscompiles torch.add(b, F.linear(...), alpha=gain)
                y = (x + b) * gain
            else:
                y = torch.add(b * gain, x, alpha=gain)
        else:
            y = x * gain if gain != 1 else x.clone()
        if slope is not None:
            y = F.leaky_relu_(y, slope)
        if clamp is not None:
            y = y.clamp_(-clamp, clamp)
        ctx.save_for_backward(y)
        ctx.args = (slope, gain, clamp)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return y

    @staticmethod
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        (y,) = ctx.saved_tensors
        dx = _BiasActGrad.apply(dy, y, *ctx.args)
        db = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            db = dx.sum(dim=[0, *range(2, dx.ndim)]).to(ctx.bias_dtype)
        return dx if ctx.needs_input_grad[0] else None, db, None, None, None


def bias_act(
    x: Tensor, bias: Tensor | None, activation: str = "linear", gain: float = 1.0, clamp: float | None = None
) -> Tensor:
    """``clamp(gain * act(x + b), -clamp, clamp)`` with act = identity or leaky ReLU(0.2).

    The clamp (StyleGAN2-ADA's ``conv_clamp``, 256) keeps float16 activations from overflowing;
    in float32 it is practically never active. One autograd op (``_BiasAct``) whose backward
    needs only the output: the derivative of leaky ReLU is read off the output's sign and the
    clamp's from ``|y| < clamp`` (as StyleGAN2-ADA's ``bias_act``), and the backward is itself
    differentiable (double backward). Equal to ``bias_act_reference`` within float rounding
    (``gain * x + gain * b`` instead of ``gain * (x + b)``).
    """
    if activation == "lrelu":
        slope = LRELU_SLOPE
    elif activation == "linear":
        slope = None
    else:
        raise ValueError(f"activation={activation!r} is not one of 'linear', 'lrelu'")
    if bias is None and slope is None and gain == 1 and clamp is None:
        return x
    return _BiasAct.apply(x, bias, slope, float(gain), None if clamp is None else float(clamp))


# ---------------------------------------------------------------------------- FIR resampling
def setup_filter(taps: tuple[float, ...] | list[float] = (1, 3, 3, 1)) -> Tensor:
    """1-D low-pass filter normalised to sum 1; the 2-D filter is its outer product, which
    ``upfirdn2d`` applies in one pass (``gan_lab/nn/fir.py``)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    return f / f.sum()


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """``up``-times larger image through the FIR filter (the toRGB skip path)."""
    k = f.numel()
    return upfirdn2d(x, f, up=up, padding=((k + up - 1) // 2, (k - up) // 2) * 2, gain=up * up)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """``down``-times smaller image through the FIR filter."""
    k = f.numel()
    return upfirdn2d(x, f, down=down, padding=((k - down + 1) // 2, (k - down) // 2) * 2)


def conv2d_resample(
    x: Tensor, w: Tensor, f: Tensor | None = None, up: int = 1, down: int = 1, groups: int = 1
) -> Tensor:
    """Convolution with a "same" padding of ``kernel // 2``, optionally upsampling or downsampling
    the image by 2 with the FIR filter ``f``, laid out as StyleGAN2-ADA's ``conv2d_resample``:

    * up: stride-2 transposed convolution, then the FIR filter (gain 4) with the padding that
      makes the output exactly twice the input side;
    * down: the FIR filter, then a stride-2 convolution (a 1x1 kernel: filter and decimate).
    """
    kernel = w.shape[-1]
    pad = kernel // 2
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=pad, groups=groups)
    if f is None:
        raise ValueError("resampling needs a FIR filter")
    k = f.numel()
    if up > 1:
        if down != 1:
            raise ValueError("up- and downsampling in one layer is not supported")
        # padding of the FIR step, in the upsampled domain (StyleGAN2-ADA's derivation)
        p0 = pad + (k + up - 1) // 2 - (kernel - 1)
        p1 = pad + (k - up) // 2 - (kernel - up)
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            o, i = w.shape[0] // groups, w.shape[1]
            wt = (
                w.reshape(groups, o, i, kernel, kernel).transpose(1, 2).reshape(groups * i, o, kernel, kernel)
            )
        x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
        return upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=up * up)
    p0 = pad + (k - down + 1) // 2
    p1 = pad + (k - down) // 2
    if kernel == 1:
        x = upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))
        return F.conv2d(x, w, groups=groups)
    x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
    return F.conv2d(x, w, stride=down, groups=groups)


# ---------------------------------------------------------------------------- equalized layers
class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate: ``y = act(x W'^T + b') * gain``,
    ``W' = W * lr_mul / sqrt(in)``, ``b' = b * lr_mul``, ``W ~ N(0, 1/lr_mul^2)``, ``b = bias_init / lr_mul``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, self.activation, gain=LRELU_GAIN)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate (``W' = W / sqrt(in * k * k)``), "same" padding,
    optional FIR up/downsampling by 2, then bias, activation (leaky ReLU with gain sqrt(2)) and
    clamp. ``forward(x, gain)`` multiplies the output by ``gain`` (and the clamp with it), which
    the residual discriminator uses for its sqrt(1/2) scaling.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = LRELU_GAIN if activation == "lrelu" else 1.0

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, "
            f"activation={self.activation}, up={self.up}, down={self.down}"
        )


# ---------------------------------------------------------------------------- modulation
def demodulation_coefficients(weight: Tensor, styles: Tensor, eps: float = 1e-8) -> Tensor:
    """StyleGAN2's ``d_no = 1 / sqrt(sum_{i,k} (s_ni w_oik)^2 + eps)`` without the per-sample
    kernels: the sum is ``sum_i s_ni^2 (sum_k w_oik^2)``, one (N, I) x (I, O) product, in float32
    (autocast would run it in float16/bfloat16)."""
    with torch.autocast(device_type=styles.device.type, enabled=False):
        sums = styles.float().square() @ weight.float().square().sum(dim=[2, 3]).t()
    return (sums + eps).rsqrt()


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: Tensor | None = None,
    fused: bool = False,
) -> Tensor:
    """Weight (de)modulation of StyleGAN2 (Karras et al. 2020, section 2.2, eq. 1 and 3).

    Modulation scales the input channels of the kernel by the sample's style:
    ``w'_ijk = s_i * w_ijk``; demodulation rescales each output channel to unit norm:
    ``w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + 1e-8)``, so that for inputs of unit variance
    the outputs have unit variance whatever the style.

    ``fused=True`` runs it literally: one grouped convolution with per-sample kernels.
    ``fused=False`` (faster in training) scales the activations instead, which is the same
    linear map: ``conv(x * s, w) * d``, and never builds the (N, O, I, k, k) per-sample kernels:
    ``d = 1 / sqrt(s^2 @ sum_k(w^2)^T + 1e-8)`` (``demodulation_coefficients``).

    In float16 with demodulation, the kernel and the styles are first pre-normalised as in
    StyleGAN2-ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
    Data", mixed-precision training; its ``modulated_conv2d``), per output channel ``o`` and
    sample ``n``:

        w_oikk <- w_oikk / (sqrt(I k k) max_{ikk} |w_oikk|),    s_ni <- s_ni / max_i |s_ni|

    Demodulation makes the result invariant to both scales; only the intermediate sum
    ``conv(x * s, w)`` shrinks: each of its ``I k k`` terms is at most ``|x| / sqrt(I k k)``
    (1/68 of ``|x|`` for a 512-channel 3x3 layer), which keeps it in float16's range.
    """
    y, dcoefs = _modulate_and_convolve(x, weight, styles, demodulate, up, resample_filter, fused)
    return y * dcoefs.to(y.dtype).reshape(*dcoefs.shape, 1, 1) if dcoefs is not None else y


def _modulate_and_convolve(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool,
    up: int,
    resample_filter: Tensor | None,
    fused: bool,
) -> tuple[Tensor, Tensor | None]:
    """``modulated_conv2d`` up to the demodulation: the convolution's output and the (N, O)
    coefficients still to multiply it by (None when fused, where they are in the kernels, or
    without demodulation), so that ``ModulatedConv2d`` adds its noise in the same op."""
    n = x.shape[0]
    out_channels, in_channels = weight.shape[:2]
    if styles.shape != (n, in_channels):
        raise ValueError(f"styles of shape {tuple(styles.shape)}, expected ({n}, {in_channels})")
    styles = styles.float()
    weight = weight.float()
    if x.dtype == torch.float16 and demodulate:
        fan_in = weight[0].numel()  # I k k
        weight = weight / (math.sqrt(fan_in) * weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None  # [N, O]
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        return conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up), dcoefs
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(
        x, w.reshape(-1, in_channels, *weight.shape[2:]).to(x.dtype), resample_filter, up=up, groups=n
    )
    return x.reshape(n, out_channels, *x.shape[2:]), None


NOISE_MODES = ("random", "const", "none")


class ModulatedConv2d(nn.Module):
    """StyleGAN2 synthesis layer: style ``s = A(w)`` (affine, bias initialised to 1), modulated and
    demodulated 3x3 convolution (the first of a block upsamples by 2), per-pixel noise
    ``strength * n`` with ``n ~ N(0, 1)`` shared over channels and ``strength`` learned from 0,
    bias, leaky ReLU with gain sqrt(2), clamp.

    Noise modes: ``random`` (fresh noise, from ``rng`` when given), ``const`` (a fixed noise
    image stored with the layer, for reproducible samples), ``none``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up = resolution, up
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        noise_mode: str = "random",
        rng: torch.Generator | None = None,
        fused: bool = False,
    ) -> Tensor:
        styles = self.affine(w) * self.weight_gain  # equalized LR (cancelled by demodulation)
        x, dcoefs = _modulate_and_convolve(x, self.weight, styles, True, self.up, self.resample_filter, fused)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(
                x.shape[0], 1, self.resolution, self.resolution, generator=rng, device=x.device, dtype=x.dtype
            )
            noise = noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            noise = (self.noise_const * self.noise_strength).to(x.dtype)
        elif noise_mode != "none":
            raise ValueError(f"noise_mode={noise_mode!r} is not one of {NOISE_MODES}")
        if dcoefs is not None:  # demodulation and noise in one op: x * d + noise
            d = dcoefs.to(x.dtype).reshape(*dcoefs.shape, 1, 1)
            x = torch.addcmul(noise, x, d) if noise is not None else x * d
        elif noise is not None:
            x = x + noise
        return bias_act(x, self.bias, "lrelu", gain=LRELU_GAIN, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGB(nn.Module):
    """1x1 modulated convolution to image channels, without demodulation, plus bias (StyleGAN2)."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, "linear", clamp=self.conv_clamp)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, section 3; StyleGAN2-ADA's grouping).

    The batch is split into groups of ``group_size`` (samples ``i, i+n, i+2n, ...`` form a
    group), the standard deviation of each feature over its group is averaged over
    ``C / num_channels`` channels and all pixels, and the ``num_channels`` results are appended to
    every sample of the group as constant feature maps. Computed in float32.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch std: batch of {n} is not divisible by the group size {g}")
        f = self.num_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
