import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from model_folder import write_images, write_model_folder  # noqa: E402

from nnunet_swin.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cka")
    a = write_model_folder(root / "a", seed=0)
    b = write_model_folder(root / "b", seed=1)
    write_images(root / "img", z_extents=(12, 16, 20, 24, 28))
    return root, a, b


def test_cka_command_same_model_has_unit_diagonal(setup, tmp_path):
    root, a, _ = setup
    out = tmp_path / "same"
    assert main(["cka", "-a", str(a), "-b", str(a), "-i", str(root / "img"), "-o", str(out), "--batch-size", "4",
                 "--quiet"]) == 0
    diag = pd.read_csv(out / "cka_diagonal.csv")
    assert len(diag) == 4                                   # smit_tiny: one block per stage
    np.testing.assert_allclose(diag.cka, 1.0, atol=1e-9)
    summary = json.loads((out / "cka_summary.json").read_text())
    assert summary["images_used"] == 4 and summary["images_dropped"] == 1
    matrix = pd.read_csv(out / "cka_matrix.csv", index_col=0)
    assert matrix.shape == (4, 4)
    for name in ("cka_heatmap.png", "cka_diagonal.png"):
        assert (out / name).stat().st_size > 1000


def test_cka_command_two_models(setup, tmp_path):
    root, a, b = setup
    out = tmp_path / "two"
    assert main(["cka", "-a", str(a), "-b", str(b), "-i", str(root / "img"), "-o", str(out), "--batch-size", "4",
                 "--quiet"]) == 0
    diag = pd.read_csv(out / "cka_diagonal.csv")
    assert (diag.cka < 0.999).any()                         # different random weights are not identical


def test_fewer_images_than_a_batch_is_a_user_error(setup, tmp_path, capsys):
    root, a, b = setup
    assert main(["cka", "-a", str(a), "-b", str(b), "-i", str(root / "img"), "-o", str(tmp_path / "o"),
                 "--batch-size", "8", "--quiet"]) == 2
    assert "fewer than one CKA batch" in capsys.readouterr().err
    assert main(["cka", "-a", str(a), "-b", str(b), "-i", str(root / "img"), "-o", str(tmp_path / "o"),
                 "--batch-size", "3", "--quiet"]) == 2
