"""Whitening against an independent numpy construction (eigendecomposition, not SVD)."""

import numpy as np
import pytest

from model.whitening import fit_whitening


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    return rng.normal(size=(400, 6)) @ mixing + rng.normal(size=6)


def test_full_whitening_gives_zero_mean_identity_covariance(vectors):
    out = fit_whitening(vectors)(vectors)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.T @ out / len(out), np.eye(6), atol=1e-8)


def test_matches_eigh_construction_up_to_column_signs(vectors):
    mu = vectors.mean(axis=0)
    eigval, eigvec = np.linalg.eigh(np.cov(vectors.T, bias=True))
    order = np.argsort(eigval)[::-1]
    expected = (vectors - mu) @ (eigvec[:, order] / np.sqrt(eigval[order]))
    got = fit_whitening(vectors)(vectors)
    signs = np.sign(np.sum(got * expected, axis=0))
    np.testing.assert_allclose(got * signs, expected, atol=1e-8)


def test_first_k_dimensions_are_the_largest_eigen_directions(vectors):
    full = fit_whitening(vectors)
    reduced = fit_whitening(vectors, k=2)
    assert reduced.W.shape == (6, 2)
    np.testing.assert_allclose(reduced(vectors), full(vectors)[:, :2])
    assert fit_whitening(vectors, k=256).W.shape == (6, 6)


def test_rank_deficient_input_stays_finite():
    rng = np.random.default_rng(1)
    few = rng.normal(size=(3, 8))
    assert np.isfinite(fit_whitening(few)(few)).all()


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((1, 4))])
def test_bad_input_is_rejected(bad):
    with pytest.raises(ValueError, match="at least 2 vectors"):
        fit_whitening(bad)


def test_bad_k_is_rejected(vectors):
    with pytest.raises(ValueError, match="k must be"):
        fit_whitening(vectors, k=0)
