"""The pretraining loop: SMIT (and SMART) on cached volumes, checkpoints our fine-tuning adapters read.

One step (batch of ``B`` volumes, two views each, ``2B`` crops):

1. the teacher (EMA of the student; SMART: noisy) sees the unmasked views;
2. the block masks are drawn (SMIT: random; SMART: from the teacher's class-token attention, mixed with random
   blocks), independently per view and sample;
3. the student sees the masked views (mask token at the patch embedding);
4. ``L = w_mip MIP + w_mpd MPD + w_itd ITD (+ w_ctd CTD for SMART)``; AdamW with per-step warmup + cosine learning
   rate, gradient clipping, the heads' last layers frozen during the first epoch(s);
5. EMA update of the teacher with the cosine momentum of the global step; the centres' EMA update.

Exactness of ``--continue``: every random draw is a function of ``(seed, global step, rank)`` (masks, teacher noise,
drop path through a reseeded global generator) or of ``(seed, sample index)`` (crops), and the checkpoint holds
student, teacher, optimiser, scaler, centres, the data position (epoch, iteration), the loss history and the RNG
states, so a resumed run reproduces the uninterrupted run's losses.

Checkpoint layout (``checkpoint_latest.pth`` every ``save_every`` epochs, ``checkpoint_final.pth`` at the end; both
written atomically by ``nnunet_swin.io.save_checkpoint``, readable with ``torch.load(weights_only=True)``)::

    {"teacher": {"encoder.<our encoder key>": tensor, ...},   # the EMA teacher's encoder: what the adapters load
     "pretraining": {"student": ..., "teacher": ..., "optimizer": ..., "scaler": ..., "centres": ...,
                     "epoch": e, "iteration": i, "history": [...], "rng": {...}, "config": {...}},
     "metadata": {"format": "nnunet-swin pretraining", "method", "backbone", "spacing_zyx_mm", "intensity",
                  "epochs", "epochs_completed", "num_volumes", ...}}

The adapters (``nnunet_swin.networks.weights.unwrap``) look for ``student`` before ``teacher`` at the top level,
so the student is kept inside ``pretraining`` and the file loads the **teacher** (DINO/iBOT practice: the EMA
teacher is the better encoder) with 0 missing keys, format ``nnunet_swin``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.io import save_checkpoint, save_figure, write_json
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.weight_decay import adamw_param_groups
from nnunet_swin.networks.weights.metadata import FORMAT, FORMAT_VERSION
from nnunet_swin.pretraining import distributed as D
from nnunet_swin.pretraining.data import IntensityScheme, RankBatches, TwoViewCrops, build_cache, collate
from nnunet_swin.pretraining.losses import (Centre, cross_view_distillation, masked_l1, masked_patch_distillation,
                                            teacher_distribution)
from nnunet_swin.pretraining.masking import (attention_guided_mask, attention_to_blocks, block_grid,
                                             random_block_mask, to_resolution)
from nnunet_swin.pretraining.model import METHODS, PretrainingNetwork, build_pair, encoder_state
from nnunet_swin.pretraining.schedules import linear_ramp, teacher_momentum, warmup_cosine
from nnunet_swin.pretraining.teacher import NOISE_KINDS, ema_update, teacher_forward

LATEST, FINAL = "checkpoint_latest.pth", "checkpoint_final.pth"
LOG_FILE, HISTORY_FILE, CURVE_FILE = "pretrain_log.txt", "losses.json", "loss_curve.png"
LOSS_PARTS = ("mip", "mpd", "itd", "ctd")


@dataclass
class PretrainConfig:
    """Every setting of a pretraining run (defaults: SMIT's public script per the reference; SMART's unverified
    choices marked). Stored in the checkpoint; ``--continue`` reads it back."""
    method: str = "smit"
    backbone: str = "smit"
    modality: str = "CT"
    spacing: tuple = (1.0, 1.0, 1.0)               # target spacing (z, y, x) mm; the backbone's pretraining spacing
    hu_window: tuple = (-175.0, 250.0)
    mr_percentile: float = 99.0
    epochs: int = 500
    iterations_per_epoch: int = 250
    batch_size: int = 2                            # volumes per rank and step (two views each)
    crop: int | None = None                        # view side in voxels; None = the preset's pretrained input size
    region_scale: float = 4 / 3                    # both views come from one region of this many crop sides (128/96)
    # optimisation
    lr_per_sample: float = 1e-4                    # peak lr = lr_per_sample * global batch (SMIT: 1e-4 x 6)
    min_lr: float = 1e-6
    warmup_epochs: int = 20
    weight_decay: float = 0.04                     # [unverified for SMIT] iBOT/DINO's starting value; no decay on
    clip_grad: float = 3.0                         #   biases, norms, relative-position tables, mask token
    freeze_last_layer_epochs: int = 1
    drop_path: float = 0.3                         # student only (the teacher runs in eval mode)
    # masking, heads, distillation
    mask_block: int = 16
    mask_ratio: float = 0.7
    out_dim: int = 8192
    head_hidden: int = 2048
    head_bottleneck: int = 256
    student_temp: float = 0.1
    teacher_temp: tuple = (0.04, 0.07)
    teacher_temp_warmup_epochs: int = 30           # global: 0.04 -> 0.07 over these epochs
    patch_temp_delay_epochs: int = 30              # patch: held at 0.04 for these epochs, then ramped over
    patch_temp_warmup_epochs: int = 30             #   these epochs
    centre_momentum: float = 0.9
    teacher_momentum: float = 0.996
    w_mip: float = 1.0
    w_mpd: float = 0.1
    w_itd: float = 0.1
    # SMART (every choice [unverified]; see the README section "Pretraining your own encoder")
    w_ctd: float = 0.1                             # class-token distillation
    guided_masking: bool = True                    # teacher class attention ranks the blocks (False: random, SMIT)
    random_share: float = 0.5                      # share of the masked blocks drawn at random
    teacher_noise: str = "weights"                 # "weights" | "dropout" | "none"
    teacher_noise_std: float = 0.01                # relative weight noise, or dropout probability
    class_attention_heads: int | None = None       # None: the last stage's head count
    # run
    seed: int = 0
    save_every: int = 10
    num_workers: int = 2

    def validate(self) -> "PretrainConfig":
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}; use --method smit or --method smart")
        preset = get_preset(self.backbone)
        IntensityScheme(self.modality, tuple(self.hu_window), self.mr_percentile)
        if self.teacher_noise not in NOISE_KINDS:
            raise UserError(f"unknown teacher noise {self.teacher_noise!r}; choose one of {', '.join(NOISE_KINDS)}")
        if self.crop is None:
            self.crop = int(preset["pretrained_input_size"][0])
        divisor = preset["patch_size"][0] * 2 ** len(preset["depths"])
        step = math.lcm(divisor, self.mask_block)
        if self.crop <= 0 or self.crop % step:
            raise UserError(f"--crop {self.crop} must be a positive multiple of {step} (the {self.backbone} encoder "
                            f"halves {len(preset['depths'])} times after a patch of {preset['patch_size'][0]}, and "
                            f"the mask block is {self.mask_block}); e.g. --crop {max(step, self.crop // step * step)}")
        if self.mask_block % preset["patch_size"][0]:
            raise UserError(f"--mask-block {self.mask_block} must be a multiple of the patch size "
                            f"{preset['patch_size'][0]}")
        for name in ("epochs", "iterations_per_epoch", "batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise UserError(f"--mask-ratio must be in (0, 1), got {self.mask_ratio}")
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise UserError(f"--spacing needs three positive values (z y x mm), got {list(self.spacing)}")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})

    def intensity(self) -> IntensityScheme:
        return IntensityScheme(self.modality, tuple(self.hu_window), self.mr_percentile)


@dataclass
class RunState:
    epoch: int = 0            # epoch in progress (or next to run)
    iteration: int = 0        # next iteration inside ``epoch``
    history: list = field(default_factory=list)   # one dict per step (epoch, iteration, losses, lr, momentum)


def loss_targets(block_mask: torch.Tensor, voxel_valid: torch.Tensor, token_grid: tuple[int, int, int],
                 token_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the losses look: (voxels ``(B, D, H, W)`` masked AND real -> MIP, stage-3 tokens ``(B, N3)`` masked AND
    real -> MPD). Padding is never a target."""
    voxels = to_resolution(block_mask, tuple(voxel_valid.shape[1:])) & voxel_valid
    tokens = to_resolution(block_mask, token_grid).flatten(1) & token_valid
    return voxels, tokens


