"""PyTorch twins of the tinylang models, for the models benchmark only (bench/models.bench.ts).

Each twin has the tensors and the arithmetic of the zoology / tinylang / mamba_ssm / fla modules it mirrors
(state-dict.md, architectures.md), written the way those repos run it on CPU: FFT long convolutions (zoology
`fft_conv`), the masked quadratic views of attention and Based, mamba_ssm's `selective_scan_ref` loop, fla's naive
delta-rule recurrence. It is a timing reference, not a port to load checkpoints into.

usage: /usr/bin/python3 bench/torch_twin.py '<json: {"mixers": [...], "d": 64, "T": 37, "B": 32, "V": 8196,
        "layers": 2, "warmup": 3, "steps": 10[, "n_positions": 64, "h3_d_state": 64]}>'
        → one JSON line per mixer: {"mixer", "ms", "params"}
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


def fftconv(u, k):
    """Causal linear convolution along the last axis: u (..., C, L), k (C, L), FFT size 2L (zoology fft_conv)."""
    L = u.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]


class CausalConv1d(nn.Conv1d):
    """Depthwise causal Conv1d (padding K-1, first L outputs) on (B, L, C); a Conv1d subclass like fla's
    ShortConvolution, so its tensors are `.weight`/`.bias` directly."""

    def __init__(self, C, k, bias=True):
        super().__init__(C, C, k, groups=C, padding=k - 1, bias=bias)

    def forward(self, x):
        return super().forward(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


class ShortConvolution(nn.Module):
    """zoology's ShortConvolution wraps the Conv1d as `.conv` (hence `conv.conv.weight`)."""

    def __init__(self, C, k):
        super().__init__()
        self.conv = CausalConv1d(C, k)

    def forward(self, x):
        return self.conv(x)


def positional_z(l_max):
    """Hyena / ImplicitLongConvolution positional features (state-dict.md §7): [t, cos(f·w), −sin(f·w)], f = 1e-4."""
    t = torch.linspace(0, 1, l_max)[None, :, None]
    w = 2 * math.pi * torch.linspace(0, l_max - 1, l_max)[None, :, None] / l_max
    f = 1e-4
    return torch.cat([t, torch.cos(f * w), -torch.sin(f * w)], dim=-1), t  # (1, L, 3), (1, L, 1)


class Holder(nn.Module):
    """An empty module to place tensors under a key path (e.g. `pos_emb.z`)."""


