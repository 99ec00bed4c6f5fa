"""The demo's pretrained encoder: ``nnunet-swin pretrain`` (SMIT) on a synthetic CT-like corpus, on CPU, in minutes.

The demo and ``nnunet-swin study --preset demo`` fine-tune from an encoder this project really pretrained, not from
random weights: ``nnunet-swin pretrain --method smit`` on ``make_ct_corpus`` volumes (CT contrast, HU values, the
anatomy classes of the MRI-like demo data; every volume with its own anatomy, field of view, texture and contrast,
so the self-distillation has instance signal), reduced so it fits a CPU in a few minutes (``smit_tiny``, 32^3
crops, two volumes and two views per step, small projection heads, ``epochs x iterations`` steps, SMIT's ramps
scaled to the short run). What the encoder is comes from the checkpoint's own metadata (method, steps, corpus, the
exported encoder and why, whether the collapse monitor saw the distillation collapse), never from a fixed sentence:
it is a very short run, not a CT-pretrained encoder in the paper's sense. With ``distillation=False`` the demo
pretrains by reconstruction only (``--w-mpd 0 --w-itd 0``) and says so. The run is reused when its
``checkpoint_final.pth`` exists and resumed (``--continue``) when it was interrupted.
"""
from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from nnunet_swin.pretraining.trainer import FINAL, LATEST
from nnunet_swin.workflows.workspace import nnunet_swin_command, run_logged


@dataclass(frozen=True)
class DemoPretraining:
    """What the demo pretrains: sizes small enough for a CPU (defaults: 20 x 20 = 400 steps of 2 volumes at 32^3)."""

    backbone: str = "smit_tiny"
    method: str = "smit"      # or "smart" (the pretraining experiment runs both)
    epochs: int = 20
    iterations_per_epoch: int = 20
    corpus_cases: int = 12
    crop: int = 32
    batch_size: int = 2          # a step sees two volumes (one volume per step makes the distillation collapse)
    distillation: bool = True    # False: reconstruction only (for a corpus that carries no instance signal)
    seed: int = 0

    def output(self, folder: Path) -> Path:
        return Path(folder) / f"pretrain_{self.method}_{self.backbone}"

    def checkpoint(self, folder: Path) -> Path:
        """Where the finished run's checkpoint is (what ``nnUNet_swin_pretrained`` points at)."""
        return self.output(folder) / FINAL

    def arguments(self, images: Path, output: Path) -> list[str]:
        return ["pretrain", "-i", str(images), "-o", str(output), "--method", self.method, "-backbone", self.backbone,
                "--modality", "CT", "--epochs", str(self.epochs), "--iterations-per-epoch",
                str(self.iterations_per_epoch), "--crop", str(self.crop), "--batch-size", str(self.batch_size),
                "--device", "cpu", "--out-dim", "1024", "--head-hidden", "512", "--head-bottleneck", "64",
                "--lr-per-sample", "5e-4", "--save-every", "1", "--num-workers", "1", "--seed", str(self.seed),
                "--quiet"] + ([] if self.distillation else ["--w-mpd", "0", "--w-itd", "0"])


@dataclass
class DemoEncoder:
    checkpoint: Path
    command: str            # the `nnunet-swin pretrain ...` line that made it
    description: str        # one sentence for the reports


def pretrain_demo_encoder(folder: Path, env: dict[str, str], log_file: Path,
                          settings: DemoPretraining = DemoPretraining(), extra_images: tuple[Path, ...] = ()
                          ) -> DemoEncoder:
    """Make (or reuse, or resume) the demo's pretrained encoder under ``folder``; return where it is.
    ``extra_images``: more volumes for the pretraining set (e.g. real CT), copied in beside the synthetic corpus."""
    from nnunet_swin.datasets.synthetic import SyntheticSpec
    from nnunet_swin.datasets.synthetic_ct import CTSpec, make_ct_corpus

    folder = Path(folder)
    corpus = folder / "ct_corpus"
    if not corpus.is_dir():
        make_ct_corpus(corpus, settings.corpus_cases, CTSpec(anatomy=SyntheticSpec(seed=settings.seed)))
    for image in extra_images:
        if not (corpus / "images" / Path(image).name).is_file():
            shutil.copy(image, corpus / "images" / Path(image).name)
    output = settings.output(folder)
    args = settings.arguments(corpus / "images", output)
    command = "nnunet-swin " + shlex.join(args)
    checkpoint = settings.checkpoint(folder)
    if not checkpoint.is_file():
        resume = ["--continue"] if (output / LATEST).is_file() else []
        run_logged(nnunet_swin_command(*args, *resume), env, log_file)
    from nnunet_swin.networks.weights import read_checkpoint
    from nnunet_swin.networks.weights.metadata import encoder_summary, read_pretraining_metadata
    metadata = read_pretraining_metadata(read_checkpoint(checkpoint)) or {}
    extra = f" + {len(extra_images)} other volume(s)" if extra_images else ""
    description = (f"the {encoder_summary(metadata)}, on {settings.corpus_cases} synthetic CT-like volumes{extra}, "
                   f"{settings.crop}^3 crops, CPU"
                   + ("" if settings.distillation else "; reconstruction only (no distillation terms)")
                   + "; a very short pretraining, not the paper's CT-pretrained SMIT")
    return DemoEncoder(checkpoint=checkpoint, command=command, description=description)