def _rng_states() -> dict:
    np_state = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                        int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in states["python"]))
    n = states["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    if "cuda" in states and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(states["cuda"])


class Pretrainer:
    """``Pretrainer(config, output_folder, images, device="cpu"|"cuda", resume=False).run()``.

    ``images``: the files to pretrain on (``discover_images``). ``run(stop_after_epochs=None)`` trains to
    ``config.epochs`` (or stops early after that many epochs of this call, for tests) and returns the history."""

    def __init__(self, config: PretrainConfig, output_folder: str | Path, images: list[Path], device: str = "cpu",
                 resume: bool = False, progress: bool = True, log_to_console: bool = True) -> None:
        self.config = config.validate()
        self.out = Path(output_folder)
        self.images = list(images)
        self.progress, self.log_to_console = progress, log_to_console
        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        if kind == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA device is visible; use --device cpu")
        self.world = D.init_world(kind)
        self.device = torch.device(f"cuda:{self.world.local_rank}" if kind == "cuda" else "cpu")
        self.amp_dtype = None
        if kind == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.resume = resume
        self._log_lines: list[str] = []

    # ----------------------------------------------------------------------------------------------- logging
    def log(self, text: str) -> None:
        if not self.world.main:
            return
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp}: {text}"
        if self.log_to_console:
            print(text, flush=True)
        self._log_lines.append(line)
        if self.out.is_dir():
            with open(self.out / LOG_FILE, "a", encoding="utf-8") as f:
                f.write("\n".join(self._log_lines) + "\n")
            self._log_lines = []

    # ------------------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        cfg = self.config
        min_side = cfg.mask_block
        error = None
        if self.world.main:
            try:
                self.entries = build_cache(self.images, self.out / "cache", tuple(cfg.spacing), cfg.intensity(),
                                           min_side, skip_bad=getattr(self, "skip_bad", False), log=self.log,
                                           progress=self.progress)
            except UserError as e:
                error = str(e)
        error = D.broadcast_object(error, self.world)
        if error is not None:
            raise UserError(error)
        if not self.world.main:
            self.entries = build_cache(self.images, self.out / "cache", tuple(cfg.spacing), cfg.intensity(),
                                       min_side, progress=False)
        self.build_models()
        if self.resume:
            self.load(self.out / LATEST)
        self.dataset = TwoViewCrops(self.entries, cfg.crop, cfg.iterations_per_epoch * self.global_batch, cfg.seed,
                                    cfg.region_scale)

    def build_models(self) -> None:
        """Student, teacher, centres, optimiser, scaler and the schedules' constants (no data needed)."""
        cfg = self.config
        self.preset = get_preset(cfg.backbone)
        preset = self.preset
        torch.manual_seed(cfg.seed)  # same initial weights for the same seed (every rank; rank 0's are broadcast)
        self.student, self.teacher = build_pair(preset, cfg.method, out_dim=cfg.out_dim, head_hidden=cfg.head_hidden,
                                                head_bottleneck=cfg.head_bottleneck,
                                                class_attention_heads=cfg.class_attention_heads,
                                                drop_path_rate=cfg.drop_path)
        self.student.to(self.device)
        self.teacher.to(self.device)
        self.centres = nn.ModuleDict({"patch": Centre(cfg.out_dim, cfg.centre_momentum),
                                      "global": Centre(cfg.out_dim, cfg.centre_momentum)})
        if cfg.method == "smart":
            self.centres["class"] = Centre(cfg.out_dim, cfg.centre_momentum)
        self.centres.to(self.device)
        self.optimizer = torch.optim.AdamW(adamw_param_groups(self.student, cfg.weight_decay), lr=0.0,
                                           weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.state = RunState()
        self.grid = block_grid((cfg.crop,) * 3, cfg.mask_block)
        self.global_batch = cfg.batch_size * self.world.size
        self.peak_lr = cfg.lr_per_sample * self.global_batch
        self.total_steps = cfg.epochs * cfg.iterations_per_epoch
        D.broadcast_module(self.student, self.world)
        self.teacher.load_state_dict(self.student.state_dict(), strict=False)

    # ------------------------------------------------------------------------------------------------ one step
    def _generator(self, step: int, stream: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(((self.config.seed * 1_000_003 + step) * 131 + self.world.rank) * 17 + stream)
        return g

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def temperatures(self, epoch: int) -> tuple[float, float]:
        cfg = self.config
        t0, t1 = cfg.teacher_temp
        return (linear_ramp(epoch, t0, t1, cfg.teacher_temp_warmup_epochs),
                linear_ramp(epoch, t0, t1, cfg.patch_temp_warmup_epochs, cfg.patch_temp_delay_epochs))

    def train_step(self, views: torch.Tensor, valid: torch.Tensor, epoch: int, iteration: int) -> dict:
        """``views`` ``(2, B, 1, S, S, S)`` and ``valid`` ``(2, B, S, S, S)`` in nnU-Net's (Z, Y, X) order."""
        cfg = self.config
        step = epoch * cfg.iterations_per_epoch + iteration
        torch.manual_seed(((cfg.seed * 7_919 + step) * 104_729 + self.world.rank) % (2 ** 63))
        b = views.shape[1]
        x = views.flatten(0, 1).permute(0, 1, 4, 3, 2).contiguous().to(self.device, non_blocking=True)  # (2B,1,X,Y,Z)
        v = valid.flatten(0, 1).permute(0, 3, 2, 1).contiguous().to(self.device, non_blocking=True)
        self.student.train()
        smart = cfg.method == "smart"
        with self._autocast():
            t = teacher_forward(self.teacher, cfg.teacher_noise if smart else "none", cfg.teacher_noise_std, x, v,
                                generator=self._generator(step, 1))
        if smart and cfg.guided_masking:
            att = t["attention"].float().mean(1).reshape(2 * b, *t["grid"])
            mask = attention_guided_mask(attention_to_blocks(att, self.grid), cfg.mask_ratio, cfg.random_share,
                                         generator=self._generator(step, 2))
        else:
            mask = random_block_mask(2 * b, self.grid, cfg.mask_ratio, generator=self._generator(step, 2),
                                     device=self.device)
        with self._autocast():
            s = self.student(x, v, mask)
        temp_g, temp_p = self.temperatures(epoch)
        voxel_mask, token_mask = loss_targets(mask, v, t["grid"], t["token_valid"])
        tp = teacher_distribution(t["patch_logits"], self.centres["patch"].value, temp_p)
        parts = {"mpd": masked_patch_distillation(list(tp.chunk(2)), list(s["patch_logits"].chunk(2)),
                                                  list(token_mask.chunk(2)), cfg.student_temp)}
        tg = teacher_distribution(t["global_logits"], self.centres["global"].value, temp_g)
        parts["itd"] = cross_view_distillation(list(tg.chunk(2)), list(s["global_logits"].chunk(2)), cfg.student_temp)
        parts["mip"] = masked_l1(x.float(), s["reconstruction"].float(), voxel_mask.unsqueeze(1))
        if smart:
            tc = teacher_distribution(t["class_logits"], self.centres["class"].value, temp_g)
            parts["ctd"] = cross_view_distillation(list(tc.chunk(2)), list(s["class_logits"].chunk(2)),
                                                   cfg.student_temp)
        weights = {"mip": cfg.w_mip, "mpd": cfg.w_mpd, "itd": cfg.w_itd, "ctd": cfg.w_ctd}
        loss = sum(weights[k] * val for k, val in parts.items())
        if not torch.isfinite(loss):
            raise UserError(f"the pretraining loss became {loss.item()} at epoch {epoch}, iteration {iteration}; "
                            "lower the learning rate (--lr-per-sample) or check the input intensities")

        lr = warmup_cosine(step, self.total_steps, cfg.warmup_epochs * cfg.iterations_per_epoch, self.peak_lr,
                           cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        params = [p for p in self.student.parameters() if p.requires_grad]
        D.average_gradients(params, self.world)
        self.scaler.unscale_(self.optimizer)
        if cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        if epoch < cfg.freeze_last_layer_epochs:
            for name, p in self.student.named_parameters():
                if "last_layer" in name:
                    p.grad = None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        momentum = teacher_momentum(step, self.total_steps, cfg.teacher_momentum)
        ema_update(self.teacher, self.student, momentum)
        self._update_centres(t)
        values = torch.stack([loss.detach().float()] + [parts[k].detach().float() for k in parts])
        D.all_reduce_mean_([values], self.world)
        out = {"loss": float(values[0])}
        out.update({k: float(val) for k, val in zip(parts, values[1:])})
        out.update({"lr": lr, "momentum": momentum, "teacher_temp_global": temp_g, "teacher_temp_patch": temp_p})
        return out

    @torch.no_grad()
    def _update_centres(self, t: dict) -> None:
        valid = t["token_valid"].unsqueeze(-1).float()
        stats = [t["global_logits"].float().mean(0),
                 (t["patch_logits"].float() * valid).sum((0, 1)) / valid.sum().clamp(min=1.0)]
        if "class_logits" in t:
            stats.append(t["class_logits"].float().mean(0))
        D.all_reduce_mean_(stats, self.world)
        self.centres["global"].update(stats[0])
        self.centres["patch"].update(stats[1])
        if "class_logits" in t:
            self.centres["class"].update(stats[2])

    # ------------------------------------------------------------------------------------------------ the loop
    def run(self, stop_after_epochs: int | None = None) -> list[dict]:
        cfg = self.config
        if not hasattr(self, "student"):
            self.setup()
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.log(f"nnunet-swin pretrain: method {cfg.method}, backbone {cfg.backbone}, {len(self.entries)} volumes, "
                 f"crop {cfg.crop}^3, batch {cfg.batch_size} x {self.world.size} rank(s), {cfg.epochs} epochs x "
                 f"{cfg.iterations_per_epoch} iterations, device {self.device}"
                 + (f" (autocast {self.amp_dtype})" if self.amp_dtype else "")
                 + (f"; continuing at epoch {self.state.epoch}, iteration {self.state.iteration}" if self.resume else ""))
        done_here = 0
        while self.state.epoch < cfg.epochs:
            if stop_after_epochs is not None and done_here >= stop_after_epochs:
                break
            epoch = self.state.epoch
            sampler = RankBatches(epoch, cfg.iterations_per_epoch, cfg.batch_size, self.world.rank, self.world.size,
                                  self.state.iteration)
            loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                                                 collate_fn=collate, pin_memory=self.device.type == "cuda")
            bar = None
            if self.progress and self.world.main:
                from tqdm import tqdm
                bar = tqdm(total=cfg.iterations_per_epoch, initial=self.state.iteration,
                           desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it", dynamic_ncols=True)
            started = time.time()
            for views, valid, volumes, samples in loader:
                record = self.train_step(views, valid, epoch, self.state.iteration)
                record.update({"epoch": epoch, "iteration": self.state.iteration,
                               "volumes": [int(i) for i in volumes], "samples": [int(i) for i in samples]})
                self.state.history.append(record)
                self.state.iteration += 1
                if bar is not None:
                    bar.set_postfix({k: f"{record[k]:.4f}" for k in ("loss",) + LOSS_PARTS if k in record})
                    bar.update(1)
            if bar is not None:
                bar.close()
            self.state.epoch, self.state.iteration = epoch + 1, 0
            done_here += 1
            means = self.epoch_means(epoch)
            self.log(f"epoch {epoch + 1}/{cfg.epochs} ({time.time() - started:.1f} s): "
                     + ", ".join(f"{k} {means[k]:.4f}" for k in ("loss",) + LOSS_PARTS if k in means)
                     + f", lr {means['lr']:.2e}, momentum {means['momentum']:.5f}")
            if self.state.epoch == cfg.epochs or self.state.epoch % cfg.save_every == 0:
                self.save(self.out / LATEST)
        if self.state.epoch >= cfg.epochs:
            self.finish()
        return self.state.history

    def epoch_means(self, epoch: int) -> dict:
        rows = [r for r in self.state.history if r["epoch"] == epoch]
        keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
        return {k: float(np.mean([r[k] for r in rows])) for k in keys}

    def finish(self) -> None:
        in_sync = D.assert_in_sync(self.student, self.world)
        if self.world.distributed:
            self.log(f"ranks in sync: {in_sync} ({self.world.size} ranks)")
            if not in_sync:
                raise RuntimeError("the DDP ranks hold different student weights at the end of pretraining")
        self.save(self.out / FINAL, finished=True)
        if self.world.main:
            (self.out / LATEST).unlink(missing_ok=True)
        self.log(f"finished: {self.out / FINAL} (load it with `export nnUNet_swin_pretrained={self.out / FINAL}`)")

    # ------------------------------------------------------------------------------------------- checkpoints
    def metadata(self, finished: bool) -> dict:
        cfg = self.config
        import nnunet_swin
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "method": cfg.method, "backbone": cfg.backbone,
                "arch_kwargs": self.preset, "in_channels": 1, "crop": cfg.crop, "spacing_zyx_mm": list(cfg.spacing),
                "intensity": cfg.intensity().describe(), "epochs": cfg.epochs,
                "epochs_completed": self.state.epoch, "iterations_per_epoch": cfg.iterations_per_epoch,
                "batch_size_per_rank": cfg.batch_size, "world_size": self.world.size,
                "num_volumes": len(self.entries), "encoder_loaded": "teacher", "finished": finished,
                "axis_order": "encoder input (X, Y, Z) = nnU-Net (Z, Y, X) permuted, as in SwinSegmentationNetwork",
                "nnunet_swin_version": str(nnunet_swin.__version__), "torch_version": str(torch.__version__),
                "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def save(self, path: Path, finished: bool = False) -> None:
        if not self.world.main:
            D.barrier(self.world)
            return
        cfg = self.config
        obj = {
            "teacher": encoder_state(self.teacher),
            "pretraining": {
                "student": {k: v.detach().cpu() for k, v in self.student.state_dict().items()},
                "teacher": {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "centres": {k: v.detach().cpu() for k, v in self.centres.state_dict().items()},
                "epoch": self.state.epoch, "iteration": self.state.iteration, "history": self.state.history,
                "rng": _rng_states(), "config": asdict(cfg)},
            "metadata": self.metadata(finished),
        }
        save_checkpoint(path, obj)
        write_json(self.out / HISTORY_FILE, {"config": asdict(cfg), "history": self.state.history})
        self.plot()
        D.barrier(self.world)

    def load(self, path: Path) -> None:
        from nnunet_swin.networks.weights import read_checkpoint
        obj = read_checkpoint(path)
        state = obj["pretraining"]
        self.student.load_state_dict(state["student"])
        self.teacher.load_state_dict(state["teacher"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.centres.load_state_dict(state["centres"])
        self.state = RunState(int(state["epoch"]), int(state["iteration"]), list(state["history"]))
        _set_rng_states(state["rng"])

    def plot(self) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        epochs = sorted({r["epoch"] for r in self.state.history})
        if not epochs:
            return
        means = [self.epoch_means(e) for e in epochs]
        fig, ax = plt.subplots(figsize=(6, 4))
        for k in ("loss",) + LOSS_PARTS:
            if k in means[0]:
                ax.plot([e + 1 for e in epochs], [m[k] for m in means], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean loss")
        ax.set_yscale("log")
        ax.set_title(f"{self.config.method} pretraining, {self.config.backbone}")
        ax.legend()
        save_figure(self.out / CURVE_FILE, fig)
        plt.close(fig)


def read_run_config(path: Path) -> PretrainConfig:
    """The configuration stored in a pretraining checkpoint (``UserError`` if it is not one)."""
    from nnunet_swin.networks.weights import read_checkpoint
    obj = read_checkpoint(path)
    if not (isinstance(obj, dict) and isinstance(obj.get("pretraining"), dict) and "config" in obj["pretraining"]):
        raise UserError(f"{path} is not a checkpoint of `nnunet-swin pretrain`; cannot continue from it")
    return PretrainConfig.from_dict(obj["pretraining"]["config"])
