"""Mamba (v1) selective state-space mixer in plain PyTorch, with the published parameter names.

Parameter layout of one mixer (model width ``H``, inner width ``I = expand·H``, state ``N``, kernel ``W``,
``R = dt_rank``), as in ``mamba_ssm.modules.mamba_simple.Mamba``::

    in_proj.weight   (2I, H)    x and the gate z      conv1d.weight (I, 1, W), conv1d.bias (I,)
    x_proj.weight    (R+2N, I)  dt, B, C from x       dt_proj.weight (I, R), dt_proj.bias (I,)
    A_log            (I, N)     A = -exp(A_log)       D (I,)   skip
    out_proj.weight  (H, I)

Per position ``t`` and channel ``d``: ``x = silu(causal_conv(x))``, ``Δ = softplus(dt_proj(dt))``,
``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t``, ``y_t = C_t·h_t + D x_t``, output ``out_proj(y ⊙ silu(z))``.

The scan runs in chunks: within a chunk a log-depth (Hillis-Steele) scan of the linear recurrence (with a
hand-written backward, the same scan in reverse), between chunks a carried state. Under autograd, for long
inputs each chunk is recomputed in the backward pass (activation checkpointing), so memory grows with ``L·I``
like the rest of the layer, not with ``L·I·N``. When the
``mamba-ssm`` package is installed and the tensors are on a GPU, its fused CUDA kernels compute the same thing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

try:  # optional CUDA kernels of the Mamba authors (GPU only)
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_selective_scan
except ImportError:  # pragma: no cover - depends on the environment
    _cuda_selective_scan = None
try:
    from causal_conv1d import causal_conv1d_fn as _cuda_causal_conv1d
except ImportError:  # pragma: no cover - depends on the environment
    _cuda_causal_conv1d = None

# Elements of one chunk's (B, T, I, N) intermediates: small enough to stay in a CPU's L2/L3 cache (elementwise
# ops on tensors that spill to memory ran ~10x slower per element here), with T between 16 and 256 positions
# so the per-chunk Python overhead stays amortised.
CHUNK_ELEMENTS = 2**18
# Under autograd, chunks are recomputed in the backward pass once the (B, L, I, N) states of a whole sequence
# would exceed this many elements (4 MiB in float32; a few such tensors are kept per chunk); below it, keeping
# them is cheaper than recomputing.
RECOMPUTE_ABOVE = 2**20


def kernels_available_anywhere() -> bool:
    """Whether the ``mamba-ssm`` CUDA selective scan is installed (it runs only on CUDA tensors)."""
    return _cuda_selective_scan is not None


def kernels_available(device: torch.device) -> bool:
    """Whether the ``mamba-ssm`` CUDA selective scan can run on ``device``."""
    return _cuda_selective_scan is not None and device.type == "cuda"


def _doubling_scan(decay: torch.Tensor, inputs: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """``h_t = decay_t h_{t-1} + inputs_t`` from ``h_{-1} = 0`` along dim 1 (``reverse``: ``h_t = decay_t h_{t+1}
    + inputs_t`` from the end), without autograd.

    Hillis-Steele doubling: log2(T) steps, each multiplying decays in (0, 1], so nothing overflows however
    strongly the state decays (a division by a running product of decays would).
    """
    decay, states = decay.clone(), inputs.clone()
    length, step = decay.shape[1], 1
    while step < length:
        late, early = slice(step, None), slice(None, -step)
        target, source = (early, late) if reverse else (late, early)
        states[:, target] += decay[:, target] * states[:, source]  # the product is formed before the add
        if 2 * step < length:
            decay[:, target] = decay[:, target] * decay[:, source]
        step *= 2
    return states


class _LinearRecurrence(torch.autograd.Function):
    """All states of ``h_t = decay_t h_{t-1} + inputs_t`` (from ``initial``), with a hand-written backward.

    The backward is the same recurrence run in reverse (``λ_t = g_t + decay_{t+1} λ_{t+1}``), so it costs one
    more scan instead of autograd's record of every doubling step.
    """

    @staticmethod
    def forward(ctx: Any, decay: torch.Tensor, inputs: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        first = inputs[:, :1] + decay[:, :1] * initial.unsqueeze(1)
        states = _doubling_scan(decay, torch.cat([first, inputs[:, 1:]], dim=1))
        ctx.save_for_backward(decay, states, initial)
        return states

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        decay, states, initial = ctx.saved_tensors
        later = torch.cat([decay[:, 1:], torch.zeros_like(decay[:, :1])], dim=1)
        adjoint = _doubling_scan(later, grad, reverse=True)
        previous = torch.cat([initial.unsqueeze(1), states[:, :-1]], dim=1)
        return adjoint * previous, adjoint, decay[:, 0] * adjoint[:, 0]


def _scan_chunk(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk: u, delta (b, t, I); A (I, N); B, C (b, t, N); state (b, I, N) -> y (b, t, I), last state."""
    decay = torch.exp(delta.unsqueeze(-1) * A)
    inputs = (delta * u).unsqueeze(-1) * B.unsqueeze(2)
    states = _LinearRecurrence.apply(decay, inputs, state)
    y = torch.einsum("btin,btn->bti", states, C)
    return y, states[:, -1]


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Mamba's selective scan with softplus on ``delta``; channels-last layout.

    ``u``, ``delta``, ``z``: (batch, length, I); ``A``: (I, N); ``B``, ``C``: (batch, length, N); ``D``,
    ``delta_bias``: (I,). Computed in float32 like the authors' kernels; returns (batch, length, I) in ``u``'s
    dtype. The same maths as ``selective_scan_ref`` in ``mamba_ssm``, evaluated chunk by chunk.
    """
    dtype = u.dtype
    if chunk_size is None:  # a GPU has no cache to fit; there fewer, longer chunks mean fewer kernel launches
        chunk_size = 256 if u.is_cuda else max(16, min(256, CHUNK_ELEMENTS // (u.shape[0] * A.numel())))
    u, delta = u.float(), delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()
    delta = F.softplus(delta)
    A, B, C = A.float(), B.float(), C.float()
    state = u.new_zeros(u.shape[0], A.shape[0], A.shape[1])
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    recompute = needs_grad and u.shape[0] * u.shape[1] * A.numel() > RECOMPUTE_ABOVE
    outputs = []
    # split, not slicing in a loop: the backward of a split is one concatenation, while each slice's backward
    # would write its gradient into a zero tensor of the whole length (quadratic in the length)
    pieces = zip(*(t.split(chunk_size, dim=1) for t in (u, delta, B, C)), strict=True)
    for u_part, delta_part, B_part, C_part in pieces:
        args = (u_part, delta_part, A, B_part, C_part, state)
        if recompute:
            y, state = checkpoint(_scan_chunk, *args, use_reentrant=False)
        else:
            y, state = _scan_chunk(*args)
        outputs.append(y)
    y = torch.cat(outputs, dim=1)
    if D is not None:
        y = y + u * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def _kernel_selective_scan(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor, z: torch.Tensor, delta_bias: torch.Tensor | None,
) -> torch.Tensor:
    """The ``mamba-ssm`` CUDA kernel on channels-last tensors (it wants (batch, channels, length))."""
    assert _cuda_selective_scan is not None
    y = _cuda_selective_scan(
        u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), D.float(),
        z=z.transpose(1, 2), delta_bias=None if delta_bias is None else delta_bias.float(), delta_softplus=True,
    )
    return y.transpose(1, 2)


def causal_conv1d_silu(x: torch.Tensor, conv: nn.Conv1d, use_kernels: bool) -> torch.Tensor:
    """Depthwise causal convolution then SiLU on (batch, length, channels); zeros before the first position."""
    if use_kernels and _cuda_causal_conv1d is not None and x.is_cuda:
        out = _cuda_causal_conv1d(x.transpose(1, 2), conv.weight.squeeze(1), conv.bias, activation="silu")
        return out.transpose(1, 2)
    length = x.shape[1]
    out = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias, padding=conv.weight.shape[-1] - 1,
                   groups=conv.weight.shape[0])
    return F.silu(out[..., :length]).transpose(1, 2)


class MambaMixer(nn.Module):
    """One Mamba (v1) mixer. ``projections=False`` leaves out ``in_proj``/``out_proj`` (shared with a twin).

    Args mirror ``ssm_cfg`` of the published configs; the ``dt_*`` initialisation ranges only matter for
    freshly initialised weights. ``use_fast_path`` allows the ``mamba-ssm`` CUDA kernels when installed.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        use_fast_path: bool = True,
        projections: bool = True,
        **unused: Any,
    ) -> None:
        super().__init__()
        if dt_init not in ("random", "constant"):
            raise ValueError(f"ssm_cfg.dt_init must be 'random' or 'constant', got {dt_init!r}")
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.dt_min, self.dt_max, self.dt_init_floor = dt_min, dt_max, dt_init_floor
        self.dt_init, self.dt_scale = dt_init, dt_scale
        self.use_fast_path = use_fast_path
        if projections:
            self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
            self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(self.initial_A_log())
        self.D = nn.Parameter(torch.ones(self.d_inner))

    def initial_A_log(self) -> torch.Tensor:
        """S4D-real initialisation: ``A = -(1, 2, ..., N)`` for every channel."""
        return torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1)

    def initial_dt_bias(self) -> torch.Tensor:
        """Inverse softplus of time steps drawn log-uniformly in ``[dt_min, dt_max]``."""
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(self.dt_max) - math.log(self.dt_min))
                       + math.log(self.dt_min)).clamp(min=self.dt_init_floor)
        return dt + torch.log(-torch.expm1(-dt))

    def ssm(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The gated SSM on the two halves of ``in_proj``'s output: (batch, length, I) each -> (batch, length, I)."""
        use_kernels = self.use_fast_path and kernels_available(x.device)
        x = causal_conv1d_silu(x, self.conv1d, use_kernels)
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight)  # the bias goes in inside the scan, in float32
        A = -torch.exp(self.A_log.float())
        if use_kernels:
            return _kernel_selective_scan(x, delta, A, B, C, self.D, z, self.dt_proj.bias)
        return selective_scan(x, delta, A, B, C, self.D, z, self.dt_proj.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, length, H) -> (batch, length, H); needs its own projections."""
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        return self.out_proj(self.ssm(x, z))
