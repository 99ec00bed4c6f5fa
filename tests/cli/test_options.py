"""The shared command-line vocabulary: one spelling per option, old spellings kept for a release with one line."""
import argparse
import dataclasses

import pytest

from nnunet_swin.cli import options


def _parser(*parents):
    return argparse.ArgumentParser(prog="nnunet-swin x", parents=list(parents))


def test_new_spellings_parse():
    p = _parser(options.progress(), options.processes(3), options.seed(7), options.tumor_labels(),
                options.file_ending(), options.dataset(501), options.device())
    a = p.parse_args([])
    assert (a.quiet, a.num_processes, a.seed, a.tumor_labels, a.file_ending, a.dataset_id, a.device) == \
        (False, 3, 7, None, ".nii.gz", 501, "auto")
    a = p.parse_args(["--quiet", "-np", "1", "--seed", "2", "--tumor-labels", "1", "2", "--file-ending", ".nrrd",
                      "-d", "9", "--device", "cpu"])
    assert (a.quiet, a.num_processes, a.seed, a.tumor_labels, a.file_ending, a.dataset_id, a.device) == \
        (True, 1, 2, [1, 2], ".nrrd", 9, "cpu")


@pytest.mark.parametrize("old, new, dest, value", [
    (["--no-progress"], "--quiet", "quiet", True),
    (["--no_pbar"], "--quiet", "quiet", True),
    (["--num_processes", "4"], "-np/--num-processes", "num_processes", 4),
    (["--dataset_id", "12"], "-d/--dataset", "dataset_id", 12),
    (["--tumor_labels", "3"], "--tumor-labels", "tumor_labels", [3]),
    (["--file_ending", ".mha"], "--file-ending", "file_ending", ".mha"),
])
def test_old_spellings_still_work_with_one_deprecation_line(old, new, dest, value, capsys):
    p = _parser(options.progress(), options.processes(2), options.dataset(), options.tumor_labels(),
                options.file_ending())
    assert getattr(p.parse_args(old), dest) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{old[0]} is deprecated" in err[0] and err[0].endswith(f"use {new}")


def test_old_spellings_are_hidden_from_help():
    text = _parser(options.progress(), options.processes(2)).format_help()
    assert "--quiet" in text and "--num-processes" in text
    assert "--no-progress" not in text and "--num_processes" not in text


def test_options_from_dataclass_fields_carry_default_and_help_once():
    @dataclasses.dataclass
    class Settings:
        num_train: int = dataclasses.field(default=16, metadata={"help": "training cases"})
        fov_mm: float = dataclasses.field(default=96.0, metadata={"help": "field of view in mm"})
        overwrite: bool = dataclasses.field(default=False, metadata={"help": "replace what is there"})
        channels: tuple = dataclasses.field(default=("T2",), metadata={"help": "channels", "nargs": "+"})

    p = _parser()
    options.from_dataclass(p, Settings, "num_train", "fov_mm", "overwrite", "channels")
    a = p.parse_args([])
    assert Settings(**vars(a)) == Settings()
    a = p.parse_args(["--num-train", "3", "--fov-mm", "50", "--overwrite", "--channels", "T2", "DWI"])
    assert (a.num_train, a.fov_mm, a.overwrite, a.channels) == (3, 50.0, True, ["T2", "DWI"])
    text = " ".join(p.format_help().split())
    assert "training cases (default 16)" in text and "field of view in mm (default 96.0)" in text
    assert "channels (default T2)" in text


@dataclasses.dataclass
class _Run:
    epochs: int = dataclasses.field(default=500, metadata={"help": "epochs"})
    crop: int | None = dataclasses.field(default=None, metadata={"help": "view side", "type": int,
                                                                 "default_text": "the preset's"})
    ramp_scaling: bool = dataclasses.field(default=True, metadata={"help": "keep ramps",
                                                                   "flags": ("--no-ramp-scaling",)})
    norm: bool = dataclasses.field(default=True, metadata={"help": "norm the query",
                                                           "action": argparse.BooleanOptionalAction})
    window: tuple = dataclasses.field(default=(-1.0, 2.0), metadata={"help": "window", "type": float, "nargs": 2})
    num_workers: int = dataclasses.field(default=2, metadata={"help": "workers"})
    not_an_option: float = 0.5


def test_only_given_leaves_unset_options_out_so_a_stored_config_is_kept():
    p = _parser()
    options.from_dataclass(p, _Run, "epochs", "crop", "ramp_scaling", "norm", "window", only_given=True)
    assert options.given(p.parse_args([]), _Run) == {}
    a = p.parse_args(["--epochs", "3", "--no-ramp-scaling", "--no-norm", "--window", "0", "1"])
    assert options.given(a, _Run) == {"epochs": 3, "ramp_scaling": False, "norm": False, "window": (0.0, 1.0)}
    stored = _Run(epochs=9, crop=32)
    assert dataclasses.replace(stored, **options.given(p.parse_args(["--crop", "64"]), _Run)) == \
        _Run(epochs=9, crop=64)


def test_help_shows_default_text_booleans_once_and_not_none():
    p = _parser()
    options.from_dataclass(p, _Run, "crop", "ramp_scaling", "norm", "window", only_given=True)
    text = " ".join(p.format_help().split())
    assert "view side (default the preset's)" in text and "window (default -1.0 2.0)" in text
    assert "norm the query (default on)" in text and "(default: " not in text
    assert "keep ramps (default" not in text and "None" not in text
    # without only_given argparse's own BooleanOptionalAction suffix is not added a second time
    q = _parser()
    options.from_dataclass(q, _Run, "norm")
    assert " ".join(q.format_help().split()).count("default") == 1


def test_underscore_aliases_work_with_one_deprecation_line(capsys):
    p = _parser()
    options.from_dataclass(p, _Run, "num_workers", "ramp_scaling", underscore_aliases=True)
    assert p.parse_args(["--num_workers", "5"]).num_workers == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--num_workers is deprecated" in err[0] and err[0].endswith("use --num-workers")
    assert p.parse_args(["--ramp_scaling"]).ramp_scaling is False         # the alias of a switch keeps its value
    assert "--ramp_scaling is deprecated" in capsys.readouterr().err
    assert "--num_workers" not in p.format_help()


def test_make_demo_dataset_takes_the_old_underscore_spellings_with_one_line(tmp_path, capsys):
    from nnunet_swin.cli.main import main
    assert main(["make_demo_dataset", "-o", str(tmp_path), "--num_train", "2", "--fov_mm", "30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--num_train is deprecated" in err[0] and "--fov_mm is deprecated" in err[1]
    assert "--fov-mm must be at least 40 mm" in err[2] and not any(tmp_path.iterdir())
