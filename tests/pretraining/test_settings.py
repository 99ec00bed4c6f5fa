"""`nnunet-swin pretrain`'s options come from PretrainConfig's fields: defaults written once, --continue overrides a
stored run only where a flag was given, old spellings keep working for a release."""
import argparse
import dataclasses

import pytest
import torch

from nnunet_swin.cli import options
from nnunet_swin.cli.pretrain import build_parser
from nnunet_swin.errors import UserError
from nnunet_swin.pretraining.settings import CONTINUE_MAY_CHANGE, LATEST, PretrainConfig, settings_for_run

from pretraining_fixtures import tiny_config

BASE = ["-i", "images", "-o", "out"]
OPTION_FIELDS = [f for f in dataclasses.fields(PretrainConfig) if "help" in f.metadata]


def _argv_for(config: PretrainConfig) -> list[str]:
    """Every option of ``config`` spelled out as a user would type it."""
    parser = build_parser()
    by_dest = {a.dest: a for a in parser._actions}
    argv = []
    for f in OPTION_FIELDS:
        value, action = getattr(config, f.name), by_dest[f.name]
        if value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0] if value else action.option_strings[1])
        elif isinstance(value, bool):
            if value != f.default:
                argv.append(action.option_strings[0])
        else:
            argv += [action.option_strings[-1], *map(str, value if isinstance(value, tuple) else [value])]
    return argv


def test_every_option_field_is_an_option_and_none_is_left_out():
    args = build_parser().parse_args(BASE)
    assert options.given(args, PretrainConfig) == {}                 # nothing given: the stored run is kept
    assert PretrainConfig(**options.given(args, PretrainConfig)) == PretrainConfig()
    dests = {a.dest for a in build_parser()._actions}
    assert {f.name for f in OPTION_FIELDS} <= dests and len(OPTION_FIELDS) >= 45


@pytest.mark.parametrize("config", [
    PretrainConfig(),
    PretrainConfig(method="smart", backbone="swin_unetr", modality="MR", spacing=(2.0, 1.5, 1.5), crop=64,
                   hu_window=(-100.0, 200.0), mr_percentile=98.0, epochs=3, ramp_scaling=False,
                   guided_masking=False, norm_class_query=False, teacher_noise="dropout", masking="ibot",
                   ibot_ratio=(0.4, 0.1), teacher_temp=(0.05, 0.06), encoder="teacher", class_attention_heads=4,
                   lr_per_sample=2e-4, seed=3, save_every=2, num_workers=1),
])
def test_options_round_trip_to_the_config(config):
    given = options.given(build_parser().parse_args(BASE + _argv_for(config)), PretrainConfig)
    assert dataclasses.replace(PretrainConfig(), **given) == config


def test_help_states_each_default_once_from_the_field():
    text = " ".join(build_parser().format_help().split())
    for phrase in ("share of masked blocks (default 0.7)", "epochs (default 500)", "(default 1e-4)",
                   "target spacing in mm, the backbone's pretraining spacing (default 1.0 1.0 1.0)",
                   "view side in voxels (default the preset's input size)", "(CaiT) (default on)",
                   "--teacher-noise {weights,dropout,none}"):
        assert phrase in text, phrase
    assert "None" not in text


def test_old_progress_spelling_works_with_one_deprecation_line(capsys):
    args = build_parser().parse_args(BASE + ["--no-progress", "-backbone", "smit_tiny"])
    assert args.quiet is True and options.given(args, PretrainConfig) == {"backbone": "smit_tiny"}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--no-progress is deprecated" in err[0] and err[0].endswith("use --quiet")


def _stored_run(out, config):
    out.mkdir(parents=True)
    torch.save({"pretraining": {"config": dataclasses.asdict(config)}}, out / LATEST)


def test_continue_keeps_the_stored_config_and_takes_only_the_given_flags(ct_folder, tmp_path):
    out = tmp_path / "run"
    stored = tiny_config(epochs=7, save_every=3, encoder="auto", seed=5)
    _stored_run(out, stored)
    args = build_parser().parse_args(["-i", str(ct_folder), "-o", str(out), "--continue", "--save-every", "1",
                                      "--encoder", "student", "--epochs", "7"])
    config, images, resume = settings_for_run(args.output, options.given(args, PretrainConfig), args.input,
                                              args.dataset, args.resume)
    assert resume and len(images) == 3
    assert (config.save_every, config.encoder) == (1, "student")               # given: changed
    assert dataclasses.replace(config, save_every=3, encoder="auto") == stored.validate()   # the rest: as stored
    assert {"save_every", "encoder"} <= set(CONTINUE_MAY_CHANGE)
    with pytest.raises(UserError, match="holds a run with seed 5, not 0"):   # a default given explicitly still counts
        settings_for_run(out, {"seed": 0}, str(ct_folder), resume=True)


def test_a_new_run_takes_the_given_flags_over_the_field_defaults(ct_folder, tmp_path):
    config, _, resume = settings_for_run(tmp_path / "new", {"modality": "mri", "backbone": "smit_tiny",
                                                            "spacing": [2, 2, 2]}, str(ct_folder))
    assert not resume and (config.modality, config.spacing) == ("MR", (2, 2, 2))    # normalised, as tuples
    assert dataclasses.replace(config, modality="CT", backbone="smit", spacing=(1.0, 1.0, 1.0), crop=None) == \
        PretrainConfig()
