"""BERT-whitening of sentence vectors (Su et al. 2021, kexue.fm/archives/8069).

Given vectors x_i (n × d) the whitening transform is fitted as

    μ = mean_i x_i,    Σ = (1/n) Σ_i (x_i − μ)ᵀ(x_i − μ) = U Λ Uᵀ   (SVD of the covariance),
    W = U Λ^(−1/2),

and applied as x̃ = (x − μ) W[:, :k]. With all d columns the transformed vectors have zero mean and
identity covariance; keeping the first k columns (largest eigenvalues, "whitening-256" for k=256)
also reduces the dimension. Singular values are floored at ``eps`` so that a rank-deficient
covariance (fewer sentences than dimensions) does not divide by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Whitening:
    """A fitted whitening transform: ``mu`` (d,) and ``W`` (d, k)."""

    mu: np.ndarray
    W: np.ndarray

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Return (vectors − μ) W, shape (n, k)."""
        return (np.asarray(vectors, dtype=np.float64) - self.mu) @ self.W


def fit_whitening(vectors: np.ndarray, k: int | None = None, eps: float = 1e-12) -> Whitening:
    """Fit μ and W = U Λ^(−1/2) on ``vectors`` (n, d); keep the first ``k`` columns (all if None).

    ``k`` larger than d keeps all d columns. Computed in float64.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"whitening needs a 2-D array of at least 2 vectors, got shape {x.shape}")
    if k is not None and k < 1:
        raise ValueError(f"k must be a positive number of dimensions, got {k}")
    mu = x.mean(axis=0)
    cov = (x - mu).T @ (x - mu) / x.shape[0]
    u, s, _ = np.linalg.svd(cov)
    w = u / np.sqrt(np.maximum(s, eps))
    return Whitening(mu=mu, W=w[:, :k] if k is not None else w)
