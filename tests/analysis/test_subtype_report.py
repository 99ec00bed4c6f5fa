import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from model_folder import write_images  # noqa: E402

from nnunet_swin.cli.main import main  # noqa: E402


def test_subtypes_command_fit_apply_and_truth(tmp_path):
    tr = write_images(tmp_path / "imTr", z_extents=(16,) * 8, size=32, labels=tmp_path / "lbTr", seed=1)
    write_images(tmp_path / "imTs", z_extents=(16,) * 4, size=32, labels=tmp_path / "lbTs", seed=2)
    # write_images makes odd cases bright (tumour +150) and even ones faint (+30)
    truth = pd.DataFrame({"case_id": tr, "subtype": ["dark" if i % 2 == 0 else "bright" for i in range(8)]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    out = tmp_path / "out"
    assert main(["subtypes", "-o", str(out), "--train-images", str(tmp_path / "imTr"), "--train-labels",
                 str(tmp_path / "lbTr"), "--test-images", str(tmp_path / "imTs"), "--test-labels",
                 str(tmp_path / "lbTs"), "--truth", str(tmp_path / "truth.csv"), "--k", "2", "--quiet"]) == 0
    st = pd.read_csv(out / "subtypes_train.csv")
    assert list(st.columns) == ["case_id", "subtype"]
    summary = json.loads((out / "subtypes_summary.json").read_text())
    assert summary["train"]["agreement"]["accuracy"] == 1.0
    assert summary["train"]["agreement"]["mapping"] == {"B": "bright", "D": "dark"}
    for name in ("cluster_validity.png", "subtype_scatter.png", "subtype_model.json", "subtypes_test.csv"):
        assert (out / name).exists()
    # apply the stored model alone
    out2 = tmp_path / "out2"
    assert main(["subtypes", "-o", str(out2), "--model", str(out / "subtype_model.json"), "--test-images",
                 str(tmp_path / "imTs"), "--test-labels", str(tmp_path / "lbTs"), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out2 / "subtypes_test.csv"), pd.read_csv(out / "subtypes_test.csv"))


def test_audit_against_the_datasets_hidden_subtypes(tmp_path):
    """A ``subtypes_truth.csv`` beside the images folders is found without --truth; the audit holds the adjusted Rand
    index and the confusion table per split and over both."""
    ds = tmp_path / "Dataset001_X"
    tr = write_images(ds / "imagesTr", z_extents=(16,) * 8, size=32, labels=ds / "labelsTr", seed=1)
    write_images(ds / "imagesTs", z_extents=(16,) * 4, size=32, labels=ds / "labelsTs", seed=2)
    for f in [*(ds / "imagesTs").iterdir(), *(ds / "labelsTs").iterdir()]:   # test ids apart from training ids
        f.rename(f.with_name(f.name.replace("case_", "test_")))
    ts = [f"test_{i:03d}" for i in range(4)]
    # write_images makes odd cases bright and even ones faint; one training case is mislabelled on purpose
    latent = ["dark" if i % 2 == 0 else "bright" for i in range(8)]
    latent[0] = "bright"
    pd.DataFrame({"case_id": tr + ts, "subtype": latent + ["dark" if i % 2 == 0 else "bright" for i in range(4)],
                  "split": ["train"] * 8 + ["test"] * 4}).to_csv(ds / "subtypes_truth.csv", index=False)
    out = tmp_path / "out"
    assert main(["subtypes", "-o", str(out), "--train-images", str(ds / "imagesTr"), "--train-labels",
                 str(ds / "labelsTr"), "--test-images", str(ds / "imagesTs"), "--test-labels", str(ds / "labelsTs"),
                 "--k", "2", "--quiet"]) == 0
    audit = json.loads((out / "subtypes_audit.json").read_text())
    assert audit["truth"] == "subtypes_truth.csv" and audit["latent_labels"] == ["bright", "dark"]
    train, test, both = (audit["splits"][k] for k in ("train", "test", "all"))
    assert train["confusion"] == {"B": {"bright": 4, "dark": 0}, "D": {"bright": 1, "dark": 3}}
    assert train["n"] == 8 and train["accuracy"] == 7 / 8 and 0 < train["adjusted_rand"] < 1
    assert test["adjusted_rand"] == 1.0 and both["n"] == 12
    # the ARI is scikit-learn's on the same labels
    from sklearn.metrics import adjusted_rand_score
    clusters = pd.read_csv(out / "subtypes_train.csv").subtype
    assert train["adjusted_rand"] == pytest.approx(adjusted_rand_score(latent, clusters))
    # no truth table: no audit
    plain = tmp_path / "plain"
    assert main(["subtypes", "-o", str(plain), "--train-images", str(tmp_path / "Dataset001_X" / "imagesTr"),
                 "--train-labels", str(ds / "labelsTr"), "--k", "2", "--quiet"]) == 0
    (ds / "subtypes_truth.csv").unlink()
    again = tmp_path / "again"
    assert main(["subtypes", "-o", str(again), "--train-images", str(ds / "imagesTr"), "--train-labels",
                 str(ds / "labelsTr"), "--k", "2", "--quiet"]) == 0
    assert not (again / "subtypes_audit.json").exists()


def test_image_without_label_is_a_user_error(tmp_path, capsys):
    write_images(tmp_path / "im", z_extents=(8, 8, 8), size=16, labels=tmp_path / "lb")
    (tmp_path / "lb" / "case_001.nii.gz").unlink()
    assert main(["subtypes", "-o", str(tmp_path / "o"), "--train-images", str(tmp_path / "im"),
                 "--train-labels", str(tmp_path / "lb"), "--quiet"]) == 2
    assert "have no label" in capsys.readouterr().err


def test_too_few_cases_is_a_user_error(tmp_path, capsys):
    write_images(tmp_path / "im", z_extents=(8, 8), size=16, labels=tmp_path / "lb")
    assert main(["subtypes", "-o", str(tmp_path / "o"), "--train-images", str(tmp_path / "im"),
                 "--train-labels", str(tmp_path / "lb"), "--quiet"]) == 2
    assert "too few" in capsys.readouterr().err


@pytest.mark.slow
def test_synthetic_dataset_subtypes_are_recovered(tmp_path):
    from nnunet_swin.analysis.subtype_report import run_subtypes
    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset

    ds = make_demo_dataset(tmp_path / "raw", 502, spec=SyntheticSpec(num_train=16, num_test=8), progress=False)
    s = run_subtypes(tmp_path / "out", train=(ds / "imagesTr", ds / "labelsTr"), test=(ds / "imagesTs", ds / "labelsTs"),
                     truth=ds / "subtypes_truth.csv", progress=False)
    assert s["k"] == 2
    assert s["train"]["agreement"]["mapping"] == {"B": "bright", "D": "dark"}
    assert s["train"]["agreement"]["accuracy"] >= 0.8
    assert s["test"]["agreement"]["accuracy"] >= 0.75
