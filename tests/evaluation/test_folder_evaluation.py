"""evaluate_folder on nnU-Net folder layouts: outputs, labels, subtypes, bad input, real data, no torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import evaluate_folder, measure_case, surface_dice

SPACING_XYZ = (0.5, 0.5, 3.0)  # SimpleITK order; the (Z, Y, X) arrays have spacing (3.0, 0.5, 0.5)
REAL_NAME = "pyrad_brain1_label.nii.gz"


def write_seg(path: Path, array: np.ndarray, spacing_xyz=SPACING_XYZ, origin=(0.0, 0.0, 0.0)) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def lesion(shift=0, size=(3, 8, 8), label=1, shape=(8, 24, 24)):
    a = np.zeros(shape, np.uint8)
    a[2 + shift : 2 + shift + size[0], 6 : 6 + size[1], 6 : 6 + size[2]] = label
    return a


@pytest.fixture
def layout(tmp_path):
    """ref/ and pred/ with three cases: perfect, shifted by one slice, missed; nnU-Net's summary.json in pred/."""
    cases = {"case_a": (lesion(), lesion()), "case_b": (lesion(), lesion(shift=1)),
             "case_c": (lesion(), np.zeros((8, 24, 24), np.uint8))}
    for case, (ref, pred) in cases.items():
        write_seg(tmp_path / "ref" / f"{case}.nii.gz", ref)
        write_seg(tmp_path / "pred" / f"{case}.nii.gz", pred)
    (tmp_path / "pred" / "summary.json").write_text('{"foreground_mean": {"Dice": 0.5}}')
    return tmp_path, cases


def test_evaluate_folder_writes_outputs_and_leaves_nnunet_summary(layout):
    root, cases = layout
    result = evaluate_folder(root / "ref", root / "pred", num_processes=1, progress=False)
    assert (root / "pred" / "summary.json").read_text() == '{"foreground_mean": {"Dice": 0.5}}'
    for name in ("metrics_per_case.csv", "summary_extended.json", "summary_extended.md"):
        assert (root / "pred" / name).is_file()
    df = result.per_case.set_index("case_id")
    assert list(df.index) == ["case_a", "case_b", "case_c"]
    for case, (ref, pred) in cases.items():
        expected = measure_case(pred.astype(bool), ref.astype(bool), (3.0, 0.5, 0.5))
        for key in ("dice", "surface_dice", "volume_ratio", "detected"):
            assert df.loc[case, key] == pytest.approx(expected[key])
    assert df.loc["case_b", "surface_dice"] < 1  # a 3 mm shift is beyond the 2 mm tolerance
    summary = json.loads((root / "pred" / "summary_extended.json").read_text())  # strict JSON (no NaN)
    det = summary["labels"]["1"]["all"]["detection"]
    assert (det["detected"], det["n"]) == (2, 3)
    assert summary["labels"]["1"]["all"]["metrics"]["surface_dice"]["median"] == pytest.approx(
        df.loc["case_b", "surface_dice"])
    csv = pd.read_csv(root / "pred" / "metrics_per_case.csv")
    assert len(csv) == 3 and {"case_id", "label", "surface_dice", "volume_ratio", "detected"} <= set(csv.columns)
    assert "66.7%" in result.markdown


