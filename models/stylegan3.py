"""StyleGAN3, the alias-free generator (Karras et al. 2021, "Alias-free generative adversarial
networks"), for rendering NVlabs' StyleGAN3-T and StyleGAN3-R snapshots. No custom CUDA ops:
resampling is zero insertion plus FIR filtering with depthwise convolutions.

G = mapping ∘ synthesis. The mapping network is StyleGAN2's (``models.stylegan2``; 2 layers
in the paper's configs). Synthesis (paper Sec. 3 and Appendix F):
- Input: Fourier features of a spatially infinite map — sinusoids at frequencies inside the
  first layer's band, sampled on a grid with a margin, rotated and translated by a transform
  predicted from w — followed by a learned 1×1 mixing.
- Then ``num_layers`` layers and a toRGB. Each layer: a modulated convolution (3×3 for -T, 1×1
  for -R) whose input is divided by a running estimate of its magnitude, then the bias and a
  leaky ReLU applied at twice the sampling rate: ×up upsampling with a windowed-sinc low-pass,
  the nonlinearity (gain √2, clamp), ×down downsampling with the next band's low-pass (radially
  symmetric for -R). Cutoff, stopband and sampling rate grow geometrically from layer to layer
  (the last two layers critically sampled); channels are inversely proportional to the cutoff.
- The output is scaled by 0.25.

Loading an NVlabs snapshot takes its stored filters and magnitude estimates; a new network
designs its filters (Kaiser-windowed sinc, radially symmetric jinc for -R) and tracks the
magnitudes while training. ``ganeval train stylegan3 --cfg t|r`` trains it with StyleGAN2-ADA's
discriminator, losses, ADA, R1 and EMA (``models.stylegan2``)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.errors import BadInput
from ganeval.models.blocks import EqualLinear
from ganeval.models.stylegan2 import MappingNetwork


def fir_resample(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
                 padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative: crop), filter each channel with ``f`` (1-D:
    separable, rows then columns; 2-D: as is), keep every ``down``-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    if f is None:
        f = torch.ones(1, 1, device=x.device)
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)
    return x[:, :, ::down, ::down]


class FourierInput(nn.Module):
    """Fourier features in the first layer's band, transformed by w (rotation and translation)."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels, self.size = channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        # frequencies drawn inside the band with a density falling off with the radius; random phases
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualLinear(w_dim, 4)
        with torch.no_grad():  # identity transform at the start: no rotation, no translation
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty) of the inverse rotation and translation
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rot = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        shift = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rot @ shift @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]
        # fade out frequencies that the rotation pushes towards the Nyquist limit
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   padding: int, input_gain: torch.Tensor) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution as one grouped conv; the input is
    divided by its running magnitude through ``input_gain``."""
    n, cin = styles.shape
    cout, _, kh, kw = weight.shape
    if demodulate:  # pre-normalise for numerical range; demodulation cancels the scale
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.unsqueeze(1).unsqueeze(3).unsqueeze(4)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4)
    w = w * input_gain.expand(n, cin).unsqueeze(1).unsqueeze(3).unsqueeze(4)
    x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, cin, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, -1, *x.shape[2:])


class AliasFreeLayer(nn.Module):
    """Modulated conv, then bias + leaky ReLU between an upsampling and a downsampling low-pass."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, kernel: int, is_torgb: bool,
                 up: int, down: int, padding: list[int], up_taps: int, down_taps: int,
                 design: tuple[torch.Tensor | None, torch.Tensor | None], conv_clamp: float | None):
        super().__init__()
        self.is_torgb, self.kernel, self.up, self.down = is_torgb, kernel, up, down
        self.padding, self.conv_clamp, self.in_channels = tuple(padding), conv_clamp, in_channels
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones(()))
        self.magnitude_ema_beta = 0.999  # training sets NVlabs' rule for its batch
        self.register_buffer("up_filter", design[0] if up_taps > 1 else None)
        self.register_buffer("down_filter", design[1] if down_taps > 1 else None)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.training:  # the input magnitude the layer divides by, tracked as the paper's EMA
            with torch.no_grad():
                self.magnitude_ema.copy_(x.detach().float().square().mean().lerp(self.magnitude_ema,
                                                                                 self.magnitude_ema_beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / np.sqrt(self.in_channels * self.kernel ** 2)
        x = modulated_conv(x, self.weight, styles, not self.is_torgb, self.kernel - 1, self.magnitude_ema.rsqrt())
        x = x + self.bias.to(x.dtype)[None, :, None, None]
        x = fir_resample(x, self.up_filter, up=self.up, padding=self.padding, gain=self.up ** 2)
        if not self.is_torgb:
            x = F.leaky_relu(x, 0.2) * np.sqrt(2)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return fir_resample(x, self.down_filter, down=self.down)


def lowpass_filter(taps: int, cutoff: float, width: float, rate: float, radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass of ``taps`` taps (None for one tap): separable sinc (scipy's
    firwin) or, for StyleGAN3-R's downsampling, a radially symmetric jinc (paper, Appendix F)."""
    import scipy.signal
    import scipy.special

    if taps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=taps, cutoff=cutoff, width=width, fs=rate),
                               dtype=torch.float32)
    x = (np.arange(taps) - (taps - 1) / 2) / rate
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, width / (rate / 2)))
    window = np.kaiser(taps, beta)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


