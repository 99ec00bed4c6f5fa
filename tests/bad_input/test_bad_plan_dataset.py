"""`plan_and_preprocess` on broken raw datasets: one pass over every file, one line naming each bad file."""
import gzip

import numpy as np
import pytest

from raw_data import case_arrays, write_dataset_json, write_image, write_raw_dataset
from nnunet_swin.errors import UserError
from nnunet_swin.raw_dataset.checks import check_raw_dataset


def _problems(folder) -> str:
    with pytest.raises(UserError) as e:
        check_raw_dataset(folder, warn=lambda text: None)
    message = str(e.value)
    assert "\n" not in message and "in Dataset601_Bad" in message
    return message


@pytest.fixture
def raw(tmp_path):
    return write_raw_dataset(tmp_path)


def test_a_good_dataset_passes(raw):
    assert check_raw_dataset(raw, warn=lambda t: None) == {"cases": 5, "warnings": []}


def test_corrupt_image_and_label_are_both_named(raw):
    (raw / "imagesTr" / "case_001_0000.nii.gz").write_bytes(b"not an image at all")
    (raw / "labelsTr" / "case_003.nii.gz").write_bytes(b"\x1f\x8b garbage")
    message = _problems(raw)
    assert message.startswith("2 problems in Dataset601_Bad")
    assert "case_001_0000.nii.gz: " in message and "labelsTr/case_003.nii.gz: " in message


def test_truncated_gzip_is_detected(raw):
    path = raw / "imagesTr" / "case_002_0000.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "case_002_0000.nii.gz: truncated" in _problems(raw)


def test_gzip_of_a_short_nifti_is_detected(raw):
    """A complete gzip stream of a NIfTI whose voxel data were cut off (the file was truncated before compression)."""
    path = raw / "imagesTr" / "case_002_0000.nii.gz"
    raw_bytes = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw_bytes[: len(raw_bytes) - 100]))
    assert "bytes the header announces" in _problems(raw)


def test_label_shape_and_spacing_differ(raw):
    _, label = case_arrays(0)
    write_image(raw / "labelsTr" / "case_000.nii.gz", label[:, :10])
    write_image(raw / "labelsTr" / "case_001.nii.gz", label, spacing_xyz=(1.0, 1.0, 2.0))
    message = _problems(raw)
    assert "case_000.nii.gz: shape (6, 10, 12) differs" in message
    assert "case_001.nii.gz: spacing (2, 1, 1) differs" in message


def test_undeclared_float_and_negative_labels(raw):
    _, label = case_arrays(0)
    write_image(raw / "labelsTr" / "case_000.nii.gz", (label * 3).astype(np.uint8))
    write_image(raw / "labelsTr" / "case_001.nii.gz", label.astype(np.float32) * 0.4)
    write_image(raw / "labelsTr" / "case_002.nii.gz", label.astype(np.int16) * -1)
    message = _problems(raw)
    assert "case_000.nii.gz: holds values [3] not declared" in message
    assert "case_001.nii.gz: holds non-integer values (e.g. 0.4)" in message
    assert "case_002.nii.gz: holds negative values [-1]" in message


def test_non_consecutive_declared_labels(raw):
    write_dataset_json(raw, 5, labels={"background": 0, "tumour": 1, "node": 3})
    assert "dataset.json: declared label values [0, 1, 3] are not consecutive" in _problems(raw)


def test_empty_images_folder(tmp_path):
    folder = tmp_path / "Dataset601_Bad"
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    write_dataset_json(folder, 1)
    assert "imagesTr: is empty" in _problems(folder)


def test_missing_and_extra_label_files(raw):
    (raw / "labelsTr" / "case_004.nii.gz").unlink()
    _, label = case_arrays(9)
    write_image(raw / "labelsTr" / "stray.nii.gz", label)
    message = _problems(raw)
    assert "labelsTr/stray.nii.gz: has no image" in message
    assert "case_004: has no label file" in message