def test_output_folder_labels_regions_and_padding(tmp_path):
    ref = lesion(label=1) + lesion(size=(2, 3, 3), label=1)  # values 1 and 2
    ref[2:4, 6:9, 6:9] = 2
    pred = ref.copy()
    pred[pred == 2] = 1
    write_seg(tmp_path / "ref" / "c1.nii.gz", ref)
    write_seg(tmp_path / "pred" / "c1.nii.gz", pred)
    dataset = {"labels": {"background": 0, "tumour": 1, "node": 2}, "file_ending": ".nii.gz"}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))  # beside the reference folder
    result = evaluate_folder(tmp_path / "ref", tmp_path / "pred", tmp_path / "out", num_processes=1,
                             progress=False, crop_depth=16)
    assert (tmp_path / "out" / "summary_extended.json").is_file()
    assert not (tmp_path / "pred" / "summary_extended.json").exists()
    df = result.per_case.set_index("label")
    assert list(df["label_name"]) == ["tumour", "node"]
    assert df.loc["2", "dice"] == 0 and df.loc["2", "detected"] == 0
    assert df.loc["1", "padding_fraction"] == pytest.approx(0.5)
    region = evaluate_folder(tmp_path / "ref", tmp_path / "pred", tmp_path / "out2", labels=[(1, 2)],
                             num_processes=1, progress=False).per_case
    assert list(region["label"]) == ["(1, 2)"] and region["dice"].iloc[0] == 1.0


def test_subtypes_split_summaries(layout, tmp_path):
    root, _ = layout
    table = tmp_path / "subtypes.csv"
    table.write_text("case_id,subtype,contrast\ncase_a_0000,B,1.2\ncase_b_0000,D,0.3\ncase_c_0000,D,0.1\n")
    result = evaluate_folder(root / "ref", root / "pred", tmp_path / "out", subtypes_csv=table, num_processes=1,
                             progress=False)
    by = result.summary["labels"]["1"]["by_subtype"]
    assert set(by) == {"B", "D"}
    assert (by["B"]["detection"]["detected"], by["B"]["detection"]["n"]) == (1, 1)
    assert (by["D"]["detection"]["detected"], by["D"]["detection"]["n"]) == (1, 2)
    assert "subtype D" in result.markdown
    bad = tmp_path / "bad.csv"
    bad.write_text("case,kind\ncase_a,B\n")
    with pytest.raises(UserError, match="case_id,subtype"):
        evaluate_folder(root / "ref", root / "pred", tmp_path / "out3", subtypes_csv=bad, num_processes=1,
                        progress=False)


def test_parallel_equals_serial(layout, tmp_path):
    root, _ = layout
    serial = evaluate_folder(root / "ref", root / "pred", tmp_path / "s", num_processes=1, progress=False)
    parallel = evaluate_folder(root / "ref", root / "pred", tmp_path / "p", num_processes=2, progress=False)
    pd.testing.assert_frame_equal(serial.per_case, parallel.per_case)


def _no_outputs(folder: Path) -> bool:
    return not any(folder.glob("summary_extended*")) and not (folder / "metrics_per_case.csv").exists()


def test_missing_prediction_is_a_clear_error_and_writes_nothing(layout):
    root, _ = layout
    (root / "pred" / "case_b.nii.gz").unlink()
    with pytest.raises(UserError, match=r"1 reference case\(s\) have no prediction.*case_b\.nii\.gz"):
        evaluate_folder(root / "ref", root / "pred", num_processes=1, progress=False)
    assert _no_outputs(root / "pred")


@pytest.mark.parametrize("kind, spacing, origin, message", [
    ("spacing", (0.5, 0.5, 2.0), (0, 0, 0), "spacing"),
    ("origin", SPACING_XYZ, (0, 0, 5.0), "origin"),
    ("shape", SPACING_XYZ, (0, 0, 0), "shape"),
])
def test_geometry_mismatch(layout, kind, spacing, origin, message):
    root, _ = layout
    array = lesion(shape=(8, 24, 20)) if kind == "shape" else lesion()
    write_seg(root / "pred" / "case_b.nii.gz", array, spacing, origin)
    with pytest.raises(UserError, match=f"case case_b: prediction geometry differs.*{message}"):
        evaluate_folder(root / "ref", root / "pred", num_processes=1, progress=False)
    assert _no_outputs(root / "pred")


def test_non_binary_labels_need_label_ids(layout):
    root, _ = layout
    write_seg(root / "ref" / "case_a.nii.gz", lesion(label=3))
    with pytest.raises(UserError, match=r"label values \[3\].*--labels"):
        evaluate_folder(root / "ref", root / "pred", num_processes=1, progress=False)
    out = evaluate_folder(root / "ref", root / "pred", root / "out", labels=[3], num_processes=1, progress=False)
    assert out.per_case.set_index("case_id").loc["case_a", "dice"] == 0  # the prediction says 1, not 3


