"""Performer: FAVOR+ attention (Choromanski et al., 2020) and a small pre-LayerNorm encoder built on it.

FAVOR+ approximates softmax attention ``softmax(q k^T / sqrt(d)) v`` in time linear in the length: with
``x' = x / d^(1/4)`` and ``M`` random rows ``w_i`` (blocks of orthogonal directions, each row scaled to the
norm of a Gaussian vector), the positive features

    phi(x)_i = exp(w_i . x' - |x'|^2 / 2) / sqrt(M)

give ``E[phi(q) . phi(k)] = exp(q . k / sqrt(d))``, so ``attention ~ D^-1 phi(Q) (phi(K)^T V)`` with
``D = diag(phi(Q) phi(K)^T 1)``. Constant shifts of the exponent (the max per query, the max over all keys)
cancel in ``D^-1`` and keep ``exp`` in range. Padding keys get zero features, so they add nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyramid_bert.errors import ConfigError

FEATURE_EPSILON = 1e-6


def orthogonal_gaussian_projection(
    num_features: int, dim: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[num_features, dim]`` random rows: orthonormal within each block of ``dim`` rows (QR of a Gaussian
    matrix), every row rescaled to the norm of an independent ``N(0, I_dim)`` vector, so each row is marginally
    Gaussian (unbiased estimator) while rows of a block are exactly orthogonal (lower variance)."""
    if num_features < 1 or dim < 1:
        raise ConfigError(f"num_features and dim must be >= 1, got {num_features} and {dim}")
    block_count = math.ceil(num_features / dim)
    gaussian = torch.randn(block_count, dim, dim, generator=generator, dtype=torch.float64)
    orthonormal, upper = torch.linalg.qr(gaussian)  # batched over blocks
    # signs of R's diagonal make Q uniformly (Haar) distributed; LAPACK's raw Q is not
    orthonormal = orthonormal * torch.sign(torch.diagonal(upper, dim1=-2, dim2=-1))[:, None, :]
    rows = orthonormal.transpose(1, 2).reshape(block_count * dim, dim)[:num_features]  # rows orthonormal per block
    norms = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (rows * norms).float()


def positive_random_features(
    x: torch.Tensor, projection: torch.Tensor, *, is_query: bool, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """FAVOR+ features ``[B, H, N, M]`` of queries or keys ``x [B, H, N, d]`` with ``projection [M, d]``.

    Queries are shifted by their own max (per query row); keys by the max over all real keys of an example and
    head; both shifts cancel in the normalisation. ``mask`` (bool ``[B, N]``, keys only) zeroes padding keys.
    """
    dim = x.shape[-1]
    x = x * dim**-0.25
    logits = torch.einsum("bhnd,md->bhnm", x, projection.to(x.dtype))
    logits = logits - 0.5 * (x * x).sum(dim=-1, keepdim=True)
    if is_query:
        shift = logits.amax(dim=-1, keepdim=True)
    else:
        masked = logits if mask is None else logits.masked_fill(~mask[:, None, :, None], -math.inf)
        shift = masked.amax(dim=(-2, -1), keepdim=True)
    features = (torch.exp(logits - shift.detach()) + FEATURE_EPSILON) / math.sqrt(projection.shape[0])
    if mask is not None and not is_query:
        features = features * mask[:, None, :, None].to(features.dtype)
    return features


def favor_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    projection: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """FAVOR+ bidirectional attention: ``q, k, v [B, H, N, d]``, ``projection [M, d]``, ``mask`` bool ``[B, N]``
    (True = real key) -> ``[B, H, N, d]``; time and memory linear in ``N``."""
    query_features = positive_random_features(query, projection, is_query=True)
    key_features = positive_random_features(key, projection, is_query=False, mask=mask)
    key_value = torch.einsum("bhnm,bhnd->bhmd", key_features, value)  # [B, H, M, d]
    normaliser = torch.einsum("bhnm,bhm->bhn", query_features, key_features.sum(dim=2))  # [B, H, N]
    return torch.einsum("bhnm,bhmd->bhnd", query_features, key_value) / normaliser[..., None]


def softmax_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact softmax attention ``softmax(q k^T / sqrt(d)) v`` (the reference FAVOR+ approximates);
    shapes as in :func:`favor_attention`."""
    scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], -math.inf)
    return scores.softmax(dim=-1) @ value


class FavorSelfAttention(nn.Module):
    """Multi-head self-attention with FAVOR+: ``(hidden [B, N, D], mask bool [B, N]) -> [B, N, D]``.

    The random projection (``num_features x head_dim``) is a buffer drawn from ``seed``; :meth:`redraw` draws a
    new one (the Performer paper redraws during training; our runs keep it fixed, for determinism).
    """

    def __init__(self, hidden: int, heads: int, num_features: int, *, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        if hidden % heads != 0:
            raise ConfigError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.head_dim = hidden // heads
        self.num_features = num_features
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("projection", torch.empty(num_features, self.head_dim))
        self.redraw(seed)

    def redraw(self, seed: int) -> None:
        """Draw a new random projection from ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        self.projection.copy_(orthogonal_gaussian_projection(self.num_features, self.head_dim, generator))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = hidden.shape
        qkv = self.qkv(hidden).view(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        context = favor_attention(qkv[0], qkv[1], qkv[2], self.projection, mask)  # [B, H, N, d]
        return self.dropout(self.out(context.transpose(1, 2).reshape(batch, tokens, width)))


class PerformerLayer(nn.Module):
    """Pre-LayerNorm encoder layer (as in LRA's encoders): ``x + Attn(LN(x))``, then ``x + FFN(LN(x))``."""

    def __init__(self, hidden: int, heads: int, intermediate: int, num_features: int, *, dropout: float, seed: int):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden)
        self.attention = FavorSelfAttention(hidden, heads, num_features, dropout=dropout, seed=seed)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, intermediate),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(intermediate, hidden),
            nn.Dropout(dropout),
        )

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``hidden [B, N, D]``, ``mask`` bool ``[B, N]`` -> ``[B, N, D]``."""
        hidden = hidden + self.attention(self.attention_norm(hidden), mask)
        return hidden + self.ffn(self.ffn_norm(hidden))


class PerformerEncoder(nn.Module):
    """``num_layers`` :class:`PerformerLayer` and a final LayerNorm: ``(hidden [B, N, D], mask [B, N]) -> [B, N, D]``.

    Layer ``i`` draws its random projection from seed ``seed + i``.
    """

    def __init__(
        self,
        hidden: int,
        heads: int,
        intermediate: int,
        num_layers: int,
        num_features: int,
        *,
        dropout: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            PerformerLayer(hidden, heads, intermediate, num_features, dropout=dropout, seed=seed + i)
            for i in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return self.final_norm(hidden)