def test_two_d_one_slice_and_4d_images(raw):
    image, _ = case_arrays(0)
    write_image(raw / "imagesTr" / "case_000_0000.nii.gz", image[0])                  # 2D
    write_image(raw / "imagesTr" / "case_001_0000.nii.gz", image[:1])                 # one slice
    write_image(raw / "imagesTr" / "case_002_0000.nii.gz", np.stack([image, image]))  # 4D
    message = _problems(raw)
    assert message.startswith("3 problems"), message
    assert "case_002_0000.nii.gz: holds 2 volumes (4D)" in message or "case_002_0000.nii.gz: is a 4D" in message
    assert "case_000: is 2D or has a single slice" in message
    assert "case_001: is 2D or has a single slice" in message


def test_nan_voxels(raw):
    image, _ = case_arrays(0)
    image[0, 0, :3] = np.nan
    image[1, 1, 1] = np.inf
    write_image(raw / "imagesTr" / "case_000_0000.nii.gz", image)
    assert "case_000_0000.nii.gz: has 4 NaN/Inf voxel(s) (nnU-Net's reader turns NaN into 0" in _problems(raw)


def test_no_foreground_anywhere(raw):
    for i in range(5):
        write_image(raw / "labelsTr" / f"case_{i:03d}.nii.gz", np.zeros((6, 12, 12), np.uint8))
    assert "no label file holds any foreground voxel" in _problems(raw)


def test_channel_suffix_file_ending_and_num_training(raw):
    image, _ = case_arrays(0)
    (raw / "imagesTr" / "case_000_0000.nii.gz").rename(raw / "imagesTr" / "case_000.nii.gz")
    write_image(raw / "imagesTr" / "case_001_0001.nii.gz", image)
    write_image(raw / "imagesTr" / "case_009_0000.nii", image)
    write_dataset_json(raw, 7)
    message = _problems(raw)
    assert "case_000.nii.gz: lacks the channel suffix" in message
    assert "case_001_0001.nii.gz: channel 0001, but dataset.json declares 1 channel(s)" in message
    assert "case_009_0000.nii: file ending differs" in message
    assert "numTraining is 7 but imagesTr holds 4 case(s)" in message or "and " in message


def test_many_problems_stay_on_one_line(raw):
    for i in range(5):
        (raw / "labelsTr" / f"case_{i:03d}.nii.gz").write_bytes(b"junk")
    message = _problems(raw)
    assert message.startswith("5 problems") and "; and 1 more" in message


def test_fewer_than_five_cases_warns_and_names_fold_all(tmp_path):
    folder = write_raw_dataset(tmp_path, n_cases=3)
    said = []
    result = check_raw_dataset(folder, warn=said.append)
    assert result["cases"] == 3 and len(said) == 1
    assert "5-fold split needs at least 5" in said[0] and "fold `all`" in said[0]


def test_images_to_predict_are_checked_first(raw):
    from nnunet_swin.raw_dataset.checks import check_image_folder
    from nnunet_swin.raw_dataset.folders import read_dataset_json

    images = raw / "imagesTr"
    assert check_image_folder(images, read_dataset_json(raw)) == 5
    (images / "case_003_0000.nii.gz").write_bytes((images / "case_003_0000.nii.gz").read_bytes()[:200])
    (images / "case_004_0003.nii.gz").write_bytes(b"")
    with pytest.raises(UserError) as e:
        check_image_folder(images, read_dataset_json(raw))
    message = str(e.value)
    assert message.startswith("2 problems in imagesTr: ") and "then predict again" in message
    assert "case_003_0000.nii.gz: truncated" in message and "case_004_0003.nii.gz: is not named" in message


def test_first_file_corrupt_names_it_without_reader_noise(raw, capfd):
    """A web page saved as the first case's image: nnU-Net's reader lookup would print a traceback per reader and
    then blame the file ending; the check names the file, says it is broken, and prints nothing else."""
    (raw / "imagesTr" / "case_000_0000.nii.gz").write_text("<html><body>Sign in to download</body></html>")
    message = _problems(raw)
    assert message.startswith("1 problem in Dataset601_Bad: case_000_0000.nii.gz: ")
    assert "not a readable gzip" in message and "no reader" not in message
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
