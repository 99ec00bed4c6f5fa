"""`plan_and_preprocess` argument and dataset errors end in one line, exit 2, before anything is written."""
import pytest

from raw_data import write_raw_dataset
from nnunet_swin.cli.main import main


def _one_line(capsys, argv, text):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnunet-swin plan_and_preprocess: error: ") and text in err[0], err


@pytest.fixture
def raw(nnunet_dirs):
    return write_raw_dataset(nnunet_dirs["nnUNet_raw"], 601)


@pytest.mark.parametrize("argv, text", [
    (["-cubic_size", "0"], "-cubic_size must be a positive number"),
    (["-cubic_size", "-32"], "-cubic_size must be a positive number"),
    (["-batch_size", "0"], "-batch_size must be at least 1"),
    (["-np", "0"], "-np takes process counts of at least 1"),
    (["-npfp", "0"], "-npfp must be at least 1"),
    (["-pl", "ExperimentPlanner", "-preprocessor_name", "NoSuchPreprocessor"], "unknown preprocessor"),
])
def test_planner_arguments(raw, nnunet_dirs, capsys, argv, text):
    _one_line(capsys, ["plan_and_preprocess", "-d", "601", *argv], text)
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())


@pytest.mark.slow
def test_broken_dataset_through_the_command(raw, nnunet_dirs, run_cli):
    (raw / "labelsTr" / "case_001.nii.gz").write_bytes(b"junk")
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "601", "-pl", "ExperimentPlanner", "-npfp", "1",
                   check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "1 problem in Dataset601_Bad: labelsTr/case_001.nii.gz: not a readable gzip" in lines[0]
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())


@pytest.mark.slow
def test_unknown_configuration_is_refused(raw, nnunet_dirs, run_cli):
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "601", "-pl", "ExperimentPlanner", "-c", "3d_fulres",
                   "-np", "1", "-npfp", "1", "--quiet", env={"nnUNet_n_proc_DA": "1"}, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "unknown configuration(s) 3d_fulres (-c); the plans nnUNetPlans have" in proc.stderr.strip().splitlines()[-1]
