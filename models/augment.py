"""ADA (Karras et al. 2020, "Training generative adversarial networks with limited data"):
a differentiable augmentation pipeline in front of the discriminator, whose strength p
adapts so that D does not overfit the real images.

Everything D sees, reals and fakes, in D and in G steps, goes through ``AugmentPipe``.
Each augmentation is applied per image with probability p ("bgc" in the paper: blit,
geometric, colour):

- geometric, composed into one 3×3 inverse transform per image and applied once, as the
  reference does it (``geometric_resample``): reflect-pad by the transformed bounding box,
  upsample ×2 with the sym6 wavelet filter, bilinear ``grid_sample`` at twice the
  resolution, filter and downsample ×2 — the supersampling keeps the resampling from
  aliasing (an aliasing pattern D could learn to tell, that would leak into G). The
  transforms: x-flip, 90° rotations, integer translation, isotropic scaling, rotation
  (before and after the anisotropic scaling, each with probability 1−√(1−p), so that some
  rotation happens with probability p), anisotropic scaling, fractional translation;
- colour, composed into one 4×4 matrix per image acting on homogeneous RGB: brightness,
  contrast, luma flip, hue rotation, saturation.

Because augmentations with p < 1 are "non-leaking" (their distribution is invertible),
G still learns the clean distribution. ``AdaController`` moves p towards the target
overfitting heuristic r_t = E[sign(D(real))] = 0.6.

The pipeline is pure PyTorch and differentiable with respect to the images (R1 and the G
loss back-propagate through it); randomness comes from a caller-given torch.Generator.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# the paper's augmentation ranges (stylegan2-ada's AugmentPipe defaults)
XINT_MAX = 0.125  # integer translation, fraction of the image size
SCALE_STD = 0.2  # log2 std of isotropic scaling
ROTATE_MAX = 1.0  # rotation range, fraction of a half turn
ANISO_STD = 0.2  # log2 std of anisotropic scaling
XFRAC_STD = 0.125  # fractional translation std, fraction of the image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2
HUE_MAX = 1.0  # fraction of a full hue turn either way
SATURATION_STD = 1.0  # log2

_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)  # the grey axis in homogeneous RGB

# Symlet-6 decomposition low-pass (Daubechies' least-asymmetric wavelet with 6 vanishing
# moments), the geometric resampling filter of stylegan2-ada-pytorch (its ``wavelets['sym6']``)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
SYM6_PAD = len(SYM6) // 4  # the reference's Hz_pad


def _crop_pad(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad positive amounts, crop negative ones (upfirdn2d's padding)."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]


def _up_last(x: torch.Tensor, taps: list[float], crop: int) -> torch.Tensor:
    """×2 along the last axis: a stride-2 transposed convolution with ``taps`` (each output
    phase a sum of shifted slices; CPU convolutions with a 1-pixel-high kernel are slow),
    then ``crop`` samples off each end."""
    k, length = len(taps), x.shape[-1]
    half = k // 2
    xp = F.pad(x, [half - 1, half - 1])
    span = length + half - 1
    phases = [sum(taps[2 * q + r] * xp[..., half - 1 - q:half - 1 - q + span] for q in range(half)) for r in (0, 1)]
    out = torch.stack(phases, dim=-1).flatten(-2)  # 2·(length + k/2 − 1) = (length − 1)·2 + k
    return out[..., crop:out.shape[-1] - crop]


def _down_last(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Correlate the last axis with ``taps`` and keep every second sample."""
    k = len(taps)
    n = (x.shape[-1] - k) // 2 + 1
    return sum(t * x[..., i:i + 2 * (n - 1) + 1:2] for i, t in enumerate(taps))


def _axis_operator(op, length: int, x: torch.Tensor) -> torch.Tensor:
    """The matrix (length × output length) of a linear 1-D ``op``: its response to each unit
    impulse. Filtering an axis is then one matrix product, which BLAS runs far faster on a
    CPU than a convolution with a 1-pixel-high kernel."""
    return op(torch.eye(length, dtype=x.dtype, device=x.device))


