"""Fixtures of the workflow tests: the planned smoke dataset (the one-node SLURM is ``tests/slurm_cluster.py``,
shared with the pretraining tests through ``tests/conftest.py``)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SMOKE_DATASET = 948
SMOKE_PLANS = "nnUNetSMITPlans"


def _plan_smoke_dataset(root: Path, dataset_id: int = SMOKE_DATASET) -> dict:
    """A planned dataset in ``root`` (4 training + 2 test cases, smit_tiny, 64 mm, one fold in splits_final.json)
    and a stand-in encoder; returns the environment a user would have."""
    import json
    import sys

    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint

    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_pretrained": str(root / "weights")}
    make_demo_dataset(root / "raw", dataset_id, spec=SyntheticSpec(
        num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0, z_iqr_mm=(32.0, 48.0), short_share=0.0), progress=False)
    subprocess.run([sys.executable, "-m", "nnunet_swin", "plan_and_preprocess", "-d", str(dataset_id), "-pl",
                    "SMITPlanner", "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c",
                    "3d_fullres", "-npfp", "1", "-np", "1", "--no_pbar"], env=env, check=True, capture_output=True)
    pre = next((root / "pre").glob(f"Dataset{dataset_id}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / f"{SMOKE_PLANS}_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    plans = json.loads((pre / f"{SMOKE_PLANS}.json").read_text())
    write_standin_checkpoint(plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"],
                             root / "weights" / "smit_tiny.pth")
    return {"env": env, "results": root / "res" / pre.name}


@pytest.fixture(scope="session")
def plan_smoke_dataset():
    """The function that plans the smoke dataset into a folder (a fixture: test modules import no conftest)."""
    return _plan_smoke_dataset
