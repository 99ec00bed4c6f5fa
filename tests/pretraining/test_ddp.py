"""A 2-process gloo DDP run on CPU through torchrun: sharded data, ranks in sync, a loadable checkpoint."""
import os
import subprocess

import pytest
import sys

from nnunet_swin.networks.weights import load_pretrained_encoder, read_checkpoint
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
from nnunet_swin.pretraining.trainer import FINAL


@pytest.mark.slow
def test_two_rank_gloo_run_shards_the_data_and_keeps_the_ranks_in_sync(ct_folder, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "nnunet_swin", "pretrain", "-i", str(ct_folder), "-o", str(out), "--method", "smart", "-backbone",
           "smit_tiny", "--modality", "CT", "--epochs", "2", "--iterations-per-epoch", "2", "--crop", "32",
           "--batch-size", "1", "--device", "cpu", "--num-workers", "1", "--out-dim", "32", "--head-hidden", "16",
           "--head-bottleneck", "8", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "pretrain_log.txt").read_text()
    assert "batch 1 x 2 rank(s)" in log and "ranks in sync: True (2 ranks)" in log
    obj = read_checkpoint(out / FINAL)
    assert obj["metadata"]["world_size"] == 2
    # rank 0 took the even global sample indices of each epoch (rank 1 the odd ones)
    assert [r["samples"] for r in obj["pretraining"]["history"]] == [[0], [2], [4], [6]]
    report = load_pretrained_encoder(SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")), out / FINAL)
    assert report.complete and not report.missing