class Norm(nn.Module):
    """RMSNorm (Mamba block, DeltaNet o_norm): x / sqrt(mean(x²) + eps) · weight, no bias."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class MHA(nn.Module):
    def __init__(self, d, heads=1):
        super().__init__()
        self.h = heads
        self.Wqkv = nn.Linear(d, 3 * d, bias=False)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        B, L, d = x.shape
        q, k, v = self.Wqkv(x).view(B, L, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        s = q @ k.transpose(-1, -2) / math.sqrt(d // self.h)
        s = s + torch.triu(torch.full((L, L), -10000.0), 1)
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, L, d)
        return self.out_proj(o)


class ImplicitLongConvolution(nn.Module):
    def __init__(self, d, l_max):
        super().__init__()
        self.pos_emb = Holder()
        self.pos_emb.z = nn.Parameter(positional_z(l_max)[0], requires_grad=False)
        self.mlp = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, d))

    def forward(self, u):
        L = u.shape[1]
        h = self.mlp(self.pos_emb.z[:, :L])[0].T  # (d, L)
        ut = u.transpose(1, 2)
        return (fftconv(ut, h) + ut).transpose(1, 2)  # fft_conv's own "+ u"


class BaseConv(nn.Module):
    def __init__(self, d, k, l_max):
        super().__init__()
        self.projection = nn.Linear(d, d)
        self.conv = ShortConvolution(d, k) if k >= 1 else ImplicitLongConvolution(d, l_max)

    def forward(self, u):
        return self.conv(u) * self.projection(u) + u


class Based(nn.Module):
    def __init__(self, d, f=8):
        super().__init__()
        self.f = f
        self.proj_q = nn.Linear(d, f, bias=False)
        self.proj_k = nn.Linear(d, f, bias=False)
        self.proj_v = nn.Linear(d, d, bias=False)
        self.proj_o = nn.Linear(d, d, bias=False)

    def phi(self, x):  # TaylorExp: [1, x/f^¼, vec(x xᵀ)/(√2·√f)]
        x2 = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2) / (math.sqrt(2) * math.sqrt(self.f))
        return torch.cat([torch.ones_like(x[..., :1]), x / self.f ** 0.25, x2], -1)

    def forward(self, u):
        L = u.shape[1]
        q, k, v = self.phi(self.proj_q(u)), self.phi(self.proj_k(u)), self.proj_v(u)
        a = torch.tril(q @ k.transpose(-1, -2))
        y = (a @ v) / (a.sum(-1, keepdim=True) + 1e-12)
        return self.proj_o(y)


class Hybrid(nn.Module):
    def __init__(self, mixer):
        super().__init__()
        self.mixer = mixer

    def forward(self, u):
        return self.mixer(u)


class Mamba(nn.Module):
    def __init__(self, d, d_state=16, d_conv=4, expand=2, dt_rank=None):
        super().__init__()
        E, R, S = expand * d, dt_rank or math.ceil(d / 16), d_state
        self.E, self.R, self.S, self.K = E, R, S, d_conv
        self.A_log = nn.Parameter(torch.log(torch.arange(1, S + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.in_proj = nn.Linear(d, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, d_conv or 4, groups=E, padding=(d_conv or 4) - 1)
        self.x_proj = nn.Linear(E, R + 2 * S, bias=False)
        self.dt_proj = nn.Linear(R, E)
        self.out_proj = nn.Linear(E, d, bias=False)

    def forward(self, u):
        B, L, _ = u.shape
        x, z = self.in_proj(u).chunk(2, -1)
        if self.K == 0:  # MambaWithoutConv: conv1d exists but is unused
            x = F.silu(x)
        else:
            x = F.silu(self.conv1d(x.transpose(1, 2))[..., :L]).transpose(1, 2)  # (B, L, E)
        dt, Bm, Cm = self.x_proj(x).split([self.R, self.S, self.S], -1)
        dt = F.softplus(self.dt_proj(dt))  # (B, L, E)
        A = -torch.exp(self.A_log)
        dA = torch.exp(dt.unsqueeze(-1) * A)  # (B, L, E, S)
        dBx = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)
        h = torch.zeros(B, self.E, self.S)
        ys = []
        # selective_scan_ref's loop, over unbound time slices: indexing dA[:, t] inside the loop would make autograd
        # scatter each step's gradient into a full (B, L, E, S) zero tensor, O(L²) work that no CPU user would accept.
        for dA_t, dBx_t, C_t in zip(dA.unbind(1), dBx.unbind(1), Cm.unbind(1)):
            h = dA_t * h + dBx_t
            ys.append((h * C_t.unsqueeze(1)).sum(-1))
        y = torch.stack(ys, 1) + self.D * x
        return self.out_proj(y * F.silu(z))


class DeltaNet(nn.Module):
    def __init__(self, d, heads=2, conv=4):
        super().__init__()
        self.h = heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.b_proj = nn.Linear(d, heads, bias=False)
        self.q_conv1d, self.k_conv1d, self.v_conv1d = (CausalConv1d(d, conv, bias=False) for _ in range(3))
        self.o_norm = Norm(d // heads)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, u):
        B, L, d = u.shape
        H, dh = self.h, d // self.h
        split = lambda t: t.view(B, L, H, dh).transpose(1, 2)  # (B, H, L, dh)
        q = split(F.silu(self.q_conv1d(self.q_proj(u))))
        k = split(F.silu(self.k_conv1d(self.k_proj(u))))
        v = split(F.silu(self.v_conv1d(self.v_proj(u))))
        q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6) / math.sqrt(dh)
        k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)
        beta = torch.sigmoid(self.b_proj(u)).transpose(1, 2)  # (B, H, L)
        S = torch.zeros(B, H, dh, dh)
        outs = []
        for qt, kt, vt, bt in zip(q.unbind(2), k.unbind(2), v.unbind(2), beta.unbind(2)):  # fla delta_rule_recurrence
            ut = bt.unsqueeze(-1) * (vt - (S * kt.unsqueeze(-1)).sum(-2))
            S = S + kt.unsqueeze(-1) * ut.unsqueeze(-2)
            outs.append((S * qt.unsqueeze(-1)).sum(-2))
        o = self.o_norm(torch.stack(outs, 2))  # (B, H, L, dh), RMSNorm per head
        return self.o_proj(o.transpose(1, 2).reshape(B, L, d))


class H3(nn.Module):
    """zoology H3 (head_dim 2), non-fast-fftconv path; SSKernelShift and SSKernelDiag (bilinear, real_type exp)."""

    def __init__(self, d, N):
        super().__init__()
        H, M = d // 2, N // 2
        self.d, self.H, self.N = d, H, N
        self.ssm_k_D = nn.Parameter(torch.randn(d))
        self.D = nn.Parameter(torch.randn(H))
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d) for _ in range(3))
        self.ssm_k_kernel = Holder()
        self.ssm_k_kernel.kernel = Holder()
        self.ssm_k_kernel.kernel.B = nn.Parameter(F.pad(torch.ones(d, 1), (0, N - 1)))
        self.ssm_k_kernel.kernel.C = nn.Parameter(torch.empty(1, d, N).uniform_(-1 / math.sqrt(N), 1 / math.sqrt(N)))
        self.kernel = Holder()
        kk = self.kernel.kernel = Holder()
        kk.C = nn.Parameter(torch.randn(1, H, M, 2) * math.sqrt(0.5))
        kk.log_dt = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))
        kk.B = nn.Parameter(torch.stack([torch.ones(H, M), torch.zeros(H, M)], -1))
        kk.inv_A_real = nn.Parameter(torch.full((H, M), math.log(0.5)))
        kk.A_imag = nn.Parameter(math.pi * torch.arange(M, dtype=torch.float32).repeat(H, 1))
        self.output_linear = nn.Linear(d, d)

    def kernels(self, L):
        sk, kk, N = self.ssm_k_kernel.kernel, self.kernel.kernel, self.N
        shift = torch.fft.irfft(torch.fft.rfft(sk.B, n=2 * N).conj() * torch.fft.rfft(sk.C, n=2 * N), n=2 * N)[..., : min(N, L)]
        if N < L:
            shift = F.pad(shift, (0, L - N))
        dt = torch.exp(kk.log_dt)[:, None]
        dtA = torch.complex(-torch.exp(kk.inv_A_real), kk.A_imag) * dt  # (H, M)
        C = torch.view_as_complex(kk.B.contiguous()) * torch.view_as_complex(kk.C.contiguous())[0] / (1 - dtA / 2) * dt
        dA = (1 + dtA / 2) / (1 - dtA / 2)
        vand = torch.exp(torch.log(dA).unsqueeze(-1) * torch.arange(L, dtype=torch.float32))  # (H, M, L)
        diag = 2 * (C.unsqueeze(-1) * vand).sum(1).real  # (H, L)
        return shift[0], diag

    def forward(self, u):
        B, L, d = u.shape
        H = self.H
        shift, diag = self.kernels(L)
        q, k, v = (p(u).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))  # (B, d, L)
        k = fftconv(k, shift) + self.ssm_k_D[:, None] * k
        kv = k.view(B, H, 2, L).permute(0, 2, 1, 3).unsqueeze(2) * v.view(B, H, 2, L).permute(0, 2, 1, 3).unsqueeze(1)  # (B, d1, d2, H, L)
        y = fftconv(kv, diag) + self.D[:, None] * kv
        y = (y * q.view(B, H, 2, L).permute(0, 2, 1, 3).unsqueeze(2)).sum(1)  # (B, d2, H, L): channel d2·H + h
        return self.output_linear(y.reshape(B, d, L).transpose(1, 2))


class Sin(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.freq = nn.Parameter(torch.ones(1, dim))

    def forward(self, x):
        return torch.sin(self.freq * x)


class Hyena(nn.Module):
    def __init__(self, d, l_max, order=64):
        super().__init__()
        self.d = d
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.short_filter = nn.Conv1d(3 * d, 3 * d, 3, groups=3 * d, padding=2)
        ff = self.filter_fn = Holder()
        ff.bias = nn.Parameter(torch.randn(d))
        z, t = positional_z(l_max)
        ff.pos_emb = Holder()
        ff.pos_emb.z = nn.Parameter(z)
        ff.pos_emb.register_buffer('t', t)
        act = Sin(order)  # one module at three positions: `.1.freq`, `.3.freq`, `.5.freq` alias one tensor
        ff.implicit_filter = nn.Sequential(nn.Linear(3, order), act, nn.Linear(order, order), act,
                                           nn.Linear(order, order), act, nn.Linear(order, d, bias=False))
        ff.modulation = Holder()
        ff.modulation.register_buffer('deltas', torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d)[None, None])

    def forward(self, u):
        B, L, d = u.shape
        x = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]  # (B, 3d, L)
        x1, x2, v = x.split(d, 1)
        ff = self.filter_fn
        h = ff.implicit_filter(ff.pos_emb.z[:, :L]) * torch.exp(-ff.pos_emb.t[:, :L] * ff.modulation.deltas.abs())  # (1, L, d)
        v = v * x1
        v = fftconv(v, h[0].T) + v * (0.0 * ff.bias)[:, None]  # tinylang: bias=False zeroes the D skip
        return self.out_proj((v * x2).transpose(1, 2))


class MLP(nn.Module):
    def __init__(self, d, mult=4):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, mult * d), nn.Linear(mult * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, d, mixer, mult=4):
        super().__init__()
        self.sequence_mixer = mixer
        self.state_mixer = MLP(d, mult)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, r):
        r = r + self.sequence_mixer(self.norm1(r))
        return r + self.state_mixer(self.norm2(r))


class MambaBlock(nn.Module):
    def __init__(self, d, mixer):
        super().__init__()
        self.sequence_mixer = mixer
        self.norm = Norm(d)

    def forward(self, r):
        return r + self.sequence_mixer(self.norm(r))


def make_mixer(c, layer):
    kind, d, P = c['mixer'], c['d_model'], c.get('n_positions') or 1024
    if kind == 'attention':
        return MHA(d, c.get('n_heads') or 1)
    if kind == 'base_conv':
        return BaseConv(d, c['d_conv'] if c.get('d_conv') is not None else [3, -1][layer % 2], P)
    if kind == 'based':
        k = c['d_conv'] if c.get('d_conv') is not None else 3
        return Hybrid(BaseConv(d, k, P) if layer % 2 == 0 else Based(d, c.get('feature_dim') or 8))
    if kind == 'mamba':
        return Mamba(d, c.get('d_state') or 16, 4 if c.get('d_conv') is None else c['d_conv'], c.get('expand') or 2, c.get('dt_rank'))
    if kind == 'delta_net':
        return DeltaNet(d, c.get('delta_heads') or 2, c['d_conv'] if c.get('d_conv') is not None else 4)
    if kind == 'h3':
        return H3(d, c.get('h3_d_state') or P)
    if kind == 'hyena':
        return Hyena(d, P, c.get('hyena_filter_order') or 64)
    raise ValueError(kind)


class LanguageModel(nn.Module):
    """tinylang's LanguageModel tree: `backbone.embeddings.{word,position}_embeddings`, `backbone.layers.{i}`,
    `backbone.ln_f`, and `lm_head` tied to the word embeddings (state-dict.md §4)."""

    def __init__(self, c):
        super().__init__()
        d, V = c['d_model'], c['vocab_size']
        P = c.get('n_positions') or 1024
        self.backbone = Holder()
        self.backbone.embeddings = Holder()
        self.backbone.embeddings.word_embeddings = nn.Embedding(V, d)
        if c.get('pos_emb'):
            self.backbone.embeddings.position_embeddings = nn.Embedding(P, d)
        mamba = c['mixer'] == 'mamba'
        self.backbone.layers = nn.ModuleList(
            MambaBlock(d, make_mixer(c, i)) if mamba else TransformerBlock(d, make_mixer(c, i), c.get('mlp_hidden_mult') or 4)
            for i in range(c['n_layers']))
        self.backbone.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, V, bias=False)
        self.lm_head.weight = self.backbone.embeddings.word_embeddings.weight

    def hidden(self, ids):
        emb = self.backbone.embeddings
        r = emb.word_embeddings(ids)
        if hasattr(emb, 'position_embeddings'):
            r = r + emb.position_embeddings.weight[: ids.shape[1]]
        for block in self.backbone.layers:
            r = block(r)
        return self.backbone.ln_f(r)

    def forward(self, ids, rows, positions):
        return self.lm_head(self.hidden(ids)[rows, positions])  # the head at one position per row


def loaded_blas():
    """The BLAS library this process actually mapped (Debian's python3-torch links libblas.so.3: reference or OpenBLAS)."""
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if 'blas' in line.lower() and '/' in line}
        return ', '.join(sorted(libs)) or 'unknown'
    except OSError:
        return 'unknown'


def main():
    a = json.loads(sys.argv[1])
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # make sure the BLAS is loaded before reporting it
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': loaded_blas()}), flush=True)
    d, T, B, V = a['d'], a['T'], a['B'], a['V']
    torch.manual_seed(0)
    ids = (torch.arange(B * T).view(B, T) * 7919) % (V - 3) + 3
    rows = torch.arange(B)
    positions = torch.full((B,), T - 3)
    target = (torch.arange(B) * 131) % (V - 3) + 3
    for kind in a['mixers']:
        cfg = {'mixer': kind, 'd_model': d, 'vocab_size': V, 'n_layers': a['layers'], 'pos_emb': kind == 'attention'}
        cfg.update({k: a[k] for k in ('n_positions', 'h3_d_state') if k in a})  # as the tfjs model has them
        model = LanguageModel(cfg)
        times = []
        for i in range(a['warmup'] + a['steps']):
            t0 = time.perf_counter()
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(ids, rows, positions), target)
            loss.backward()
            if i >= a['warmup']:
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({'mixer': kind, 'ms': times[len(times) // 2], 'params': params}), flush=True)


if __name__ == '__main__':
    main()