def upsample2d(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """×2 as the reference's ``upfirdn2d.upsample2d``: zero insertion, padding (k+1)//2 and
    (k−2)//2, convolution with the filter, gain 4 (2 per axis)."""
    k = len(taps)
    weights = (taps * 2).tolist()
    crop = k - 1 - (k + 1) // 2

    def up(m: torch.Tensor) -> torch.Tensor:
        return _up_last(m, weights, crop)

    rows, cols = _axis_operator(up, x.shape[-2], x), _axis_operator(up, x.shape[-1], x)
    return rows.t() @ x @ cols


def downsample2d(x: torch.Tensor, taps: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """÷2 as the reference's ``upfirdn2d.downsample2d(..., flip_filter=True)``: pad (or crop),
    correlate with the filter, keep every second pixel."""
    k = len(taps)
    x = _crop_pad(x, padding + (k - 1) // 2, padding + (k - 2) // 2, padding + (k - 1) // 2, padding + (k - 2) // 2)
    weights = taps.tolist()

    def down(m: torch.Tensor) -> torch.Tensor:
        return _down_last(m, weights)

    rows, cols = _axis_operator(down, x.shape[-2], x), _axis_operator(down, x.shape[-1], x)
    return rows.t() @ x @ cols


def geometric_resample(images: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
    """Apply per-image inverse transforms ``inv`` (N×3×3, output → input, normalised [-1, 1]
    coordinates as ``F.affine_grid``) the way stylegan2-ada-pytorch's AugmentPipe does:
    reflect-pad enough that every sampled point has image content, ×2 upsampling with
    the sym6 filter, bilinear sampling at twice the resolution, ÷2 with the same filter."""
    n, c, h, w = images.shape
    dev = images.device
    taps = torch.tensor(SYM6, dtype=torch.float64, device=dev)
    taps = (taps / taps.sum()).to(torch.float32)
    # to pixel units about the image centre, the reference's coordinates
    to_pix = _scale2d(torch.full((n,), w / 2, device=dev), torch.full((n,), h / 2, device=dev))
    G = to_pix @ inv.float() @ torch.linalg.inv(to_pix)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=dev)
    cp = (G @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # 2 × (N·4): where the corners come from
    margin = torch.cat([-cp, cp]).max(dim=1).values  # x0, y0, x1, y1 beyond the centre
    margin = margin + torch.tensor([SYM6_PAD * 2 - cx, SYM6_PAD * 2 - cy] * 2, device=dev)
    margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, dtype=margin.dtype, device=dev))
    mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
    x = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    G = _translate2d(torch.full((n,), (mx0 - mx1) / 2, device=dev), torch.full((n,), (my0 - my1) / 2, device=dev)) @ G
    x = upsample2d(x, taps)
    two = torch.full((n,), 2.0, device=dev)
    G = _scale2d(two, two) @ G @ _scale2d(1 / two, 1 / two)
    half = torch.full((n,), -0.5, device=dev)
    G = _translate2d(half, half) @ G @ _translate2d(-half, -half)
    shape = [n, c, (h + SYM6_PAD * 2) * 2, (w + SYM6_PAD * 2) * 2]
    to_norm_in = _scale2d(torch.full((n,), 2 / x.shape[3], device=dev), torch.full((n,), 2 / x.shape[2], device=dev))
    from_norm_out = _scale2d(torch.full((n,), shape[3] / 2, device=dev), torch.full((n,), shape[2] / 2, device=dev))
    G = to_norm_in @ G @ from_norm_out
    grid = F.affine_grid(G[:, :2, :].to(x.dtype), shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2d(x, taps, padding=-SYM6_PAD * 2)


def _eye(n: int, batch: int, device) -> torch.Tensor:
    return torch.eye(n, device=device).expand(batch, n, n).clone()


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(3, len(tx), tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(3, len(sx), sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(3, len(theta), theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


class AugmentPipe(torch.nn.Module):
    """``pipe(images, generator)`` → augmented images of the same shape (N×C×H×W, C 1 or 3).

    ``p`` is a buffer (it travels with ``state_dict``), usually set by ``AdaController``."""

    def __init__(self, p: float = 0.0, geometric: bool = True, colour: bool = True):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.geometric, self.colour = geometric, colour

    def _gate(self, n: int, prob: torch.Tensor, gen: torch.Generator, device) -> torch.Tensor:
        """1 where an augmentation applies to image i (probability ``prob``), else 0."""
        return (torch.rand(n, device=device, generator=gen) < prob).float()

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p = float(self.p)
        if p <= 0:
            return images
        n, c, h, w = images.shape
        dev = images.device
        gen = generator
        pt = torch.tensor(p, device=dev)

        def rand(*shape):
            return torch.rand(shape, device=dev, generator=gen)

        def randn(*shape):
            return torch.randn(shape, device=dev, generator=gen)

        x = images
        if self.geometric:
            # the inverse transform (output pixel → input pixel), in normalised [-1, 1] coordinates
            inv = _eye(3, n, dev)
            g = self._gate(n, pt, gen, dev)
            flip = torch.floor(rand(n) * 2) * g
            inv = inv @ _scale2d(1 - 2 * flip, torch.ones(n, device=dev))
            g = self._gate(n, pt, gen, dev)
            quarter = torch.floor(rand(n) * 4) * g
            inv = inv @ _rotate2d(-math.pi / 2 * quarter)
            g = self._gate(n, pt, gen, dev)
            t = (rand(n, 2) * 2 - 1) * XINT_MAX * g[:, None]
            shift = torch.round(t * torch.tensor([w, h], device=dev)) * 2 / torch.tensor([w, h], device=dev)
            inv = inv @ _translate2d(-shift[:, 0], -shift[:, 1])
            g = self._gate(n, pt, gen, dev)
            s = torch.exp2(randn(n) * SCALE_STD * g)
            inv = inv @ _scale2d(1 / s, 1 / s)
            p_rot = 1 - math.sqrt(max(1 - p, 0.0))
            g = self._gate(n, torch.tensor(p_rot, device=dev), gen, dev)
            inv = inv @ _rotate2d(-(rand(n) * 2 - 1) * math.pi * ROTATE_MAX * g)
            g = self._gate(n, pt, gen, dev)
            s = torch.exp2(randn(n) * ANISO_STD * g)
            inv = inv @ _scale2d(1 / s, s)
            g = self._gate(n, torch.tensor(p_rot, device=dev), gen, dev)
            inv = inv @ _rotate2d(-(rand(n) * 2 - 1) * math.pi * ROTATE_MAX * g)
            g = self._gate(n, pt, gen, dev)
            t = randn(n, 2) * XFRAC_STD * 2 * g[:, None]  # fraction of the size → normalised units
            inv = inv @ _translate2d(-t[:, 0], -t[:, 1])
            x = geometric_resample(x, inv)
        if self.colour:
            m = _eye(4, n, dev)
            v = _LUMA.to(dev)
            vv = torch.outer(v, v)
            g = self._gate(n, pt, gen, dev)
            b = randn(n) * BRIGHTNESS_STD * g
            bright = _eye(4, n, dev)
            bright[:, :3, 3] = b[:, None]
            m = bright @ m
            g = self._gate(n, pt, gen, dev)
            cst = torch.exp2(randn(n) * CONTRAST_STD * g)
            contrast = _eye(4, n, dev)
            contrast[:, 0, 0] = contrast[:, 1, 1] = contrast[:, 2, 2] = cst
            m = contrast @ m
            if c == 3:
                g = self._gate(n, pt, gen, dev)
                flip = torch.floor(rand(n) * 2) * g
                m = (torch.eye(4, device=dev) - 2 * vv * flip[:, None, None]) @ m
                g = self._gate(n, pt, gen, dev)
                theta = (rand(n) * 2 - 1) * math.pi * HUE_MAX * g
                m = _rotate_about(v[:3], theta) @ m
                g = self._gate(n, pt, gen, dev)
                sat = torch.exp2(randn(n) * SATURATION_STD * g)
                m = (vv + (torch.eye(4, device=dev) - vv) * sat[:, None, None]) @ m
            m = m.to(x.dtype)
            flat = x.reshape(n, c, h * w)
            if c == 3:
                flat = m[:, :3, :3] @ flat + m[:, :3, 3:]
            else:  # grey images: the mean response of the three channels
                rows = m[:, :3, :].mean(dim=1, keepdim=True)
                flat = flat * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
            x = flat.reshape(n, c, h, w)
        return x


def _rotate_about(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """4×4 rotations by ``theta`` about the unit 3-vector ``axis`` (Rodrigues' formula)."""
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], device=theta.device)
    kk = torch.outer(axis, axis)
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    r = c * torch.eye(3, device=theta.device) + s * k + (1 - c) * kk
    m = _eye(4, len(theta), theta.device)
    m[:, :3, :3] = r
    return m


class AdaController:
    """Adjusts p every ``interval`` D steps from r_t, the mean of sign(D(real)) over the
    interval: p += sign(r_t − target) · (images in the interval) / (``speed_kimg``·1000),
    clipped to [0, 1], so p can go from 0 to 1 in ``speed_kimg`` thousand images. The sign
    sums stay on the device between adjustments (no per-step host sync)."""

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0):
        self.pipe, self.target, self.interval, self.speed_kimg = pipe, target, interval, speed_kimg
        self.acc = torch.zeros(2, dtype=torch.float64, device=pipe.p.device)  # Σ sign, count
        self.steps = 0
        self.last_rt = 0.0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record one batch of D(real) logits."""
        logits = real_logits.detach().double().flatten()
        self.acc = self.acc.to(logits.device)
        self.acc += torch.stack([torch.sign(logits).sum(), logits.new_tensor(float(logits.numel()))])

    def update(self, images_per_step: int, reduce=None) -> None:
        """Called once per D step; every ``interval`` steps moves p. ``reduce`` sums the
        accumulator across processes (DDP), so every process moves p the same way."""
        self.steps += 1
        if self.steps % self.interval:
            return
        acc = reduce(self.acc) if reduce is not None else self.acc
        sign_sum, count = acc.tolist()
        self.acc = torch.zeros_like(self.acc)
        if count == 0:
            return
        self.last_rt = sign_sum / count
        step = images_per_step * self.interval / (self.speed_kimg * 1000)
        adjust = 0.0 if self.last_rt == self.target else math.copysign(step, self.last_rt - self.target)
        self.pipe.p.fill_(max(float(self.pipe.p) + adjust, 0.0))  # clipped at 0 only, as the reference

    def state_dict(self) -> dict:
        return {"p": float(self.pipe.p), "acc": self.acc.cpu().clone(), "steps": self.steps, "last_rt": self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.pipe.p.fill_(float(state["p"]))
        self.acc = state["acc"].to(self.pipe.p.device, torch.float64)
        self.steps, self.last_rt = int(state["steps"]), float(state["last_rt"])