def test_empty_or_missing_folders(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    with pytest.raises(UserError, match="no segmentation files"):
        evaluate_folder(tmp_path / "ref", tmp_path / "pred", progress=False)
    with pytest.raises(UserError, match="no reference files"):
        evaluate_folder(tmp_path / "ref", tmp_path / "pred", file_ending=".nii.gz", progress=False)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_folder(tmp_path / "nope", tmp_path / "pred", progress=False)
    write_seg(tmp_path / "ref" / "a.nii.gz", lesion())
    with pytest.raises(UserError, match="no prediction files"):
        evaluate_folder(tmp_path / "ref", tmp_path / "pred", progress=False)


def _real_label() -> Path:
    for folder in (Path(__file__).resolve().parents[1] / "data" / "real", Path("/work/shared/data/real")):
        if (folder / REAL_NAME).is_file():
            return folder / REAL_NAME
    pytest.fail(f"{REAL_NAME} not found in tests/data/real or /work/shared/data/real")


def test_real_thick_slice_mri_label_shifted_by_one_slice(tmp_path):
    """Reference = the real lesion label; prediction = shifted by one 6.5 mm slice, through nnU-Net's reader."""
    source = _real_label()
    image = sitk.ReadImage(str(source))
    ref = sitk.GetArrayFromImage(image) > 0  # (Z, Y, X)
    pred = np.zeros_like(ref)
    pred[1:] = ref[:-1]
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "brain1.nii.gz").write_bytes(source.read_bytes())
    shifted = sitk.GetImageFromArray(pred.astype(np.uint8))
    shifted.CopyInformation(image)
    (tmp_path / "pred").mkdir()
    sitk.WriteImage(shifted, str(tmp_path / "pred" / "brain1.nii.gz"))
    row = evaluate_folder(tmp_path / "ref", tmp_path / "pred", tmp_path / "out", num_processes=1,
                          progress=False, hd95=True).per_case.iloc[0]
    spacing_zyx = tuple(reversed(image.GetSpacing()))
    assert spacing_zyx[0] == pytest.approx(6.5, abs=0.01)
    assert row["surface_dice"] == pytest.approx(surface_dice(pred, ref, spacing_zyx), abs=1e-12)
    assert 0.0 < row["surface_dice"] < 0.9  # a 6.5 mm shift is far beyond 2 mm for the axial faces
    assert row["volume_ratio"] == pytest.approx(pred.sum() / ref.sum())
    assert row["hd95"] == pytest.approx(6.5, abs=0.01)
    assert row["detected"] == 1.0


def test_file_layer_imports_no_torch(layout):
    root, _ = layout
    code = ("import sys; from nnunet_swin.evaluation import evaluate_cases; "
            f"df, _ = evaluate_cases({str(root / 'ref')!r}, {str(root / 'pred')!r}, num_processes=1, progress=False); "
            "assert len(df) == 3; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ignore_label_region_is_left_out(tmp_path):
    ref = lesion()
    ref[6:8, 6:14, 6:14] = 2  # the ignore label next to the lesion
    pred = (ref > 0).astype(np.uint8)  # predicts the lesion and the ignored voxels
    write_seg(tmp_path / "ref" / "c.nii.gz", ref)
    write_seg(tmp_path / "pred" / "c.nii.gz", pred)
    dataset = {"labels": {"background": 0, "tumour": 1, "ignore": 2}, "file_ending": ".nii.gz"}
    result = evaluate_folder(tmp_path / "ref", tmp_path / "pred", tmp_path / "out", dataset_json=dataset,
                             num_processes=1, progress=False)
    row = result.per_case.iloc[0]
    assert row["label"] == "1" and row["dice"] == 1.0 and row["volume_ratio"] == 1.0
