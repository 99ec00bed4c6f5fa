import math

import numpy as np
import pytest
import torch

from nnunet_swin.analysis.cka import MinibatchCKA, hsic1, linear_cka, minibatch_cka
from nnunet_swin.errors import UserError


def _song_hsic1(k, l):
    """Paper eq. (10) written out literally, for cross-checking the U-centred form."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))


def test_u_centred_form_equals_song_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 7))
    k, l = x @ x.T, y @ y.T
    assert hsic1(torch.from_numpy(k), torch.from_numpy(l)) == pytest.approx(_song_hsic1(k, l), rel=1e-10)


def test_cka_of_x_with_itself_is_one():
    x = torch.randn(40, 30, dtype=torch.float64)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert minibatch_cka(x, x, 8) == pytest.approx(1.0, abs=1e-12)


def test_invariant_to_orthogonal_transform_and_isotropic_scaling():
    torch.manual_seed(1)
    x = torch.randn(64, 20, dtype=torch.float64)
    y = x @ torch.randn(20, 20, dtype=torch.float64) + 0.5 * torch.randn(64, 20, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(20, 20, dtype=torch.float64))
    base = minibatch_cka(x, y, 16)
    assert 0.05 < base < 0.999
    assert minibatch_cka(x @ q, y, 16) == pytest.approx(base, abs=1e-10)
    assert minibatch_cka(7.5 * x, 0.01 * y, 16) == pytest.approx(base, abs=1e-10)


def test_independent_features_are_near_zero():
    torch.manual_seed(2)
    x, y = torch.randn(1024, 256), torch.randn(1024, 256)
    assert abs(minibatch_cka(x, y, 32)) < 0.05


def test_minibatch_agrees_with_full_batch():
    torch.manual_seed(3)
    x = torch.randn(1024, 64, dtype=torch.float64)
    y = x[:, :32] @ torch.randn(32, 48, dtype=torch.float64) + torch.randn(1024, 48, dtype=torch.float64)
    full, mb = linear_cka(x, y), minibatch_cka(x, y, 64)
    assert 0.1 < full < 0.9
    assert mb == pytest.approx(full, abs=0.02)


def test_float32_input_with_a_mean_offset_is_still_correct():
    torch.manual_seed(4)
    x = torch.randn(64, 2048, dtype=torch.float64)
    y = x @ torch.randn(2048, 64, dtype=torch.float64) / 40 + torch.randn(64, 64, dtype=torch.float64)
    ref = minibatch_cka(x, y, 32)
    assert minibatch_cka((x + 100).float(), y.float(), 32) == pytest.approx(ref, abs=1e-3)


def test_layer_by_layer_matrix_and_short_batches():
    torch.manual_seed(5)
    a = [torch.randn(8, 3, 2, 2), torch.randn(8, 5)]
    meter = MinibatchCKA(8)
    meter.update(a, [a[1], a[0]])
    m = meter.result()
    assert m.shape == (2, 2)
    assert m[0, 1] == pytest.approx(1.0) and m[1, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        meter.update([torch.randn(5, 3)], [torch.randn(5, 3)])


def test_too_few_examples_and_tiny_batches_are_user_errors():
    with pytest.raises(UserError, match="at least 4"):
        MinibatchCKA(3)
    with pytest.raises(UserError, match="fewer than one CKA batch"):
        minibatch_cka(torch.randn(5, 3), torch.randn(5, 3), 8)
    with pytest.raises(UserError):
        MinibatchCKA(4).result()


def test_constant_features_give_nan():
    x = torch.ones(8, 4)
    assert math.isnan(minibatch_cka(x, torch.randn(8, 4), 8))