def layer_schedule(img_resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                   num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                   margin_size: int = 10) -> dict[str, np.ndarray]:
    """Per layer (input features first, toRGB last): cutoff f_c, stopband f_t, sampling rate s,
    transition half-width f_h, spatial size and channels (paper, Appendix F.1)."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return {"cutoffs": cutoffs, "rates": rates, "half_widths": half_widths, "sizes": sizes, "channels": channels}


class AliasFreeSynthesis(nn.Module):
    """ws (N×num_ws×w_dim) → image: the Fourier input takes ws[:, 0], layer i takes ws[:, i + 1]."""

    def __init__(self, output_scale: float):
        super().__init__()
        self.layer_names: list[str] = []
        self.output_scale = output_scale

    def add(self, name: str, layer: AliasFreeLayer) -> None:
        setattr(self, name, layer)
        self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", noise_generator: Any = None) -> torch.Tensor:
        x = self.input(ws[:, 0])
        for name, w in zip(self.layer_names, ws[:, 1:].unbind(1)):
            x = getattr(self, name)(x, w)
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(nn.Module):
    """``G(z, truncation_psi=1, c=None)`` → N×C×R×R images; ``mapping`` and ``synthesis`` as in StyleGAN2."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_layers: int = 2, channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14,
                 num_critical: int = 2, margin_size: int = 10, output_scale: float = 0.25, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2, use_radial_filters: bool = False,
                 conv_clamp: float | None = 256, **schedule: Any):
        super().__init__()
        # NVlabs' constructor arguments (networks_stylegan3.Generator), for ``export --nvlabs``
        self.init_kwargs = {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": img_resolution,
                            "img_channels": img_channels, "mapping_kwargs": {"num_layers": mapping_layers},
                            "channel_base": channel_base, "channel_max": channel_max, "num_layers": num_layers,
                            "num_critical": num_critical, "margin_size": margin_size, "output_scale": output_scale,
                            "conv_kernel": conv_kernel, "filter_size": filter_size,
                            "lrelu_upsampling": lrelu_upsampling, "use_radial_filters": use_radial_filters,
                            "conv_clamp": conv_clamp, **schedule}
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, c_dim=c_dim)
        s = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           margin_size=margin_size, **schedule)
        self.synthesis = AliasFreeSynthesis(output_scale)
        self.synthesis.input = FourierInput(w_dim, int(s["channels"][0]), int(s["sizes"][0]), s["rates"][0],
                                            s["cutoffs"][0])
        self.layer_names = []
        for i in range(num_layers + 1):
            prev, is_torgb = max(i - 1, 0), i == num_layers
            in_rate, out_rate = int(s["rates"][prev]), int(s["rates"][i])
            tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
            up, down = int(np.rint(tmp_rate / in_rate)), int(np.rint(tmp_rate / out_rate))
            up_taps = filter_size * up if up > 1 and not is_torgb else 1
            down_taps = filter_size * down if down > 1 and not is_torgb else 1
            kernel = 1 if is_torgb else conv_kernel
            in_size, out_size = int(s["sizes"][prev]), int(s["sizes"][i])
            radial = use_radial_filters and i < num_layers - num_critical
            design = (lowpass_filter(up_taps, s["cutoffs"][prev], s["half_widths"][prev] * 2, tmp_rate),
                      lowpass_filter(down_taps, s["cutoffs"][i], s["half_widths"][i] * 2, tmp_rate, radial))
            # pad so that the output lands on the symmetric sample positions (paper, Appendix C.3)
            total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
            lo = (total + up) // 2
            layer = AliasFreeLayer(w_dim, int(s["channels"][prev]), int(s["channels"][i]), kernel, is_torgb, up, down,
                                   [lo, total - lo, lo, total - lo], up_taps, down_taps, design, conv_clamp)
            self.synthesis.add(f"L{i}_{out_size}_{int(s['channels'][i])}", layer)

    def ws(self, z: torch.Tensor, truncation_psi: float = 1.0, c: torch.Tensor | None = None,
           truncation_cutoff: int | None = None) -> torch.Tensor:
        ws = self.mapping(z, 1.0, c=c)[:, None, :].repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = slice(0, self.num_ws if truncation_cutoff is None else int(truncation_cutoff))
            ws[:, cut] = self.mapping.w_avg.lerp(ws[:, cut], truncation_psi)
        return ws

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str | None = None,
                noise_generator: Any = None, c: torch.Tensor | None = None,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """StyleGAN3 has no noise inputs: ``noise_mode`` is accepted and has no effect."""
        return self.synthesis(self.ws(z, truncation_psi, c, truncation_cutoff))


