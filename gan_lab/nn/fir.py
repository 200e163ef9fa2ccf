"""FIR up/down-sampling (``upfirdn2d``) as one twice- (in fact any-times-) differentiable op.

``upfirdn2d(x, f, up, down, padding)`` = decimate by ``down`` of (the 2-D FIR filter ``f``
convolved with (``x`` upsampled by ``up`` with zero insertion, then padded)), per channel. It is a
linear map ``y = A x``, and its adjoint ``A^T`` (the backward) is the same kind of map: zero
insertion by ``down`` (the adjoint of decimation), the filter flipped (the adjoint of a
correlation is the correlation with the flipped taps, "full" padding), crop (the adjoint of
padding) and decimation by ``up`` (the adjoint of zero insertion). With the input of side ``H``
(per axis) and the output of side ``L``, the backward's padding is

    p0' = k - p0 - 1,      p1' = H up - L down + p0 - up + 1

which makes its output exactly ``H`` long. The backward is this op again (``_UpFirDn2d.apply``),
so second-order passes (R1, path length: ``create_graph=True``) are FIR passes of the same op,
never the autograd of a convolution: on the CPU the double backward of a grouped (depthwise)
convolution runs one convolution per channel group (even for a constant filter), 512 calls per
FIR layer at 512 channels: 6,247 convolution calls in an R1 step of the former two-pass FIR,
56 now (``tests/test_layers_speedpaths.py`` pins that they no longer grow with the channels).

The filter is applied in one pass (the 4x4 outer product of ``[1, 3, 3, 1]``, as StyleGAN2-ADA
applies it, not two separable 1-D passes) as a depthwise convolution (``groups = channels``), the
fastest form of the forward measured on the CPU (one thread, 8 x 512 x 32 x 32): folding the
channels into the batch (``groups=1`` over ``(N*C, 1, H, W)``) was 4-12x slower per FIR (oneDNN
has no fast single-channel kernel) and made a whole R1 step of the 512-channel discriminator 1.3x
slower; two separable passes were 1.7x slower per FIR. Since the op's backward is the op itself,
the grouped convolution's own double backward is never used. Zero insertion followed by the
filter is one stride-``up`` transposed convolution, which skips the products with the inserted
zeros (2.4x faster than inserting them).

The math is StyleGAN2-ADA's ``upfirdn2d`` (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"), written independently of its code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

Padding = tuple[int, int, int, int]


def filter_2d(f: Tensor, gain: float = 1.0) -> Tensor:
    """The 2-D filter of ``f`` (1-D taps: their outer product, a 2-D filter as it is), times ``gain``."""
    if f.ndim == 1:
        f = torch.outer(f, f)
    elif f.ndim != 2:
        raise ValueError(f"a FIR filter is 1-D (separable taps) or 2-D, got shape {tuple(f.shape)}")
    return f * gain if gain != 1 else f


def _fir(x: Tensor, f: Tensor, up: int, down: int, padding: Padding, flip: bool) -> Tensor:
    """The op itself (no autograd): ``f`` a 2-D float filter, ``flip=False`` a convolution."""
    c = x.shape[1]
    taps = f if flip else f.flip([0, 1])  # the correlation weights of F.conv2d
    kh, kw = taps.shape
    left, right, top, bottom = padding
    if up == 1:
        weight = taps.to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
        if left == right >= 0 and top == bottom >= 0:
            return F.conv2d(x, weight, stride=down, padding=(top, left), groups=c)
        return F.conv2d(F.pad(x, [left, right, top, bottom]), weight, stride=down, groups=c)
    # zero insertion + padding + correlation = a transposed convolution with the conv-order taps,
    # whose "full" output starts k - 1 - p0 samples before ours and ends k - up - p1 after it
    weight = taps.flip([0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    crop = (kw - 1 - left, kw - up - right, kh - 1 - top, kh - up - bottom)  # >0: crop, <0: pad
    if crop[0] == crop[1] >= 0 and crop[2] == crop[3] >= 0:
        y = F.conv_transpose2d(x, weight, stride=up, padding=(crop[2], crop[0]), groups=c)
    else:
        y = F.conv_transpose2d(x, weight, stride=up, groups=c)
        y = F.pad(y, [-crop[0], -crop[1], -crop[2], -crop[3]])
    return y[:, :, ::down, ::down] if down > 1 else y


class _UpFirDn2d(torch.autograd.Function):
    """``upfirdn2d`` whose backward is ``upfirdn2d`` (flipped taps, up and down swapped)."""

    @staticmethod
    def forward(ctx, x: Tensor, f: Tensor, up: int, down: int, padding: Padding, flip: bool) -> Tensor:
        y = _fir(x, f, up, down, padding, flip)
        ctx.save_for_backward(f)
        ctx.args = (up, down, padding, flip, x.shape[2], x.shape[3])
        return y

    @staticmethod
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, None, None, None, None, None]:
        (f,) = ctx.saved_tensors
        up, down, (left, _, top, _), flip, h, w = ctx.args
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        kh, kw = f.shape
        oh, ow = dy.shape[2], dy.shape[3]
        padding = (
            kw - left - 1,
            w * up - ow * down + left - up + 1,
            kh - top - 1,
            h * up - oh * down + top - up + 1,
        )
        dx = _UpFirDn2d.apply(dy, f, down, up, padding, not flip)
        return dx, None, None, None, None, None


def upfirdn2d(
    x: Tensor,
    f: Tensor,
    up: int = 1,
    down: int = 1,
    padding: Padding = (0, 0, 0, 0),
    gain: float = 1.0,
    flip_filter: bool = False,
) -> Tensor:
    """Upsample by zero insertion, pad, filter with the 2-D FIR ``f`` (1-D taps: their outer
    product), decimate; per channel of ``x`` (N, C, H, W).

    ``padding`` is (left, right, top, bottom) in the upsampled image; negative values crop.
    ``gain`` scales the 2-D filter (``up**2`` for upsampling keeps the mean intensity, since
    zero insertion leaves one nonzero pixel in ``up**2``). ``flip_filter=True`` correlates
    instead of convolving (the same for symmetric filters).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d takes (N, C, H, W) images, got shape {tuple(x.shape)}")
    if up < 1 or down < 1:
        raise ValueError(f"up={up} and down={down} must be >= 1")
    f2 = filter_2d(f.detach().float(), gain).to(x.device)
    return _UpFirDn2d.apply(x, f2, int(up), int(down), tuple(int(p) for p in padding), bool(flip_filter))
