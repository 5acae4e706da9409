"""PyTorch twins of the tinylang models, for the models benchmark only (bench/models.bench.ts).

Each twin has the tensors and the arithmetic of the zoology / tinylang / mamba_ssm / fla modules it mirrors
(state-dict.md, architectures.md), written the way those repos run it on CPU: FFT long convolutions (zoology
`fft_conv`), the masked quadratic views of attention and Based, mamba_ssm's `selective_scan_ref` loop, fla's naive
delta-rule recurrence. It is a timing reference, not a port to load checkpoints into.

usage: /usr/bin/python3 bench/torch_twin.py '<json: {"mixers": [...], "d": 64, "T": 37, "B": 32, "V": 8196,
        "layers": 2, "warmup": 3, "steps": 10}>'     → one JSON line per mixer: {"mixer", "ms", "params"}
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


class ShortConv(nn.Module):
    """Depthwise causal Conv1d, PyTorch padding K-1 then the first L outputs. x: (B, L, C)."""

    def __init__(self, C, k, bias=True):
        super().__init__()
        self.conv = nn.Conv1d(C, C, k, groups=C, padding=k - 1, bias=bias)

    def forward(self, x):
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


def positional_z(l_max):
    t = torch.linspace(0, 1, l_max)[None, :, None]
    w = 2 * math.pi * torch.arange(l_max)[None, :, None] / l_max
    f = 1e-4
    return torch.cat([t, torch.cos(f * w), -torch.sin(f * w)], dim=-1), t  # (1, L, 3), (1, L, 1)


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


class BaseConv(nn.Module):
    def __init__(self, d, k, l_max):
        super().__init__()
        self.k = k
        self.projection = nn.Linear(d, d)
        if k >= 1:
            self.conv = ShortConv(d, k)
        else:
            self.conv = nn.Module()
            z, _ = positional_z(l_max)
            self.conv.pos_emb_z = nn.Parameter(z, requires_grad=False)
            self.conv.mlp = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, d))

    def forward(self, u):
        if self.k >= 1:
            c = self.conv(u)
        else:
            L = u.shape[1]
            h = self.conv.mlp(self.conv.pos_emb_z[:, :L])[0].T  # (d, L)
            ut = u.transpose(1, 2)
            c = (fftconv(ut, h) + ut).transpose(1, 2)
        return c * self.projection(u) + u


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
        a = (q @ k.transpose(-1, -2)) * torch.tril(torch.ones(L, L))
        y = (a @ v) / (a.sum(-1, keepdim=True) + 1e-12)
        return self.proj_o(y)


class Mamba(nn.Module):
    def __init__(self, d, d_state=16, d_conv=4, expand=2):
        super().__init__()
        E, R, S = expand * d, math.ceil(d / 16), d_state
        self.E, self.R, self.S = E, R, S
        self.A_log = nn.Parameter(torch.log(torch.arange(1, S + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.in_proj = nn.Linear(d, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1)
        self.x_proj = nn.Linear(E, R + 2 * S, bias=False)
        self.dt_proj = nn.Linear(R, E)
        self.out_proj = nn.Linear(E, d, bias=False)

    def forward(self, u):
        B, L, _ = u.shape
        x, z = self.in_proj(u).chunk(2, -1)
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
        self.q_conv1d, self.k_conv1d, self.v_conv1d = (ShortConv(d, conv, bias=False) for _ in range(3))
        self.o_norm = nn.Parameter(torch.ones(d // heads))
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
        o = torch.stack(outs, 2)  # (B, H, L, dh)
        o = o * torch.rsqrt((o * o).mean(-1, keepdim=True) + 1e-5) * self.o_norm
        return self.o_proj(o.transpose(1, 2).reshape(B, L, d))


class H3(nn.Module):
    def __init__(self, d, N):
        super().__init__()
        H, M = d // 2, N // 2
        self.d, self.H = d, H
        self.ssm_k_D = nn.Parameter(torch.randn(d))
        self.D = nn.Parameter(torch.randn(H))
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d) for _ in range(3))
        self.shift_B = nn.Parameter(F.pad(torch.ones(d, 1), (0, N - 1)))
        self.shift_C = nn.Parameter(torch.empty(1, d, N).uniform_(-1 / math.sqrt(N), 1 / math.sqrt(N)))
        self.C = nn.Parameter(torch.randn(1, H, M, 2) * math.sqrt(0.5))
        self.log_dt = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))
        self.B = nn.Parameter(torch.stack([torch.ones(H, M), torch.zeros(H, M)], -1))
        self.inv_A_real = nn.Parameter(torch.full((H, M), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(M, dtype=torch.float32).repeat(H, 1))
        self.output_linear = nn.Linear(d, d)

    def kernels(self, L):
        N = self.shift_B.shape[1]
        n = 2 * N
        shift = torch.fft.irfft(torch.conj(torch.fft.rfft(self.shift_B, n=n)) * torch.fft.rfft(self.shift_C[0], n=n), n=n)[:, :L]
        dt = torch.exp(self.log_dt)[:, None]
        A = torch.complex(-torch.exp(self.inv_A_real), self.A_imag) * dt  # (H, M)
        lam = (1 + A / 2) / (1 - A / 2)
        Ct = torch.view_as_complex(self.C[0]) * torch.view_as_complex(self.B) * dt / (1 - A / 2)
        ls = torch.arange(L, dtype=torch.float32)
        vand = torch.exp(torch.log(lam).unsqueeze(-1) * ls)  # (H, M, L)
        diag = 2 * torch.einsum('hm,hml->hl', Ct, vand).real
        return shift, diag

    def forward(self, u):
        B, L, d = u.shape
        H = self.H
        shift, diag = self.kernels(L)
        q, k, v = (p(u).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))  # (B, d, L)
        k = fftconv(k, shift) + self.ssm_k_D[:, None] * k
        kv = k.view(B, H, 2, 1, L) * v.view(B, H, 1, 2, L)  # (B, H, i, j, L)
        kv = kv.permute(0, 2, 3, 1, 4)  # (B, i, j, H, L)
        y = fftconv(kv, diag) + self.D[:, None] * kv
        out = (q.view(B, H, 2, L).permute(0, 2, 1, 3).unsqueeze(2) * y).sum(1)  # (B, j, H, L): channel j·H + h
        return self.output_linear(out.reshape(B, d, L).transpose(1, 2))


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
        self.filter_fn = nn.Module()
        self.filter_fn.bias = nn.Parameter(torch.randn(d))
        z, t = positional_z(l_max)
        self.filter_fn.z = nn.Parameter(z)
        self.filter_fn.register_buffer('t', t)
        act = Sin(order)
        self.filter_fn.implicit_filter = nn.Sequential(nn.Linear(3, order), act, nn.Linear(order, order), act,
                                                       nn.Linear(order, order), act, nn.Linear(order, d, bias=False))
        self.filter_fn.register_buffer('deltas', torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d)[None, None])

    def forward(self, u):
        B, L, d = u.shape
        x = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]  # (B, 3d, L)
        x1, x2, v = x.split(d, 1)
        ff = self.filter_fn
        h = ff.implicit_filter(ff.z[:, :L]) * torch.exp(-ff.t[:, :L] * ff.deltas.abs())  # (1, L, d)
        v = fftconv(v * x1, h[0].T) + v * x1 * ff.bias[:, None] * 0.0  # tinylang: bias=False zeroes the D skip
        return self.out_proj((v * x2).transpose(1, 2))


class MLP(nn.Module):
    def __init__(self, d, mult=4):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, mult * d), nn.Linear(mult * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d, mixer, mamba):
        super().__init__()
        self.mamba = mamba
        self.sequence_mixer = mixer
        if mamba:
            self.norm = nn.Parameter(torch.ones(d))
        else:
            self.state_mixer = MLP(d)
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, r):
        if self.mamba:
            return r + self.sequence_mixer(r * torch.rsqrt((r * r).mean(-1, keepdim=True) + 1e-5) * self.norm)
        r = r + self.sequence_mixer(self.norm1(r))
        return r + self.state_mixer(self.norm2(r))


def make_mixer(kind, d, layer, P):
    if kind == 'attention':
        return MHA(d)
    if kind == 'base_conv':
        return BaseConv(d, [3, -1][layer % 2], P)
    if kind == 'based':
        return BaseConv(d, 3, P) if layer % 2 == 0 else Based(d)
    if kind == 'mamba':
        return Mamba(d)
    if kind == 'delta_net':
        return DeltaNet(d)
    if kind == 'h3':
        return H3(d, P)
    if kind == 'hyena':
        return Hyena(d, P)
    raise ValueError(kind)


class LM(nn.Module):
    def __init__(self, kind, d, V, layers, pos_emb, P=1024):
        super().__init__()
        self.wte = nn.Embedding(V, d)
        self.wpe = nn.Embedding(P, d) if pos_emb else None
        self.layers = nn.ModuleList(Block(d, make_mixer(kind, d, i, P), kind == 'mamba') for i in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids, rows, positions):
        r = self.wte(ids)
        if self.wpe is not None:
            r = r + self.wpe.weight[: ids.shape[1]]
        for block in self.layers:
            r = block(r)
        h = self.ln_f(r)[rows, positions]  # the head at one position per row
        return h @ self.wte.weight.T


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
        model = LM(kind, d, V, a['layers'], kind == 'attention')
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