def from_nvlabs(init_kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> StyleGAN3Generator:
    """A ``training.networks_stylegan3.Generator`` (configs stylegan3-t and stylegan3-r) rebuilt
    from its stored constructor arguments, with its tensors (filters and magnitudes included)."""
    kw = dict(init_kwargs)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    try:
        core = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    except KeyError as exc:
        raise BadInput(f"a StyleGAN3 generator without its constructor argument {exc}") from None
    known = {"channel_base", "channel_max", "num_layers", "num_critical", "margin_size", "output_scale",
             "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
             "first_cutoff", "first_stopband", "last_stopband_rel"}
    ignored = {"num_fp16_res", "magnitude_ema_beta"}  # float16 on CUDA only; a training setting
    unknown = sorted(set(kw) - known - ignored)
    if unknown:
        raise BadInput(f"StyleGAN3 argument(s) ganeval does not know: {', '.join(unknown)}")
    if mapping.get("lr_multiplier", 0.01) != 0.01:
        raise BadInput("a StyleGAN3 mapping network other than lr_multiplier 0.01")
    G = StyleGAN3Generator(**{k: int(v) for k, v in core.items()}, mapping_layers=int(mapping.get("num_layers", 2)),
                           **{k: v for k, v in kw.items() if k in known})
    ours: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.startswith("mapping.fc"):
            index, _, param = name[len("mapping.fc"):].partition(".")
            ours[f"mapping.net.{index}.{param}"] = value
        else:
            ours[name] = value
    expected = G.state_dict()
    missing, extra = sorted(set(expected) - set(ours)), sorted(set(ours) - set(expected))
    if missing or extra:
        raise BadInput(f"StyleGAN3 tensors do not match its arguments (missing {missing[:2]}, unexpected {extra[:2]})")
    for name, value in ours.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise BadInput(f"{name}: shape {tuple(value.shape)} in the file, {tuple(expected[name].shape)} expected")
    G.load_state_dict({k: v.float() for k, v in ours.items()}, strict=True)
    return G.eval().requires_grad_(False)


# ---------------------------------------------------------------------- the zoo family

CFGS = {"t": dict(channel_base=32768, channel_max=512, conv_kernel=3, radial=False, blur_sigma=0.0),
        "r": dict(channel_base=65536, channel_max=1024, conv_kernel=1, radial=True, blur_sigma=10.0)}


def stylegan3_options(resolution: int, given: dict[str, Any]) -> dict[str, Any]:
    """StyleGAN2-ADA's options (one validator) with NVlabs' StyleGAN3 configs: ``cfg`` t or r sets
    channel_base/channel_max (32768/512, 65536/1024), 2 mapping layers, no path-length or
    style-mixing regularisation (as NVlabs' stylegan3 configs), and for R the blur of D's inputs
    (σ 10 px fading out over batch·200/32 thousand images, as the paper's config R); explicit
    values win."""
    from ganeval.models.stylegan2 import stylegan2_options

    given = dict(given)
    cfg = str(given.pop("cfg", "t"))
    if cfg not in CFGS:
        raise BadInput(f"stylegan3 option cfg must be t or r, got {cfg!r}")
    spec = CFGS[cfg]
    defaults = {"channel_base": spec["channel_base"], "channel_max": spec["channel_max"], "mapping_layers": 2,
                "pl_weight": 0.0, "style_mixing": 0.0, "blur_sigma": spec["blur_sigma"]}
    out = stylegan2_options(resolution, {**{k: v for k, v in defaults.items() if given.get(k) is None}, **given,
                                         "cfg": "auto"})
    out["cfg"] = cfg
    return out


def build(cfg_model: Any) -> tuple[nn.Module, nn.Module]:
    from ganeval.models.stylegan2 import StyleGAN2Discriminator

    o = cfg_model.options
    spec = CFGS[o["cfg"]]
    G = StyleGAN3Generator(cfg_model.z_dim, 0, o["w_dim"] or cfg_model.z_dim, cfg_model.resolution, cfg_model.channels,
                           mapping_layers=o["mapping_layers"], channel_base=o["channel_base"],
                           channel_max=o["channel_max"], conv_kernel=spec["conv_kernel"],
                           use_radial_filters=spec["radial"], conv_clamp=o.get("conv_clamp") or None)
    G.mapping.w_avg_beta = 0.998  # NVlabs' StyleGAN3 mapping
    shrink = 2 if spec["radial"] else 1  # D as in NVlabs' configs: -R doubles G's width only
    D = StyleGAN2Discriminator(cfg_model.channels, cfg_model.resolution, o["channel_base"] // shrink,
                               o["channel_max"] // shrink, o["mbstd_group"])
    return G, D


def _objective(spec, G: nn.Module, D: nn.Module):
    """StyleGAN2-ADA's objective, with G's magnitude estimates on NVlabs' half-life of 20 thousand
    images (β = ½^(batch / 20000), the batch over all processes)."""
    from ganeval.models.stylegan2 import StyleGAN2Objective

    objective = StyleGAN2Objective(spec, G, D)
    beta = 0.5 ** (objective._images_per_step() / 20_000)
    for module in G.modules():
        if hasattr(module, "magnitude_ema_beta"):
            module.magnitude_ema_beta = beta
    return objective


def _family():
    from ganeval.models.spec import Family

    return Family(
        name="stylegan3",
        summary="StyleGAN3 (alias-free): Fourier input, filtered nonlinearities, --cfg t or r; "
                "StyleGAN2-ADA's D, losses, ADA, R1 and EMA",
        build=build, lr_g=0.0025, lr_d=0.002, betas=(0.0, 0.99), z_dim=512, width=None,
        width_option="channel_max", batch_size=32, resolutions=(32, 64, 128, 256, 512),
        objective=_objective, options=stylegan3_options,
        reference="Karras et al. Alias-free generative adversarial networks (2021)")


STYLEGAN3 = _family()
