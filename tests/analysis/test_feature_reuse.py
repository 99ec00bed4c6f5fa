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


def test_cka_floor_against_an_untrained_network_of_the_plans(setup, tmp_path, capsys):
    """--random-b: model B is the plans' network untrained (seeded), model A the same layout with the pretrained
    encoder; the same seed gives the same floor, another seed another one; the summary says what B is."""
    import torch
    from model_folder import DATASET_JSON, plans_dict

    from nnunet_swin.analysis.model_loading import load_backbone
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint

    root, a, _ = setup
    plans = plans_dict()
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    (tmp_path / "dataset.json").write_text(json.dumps(DATASET_JSON))
    # the stand-in encoder is itself a seeded random init: seed 5, so that it is not random-b's seed-0 network
    checkpoint = write_standin_checkpoint(plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"],
                                          tmp_path / "smit_tiny.pth", seed=5)

    def floor(seed: int, out: str) -> dict:
        assert main(["cka", "--pretrained", str(checkpoint), "--random-b", "--plans", str(tmp_path / "plans.json"),
                     "--dataset-json", str(tmp_path / "dataset.json"), "-c", "3d_fullres", "--seed", str(seed),
                     "--label-b", "random init", "-i", str(root / "img"), "-o", str(tmp_path / out),
                     "--batch-size", "4", "--quiet"]) == 0
        return json.loads((tmp_path / out / "cka_summary.json").read_text())

    first = floor(0, "f0")
    assert set(first["models"]) == {"pretrained", "random init"}
    assert first["models"]["random init"] == "random initialisation (seed 0) of plans 3d_fullres"
    assert first["models"]["pretrained"] == str(checkpoint) and first["images_used"] == 4
    assert len(first["diagonal"]) == 4 and all(-1e-9 <= v <= 1 + 1e-9 for v in first["diagonal"].values())
    assert min(first["diagonal"].values()) < 0.999                  # untrained is not the pretrained encoder

    def weights(seed):
        net = load_backbone(tmp_path / "plans.json", tmp_path / "dataset.json", "3d_fullres", seed=seed).network
        return net.state_dict()

    torch.manual_seed(99)
    state = torch.random.get_rng_state()
    w0, w0b, w1 = weights(0), weights(0), weights(1)
    assert torch.equal(torch.random.get_rng_state(), state)         # the caller's random state is left alone
    floats = [k for k, v in w0.items() if v.is_floating_point() and v.std() > 0]
    assert all(torch.equal(w0[k], w0b[k]) for k in w0) and all(not torch.equal(w0[k], w1[k]) for k in floats)
    capsys.readouterr()
    assert main(["cka", "--pretrained", str(checkpoint), "--random-b", "-b", str(a), "-i", str(root / "img"),
                 "-o", str(tmp_path / "x"), "--quiet"]) == 2
    assert "give exactly one of -b MODEL_FOLDER and --random-b" in capsys.readouterr().err
    assert main(["cka", "--pretrained", str(checkpoint), "--random-b", "-i", str(root / "img"), "-o",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "--random-b builds model B from the plans: give --plans" in capsys.readouterr().err
