"""The pretraining loop: one loop for every method (``nnunet_swin.pretraining.methods``: one class per method, a
new method is a new file there) on cached volumes; checkpoints our fine-tuning adapters read.

One step (batch of ``B`` volumes, two views each, ``2B`` crops):

1. the teacher (EMA of the student; the method may add noise: SMART) sees the unmasked views;
2. the method draws the block masks (SMIT: random at 0.7, or iBOT's variable masking; SMART: from the teacher's
   class-token attention, mixed with random blocks), independently per view and sample;
3. the student sees the masked views (mask token at the patch embedding);
4. the method's losses, ``L = sum_k w_k L_k`` (SMIT: MIP, MPD, ITD; SMART adds CTD); AdamW with per-step warmup +
   cosine learning rate, gradient clipping, the heads' last layers frozen at the start;
5. EMA update of the teacher with the cosine momentum of the global step; the centres' EMA update;
6. the collapse monitor (``monitor.py``): per head, teacher entropy, entropy of the batch-mean teacher
   distribution, KL(teacher || student), teacher logit std over the batch, cross-sample cosine of the student's
   bottleneck (SMART: class-attention entropy), into ``losses.json``'s history. An epoch in which every step shows
   a uniform teacher and identical student outputs prints one ``warning: distillation collapsed ...`` line.

Short runs: SMIT's ramps are counted in epochs of a 500-epoch run (lr warmup 20, teacher temperature 30, patch
temperature held 30 then ramped 30, last layer frozen 1). When a run is shorter than one of them, every ramp is
scaled by ``epochs / 500`` (kept as SMIT's share of the run) and counted in steps; the log says so
(``--no-ramp-scaling`` keeps them as given).

Exactness of ``--continue``: every random draw is a function of ``(seed, global step, rank)`` (masks, teacher noise,
drop path through a reseeded global generator) or of ``(seed, sample index)`` (crops), and the checkpoint holds
student, teacher, optimiser, scaler, centres, the data position (epoch, iteration), the loss history and the RNG
states, so a resumed run reproduces the uninterrupted run's losses.

Checkpoint layout (``checkpoint_latest.pth`` every ``save_every`` epochs, ``checkpoint_final.pth`` at the end; both
written atomically by ``nnunet_swin.io.save_checkpoint``, readable with ``torch.load(weights_only=True)``)::

    {"student" | "teacher": {"encoder.<our encoder key>": tensor, ...},   # the encoder the adapters load (one key)
     "pretraining": {"student": ..., "teacher": ...,                        # both whole networks (their encoder.*)
                     "optimizer": ..., "scaler": ..., "centres": ...,
                     "epoch": e, "iteration": i, "history": [...], "rng": {...}, "config": {...}},
     "metadata": {"format": "nnunet-swin pretraining", "method", "backbone", "spacing_zyx_mm", "intensity",
                  "epochs", "epochs_completed", "steps", "num_volumes", "teacher_init_share",
                  "encoder_loaded", "encoder_rule", "distance_from_init", "monitor", ...}}

Which encoder is exported (the rule, ``--encoder auto``): the EMA teacher keeps ``prod_t m_t`` of its initial
weights (``teacher_init_share``: 0.74 after 150 steps, 0.45 after 400, 0.14 after 1000 at SMIT's 0.996). While that
share is above ``--teacher-share-threshold`` (0.05) the teacher is mostly the random initialisation, so the
**student** is exported (SMIT's public script saves the student); below it the **teacher** (DINO/iBOT practice for
long runs). ``--encoder student|teacher`` overrides the rule. The metadata says which and why; ``weights inspect``
and the trainer's load report print it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.io import save_checkpoint, save_figure, write_json
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.weight_decay import adamw_param_groups
from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY, FORMAT, FORMAT_VERSION, adaptation_plan
from nnunet_swin.pretraining import distributed as D
from nnunet_swin.pretraining.data import RankBatches, TwoViewCrops, build_cache, collate
from nnunet_swin.pretraining import monitor as M
from nnunet_swin.pretraining.losses import Centre
from nnunet_swin.pretraining.masking import block_grid, to_resolution
from nnunet_swin.pretraining.methods import StepInputs, get_method
from nnunet_swin.pretraining.model import build_pair, encoder_state
from nnunet_swin.pretraining.schedules import (REFERENCE_EPOCHS, RampPlan, linear_ramp, teacher_init_share, teacher_momentum,
                                               warmup_cosine)
from nnunet_swin.pretraining.settings import FINAL, LATEST, PretrainConfig, read_run_config  # noqa: F401
from nnunet_swin.pretraining.teacher import ema_update, teacher_forward

LOG_FILE, HISTORY_FILE, CURVE_FILE = "pretrain_log.txt", "losses.json", "loss_curve.png"
LOSS_PARTS = ("mip", "mpd", "itd", "ctd")


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
        if self.world.main and self.out.is_dir():
            from nnunet_swin.io import sweep_temporaries
            for removed in sweep_temporaries(self.out):        # e.g. a checkpoint save killed half-way
                self.log(f"removed {removed.name}, a temporary file an interrupted save left behind")
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
        self.method = get_method(cfg.method)(cfg)
        torch.manual_seed(cfg.seed)  # same initial weights for the same seed (every rank; rank 0's are broadcast)
        self.student, self.teacher = build_pair(preset, cfg.method, out_dim=cfg.out_dim, head_hidden=cfg.head_hidden,
                                                head_bottleneck=cfg.head_bottleneck,
                                                class_attention_heads=cfg.class_attention_heads,
                                                drop_path_rate=cfg.drop_path, norm_class_query=cfg.norm_class_query)
        self.student.to(self.device)
        self.teacher.to(self.device)
        self.centres = nn.ModuleDict({name: Centre(cfg.out_dim, cfg.centre_momentum) for name in self.method.centres})
        self.centres.to(self.device)
        self.optimizer = torch.optim.AdamW(adamw_param_groups(self.student, cfg.weight_decay), lr=0.0,
                                           weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.state = RunState()
        self.grid = block_grid((cfg.crop,) * 3, cfg.mask_block)
        self.global_batch = cfg.batch_size * self.world.size
        self.peak_lr = cfg.lr_per_sample * self.global_batch
        self.total_steps = cfg.epochs * cfg.iterations_per_epoch
        self.ramps = RampPlan.for_run(cfg.epochs, cfg.iterations_per_epoch, cfg.warmup_epochs,
                                      cfg.teacher_temp_warmup_epochs, cfg.patch_temp_delay_epochs,
                                      cfg.patch_temp_warmup_epochs, cfg.freeze_last_layer_epochs, cfg.ramp_scaling)
        D.broadcast_module(self.student, self.world)
        self.teacher.load_state_dict(self.student.state_dict(), strict=False)
        self.initial_encoder = encoder_state(self.student)      # for the distance each encoder moved
        self.collapse: dict | None = None                       # the first epoch the monitor saw collapse

    # ------------------------------------------------------------------------------------------------ one step
    def _generator(self, step: int, stream: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(((self.config.seed * 1_000_003 + step) * 131 + self.world.rank) * 17 + stream)
        return g

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def temperatures(self, step: int) -> dict[str, float]:
        """Teacher temperatures at a global step, by centre name (the class token follows the global one)."""
        t0, t1 = self.config.teacher_temp
        r = self.ramps
        glob = linear_ramp(step, t0, t1, r.temp_warmup)
        return {"global": glob, "class": glob, "patch": linear_ramp(step, t0, t1, r.patch_warmup, r.patch_delay)}

    def train_step(self, views: torch.Tensor, valid: torch.Tensor, epoch: int, iteration: int) -> dict:
        """``views`` ``(2, B, 1, S, S, S)`` and ``valid`` ``(2, B, S, S, S)`` in nnU-Net's (Z, Y, X) order."""
        cfg = self.config
        step = epoch * cfg.iterations_per_epoch + iteration
        torch.manual_seed(((cfg.seed * 7_919 + step) * 104_729 + self.world.rank) % (2 ** 63))
        x = views.flatten(0, 1).permute(0, 1, 4, 3, 2).contiguous().to(self.device, non_blocking=True)  # (2B,1,X,Y,Z)
        v = valid.flatten(0, 1).permute(0, 3, 2, 1).contiguous().to(self.device, non_blocking=True)
        inputs = StepInputs(x=x, voxel_valid=v, batch=views.shape[1], step=step,
                            temperatures=self.temperatures(step), generator=lambda k: self._generator(step, k))
        self.student.train()
        kind, sigma = self.method.teacher_noise()
        with self._autocast():
            t = teacher_forward(self.teacher, kind, sigma, x, v, generator=self._generator(step, 1))
        mask = self.method.masks(t, inputs, self.grid)
        with self._autocast():
            s = self.student(x, v, mask)
        voxel_mask, token_mask = loss_targets(mask, v, t["grid"], t["token_valid"])
        targets = {"voxels": voxel_mask, "tokens": token_mask, "block_mask": mask}
        parts = self.method.losses(t, s, inputs, targets, self.centres)
        loss = sum(getattr(cfg, f"w_{k}") * val for k, val in parts.items())
        if not torch.isfinite(loss):
            raise UserError(f"the pretraining loss became {loss.item()} at epoch {epoch}, iteration {iteration}; "
                            "lower the learning rate (--lr-per-sample) or check the input intensities")

        lr = warmup_cosine(step, self.total_steps, self.ramps.lr_warmup, self.peak_lr, cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        params = [p for p in self.student.parameters() if p.requires_grad]
        D.average_gradients(params, self.world)
        self.scaler.unscale_(self.optimizer)
        if cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        if step < self.ramps.freeze_last_layer:
            for name, p in self.student.named_parameters():
                if "last_layer" in name:
                    p.grad = None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        momentum = teacher_momentum(step, self.total_steps, cfg.teacher_momentum)
        ema_update(self.teacher, self.student, momentum)
        watch = self.method.monitor(t, s, inputs, targets, self.centres)   # before the centres move
        self._update_centres(t)
        values = torch.stack([loss.detach().float()] + [parts[k].detach().float() for k in parts]
                             + [torch.tensor(float(watch[k])) for k in watch])
        D.all_reduce_mean_([values], self.world)
        out = {"loss": float(values[0])}
        out.update({k: float(val) for k, val in zip(parts, values[1:1 + len(parts)])})
        out.update({"lr": lr, "momentum": momentum, "teacher_temp_global": inputs.temperatures["global"],
                    "teacher_temp_patch": inputs.temperatures["patch"],
                    "masked_share": float(mask.float().mean())})
        out.update({k: float(val) for k, val in zip(watch, values[1 + len(parts):])})
        return out

    @torch.no_grad()
    def _update_centres(self, t: dict) -> None:
        stats = self.method.centre_statistics(t)
        names = list(stats)
        values = [stats[n] for n in names]
        D.all_reduce_mean_(values, self.world)
        for name, value in zip(names, values):
            self.centres[name].update(value)

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
        self.log_schedules()
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
            entropies = [f"{h.upper()} {means['teacher_entropy_' + h]:.4f}" for h in M.HEADS
                         if f"teacher_entropy_{h}" in means]
            self.log(f"epoch {epoch + 1}/{cfg.epochs} ({time.time() - started:.1f} s): "
                     + ", ".join(f"{k} {means[k]:.4f}" for k in ("loss",) + LOSS_PARTS if k in means)
                     + f", lr {means['lr']:.2e}, momentum {means['momentum']:.5f}"
                     + (f"; teacher entropy (ln K {math.log(cfg.out_dim):.4f}): " + ", ".join(entropies)
                        if entropies else "")
                     + (f", class attention entropy {means['class_attention_entropy']:.4f}"
                        if "class_attention_entropy" in means else ""))
            self.check_collapse(epoch)
            if self.state.epoch == cfg.epochs or self.state.epoch % cfg.save_every == 0:
                self.save(self.out / LATEST)
        if self.state.epoch >= cfg.epochs:
            self.finish()
        return self.state.history

    def epoch_means(self, epoch: int) -> dict:
        rows = [r for r in self.state.history if r["epoch"] == epoch]
        keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
        return {k: float(np.nanmean([np.nan if r.get(k) is None else r[k] for r in rows])) for k in keys}

    def log_schedules(self) -> None:
        cfg, r = self.config, self.ramps
        text = (f"schedules in steps: lr warmup {r.lr_warmup}, teacher temperature {cfg.teacher_temp[0]:g} -> "
                f"{cfg.teacher_temp[1]:g} over {r.temp_warmup} (patch: held {r.patch_delay}, then over "
                f"{r.patch_warmup}), last layer frozen {r.freeze_last_layer}; teacher momentum "
                f"{cfg.teacher_momentum:g} -> 1, centre momentum {cfg.centre_momentum:g}; masking {cfg.masking}")
        if r.scale != 1.0:
            text += (f". Short run: {cfg.epochs} epochs are fewer than SMIT's ramps (in epochs: lr warmup "
                     f"{cfg.warmup_epochs}, temperature {cfg.teacher_temp_warmup_epochs}, patch "
                     f"{cfg.patch_temp_delay_epochs} + {cfg.patch_temp_warmup_epochs}, freeze "
                     f"{cfg.freeze_last_layer_epochs}), so every ramp was scaled by {cfg.epochs}/{REFERENCE_EPOCHS} "
                     f"= {r.scale:g} (its share of SMIT's {REFERENCE_EPOCHS}-epoch run; --no-ramp-scaling keeps them)")
        self.log(text)
        if self.global_batch < 2:
            self.log("warning: one volume per step: the centre and the cross-sample statistics see a single volume, "
                     "which makes the distillation collapse easily; use --batch-size 2 or more")

    def check_collapse(self, epoch: int) -> None:
        """The collapse monitor's verdict on one epoch: one warning line the first time it sees collapse."""
        rows = [r for r in self.state.history if r["epoch"] == epoch]
        heads = M.collapsed_heads(rows, self.config.out_dim)
        if heads and self.collapse is None:
            self.collapse = {"epoch": epoch + 1, "step": epoch * self.config.iterations_per_epoch + len(rows),
                             "heads": heads}
            self.log(M.collapse_warning(heads, epoch, rows, self.config.out_dim))

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
    def encoder_distances(self) -> dict[str, float]:
        """L2 distance of each encoder from the common initial encoder (over all encoder tensors)."""
        out = {}
        for name, net in (("student", self.student), ("teacher", self.teacher)):
            now = encoder_state(net)
            total = sum(float(((now[k].float() - v.float()) ** 2).sum()) for k, v in self.initial_encoder.items()
                        if v.is_floating_point())
            out[name] = math.sqrt(total)
        return out

    def export_choice(self) -> tuple[str, float, str]:
        """(encoder, teacher's remaining share of its init, why) by the rule of the module docstring."""
        cfg = self.config
        steps = self.state.epoch * cfg.iterations_per_epoch + self.state.iteration
        share = teacher_init_share(steps, self.total_steps, cfg.teacher_momentum)
        if cfg.encoder != "auto":
            return cfg.encoder, share, f"--encoder {cfg.encoder} (the rule would pick the " \
                f"{'student' if share > cfg.teacher_share_threshold else 'teacher'})"
        if share > cfg.teacher_share_threshold:
            return "student", share, (f"the EMA teacher still holds {share:.2f} of its random initialisation "
                                      f"(> {cfg.teacher_share_threshold:g}) after {steps} steps")
        return "teacher", share, (f"the EMA teacher holds only {share:.3f} of its initialisation "
                                  f"(<= {cfg.teacher_share_threshold:g}) after {steps} steps")

    def monitor_summary(self) -> dict:
        last = self.state.epoch - 1
        summary = {"collapsed": self.collapse is not None, "first_collapse": self.collapse}
        if last >= 0 and any(r["epoch"] == last for r in self.state.history):
            means = self.epoch_means(last)
            summary["last_epoch"] = {k: v for k, v in means.items()
                                     if any(k.startswith(p) for p in M.STATISTICS + ("class_attention",))
                                     or k in LOSS_PARTS}
        summary["ln_k"] = math.log(self.config.out_dim)
        return summary

    def metadata(self, finished: bool) -> dict:
        cfg = self.config
        import nnunet_swin
        encoder, share, why = self.export_choice()
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "method": cfg.method, "backbone": cfg.backbone,
                "arch_kwargs": self.preset, "in_channels": 1, "crop": cfg.crop, "spacing_zyx_mm": list(cfg.spacing),
                "intensity": cfg.intensity().describe(), "epochs": cfg.epochs,
                "epochs_completed": self.state.epoch, "iterations_per_epoch": cfg.iterations_per_epoch,
                "steps": self.state.epoch * cfg.iterations_per_epoch + self.state.iteration,
                "batch_size_per_rank": cfg.batch_size, "world_size": self.world.size,
                "num_volumes": len(self.entries), "corpus": self.corpus_description(),
                "encoder_loaded": encoder, "encoder_rule": why, "teacher_init_share": share,
                "distance_from_init": self.encoder_distances(), "monitor": self.monitor_summary(),
                "ramps": self.ramps.describe(), "finished": finished,
                "axis_order": "encoder input (X, Y, Z) = nnU-Net (Z, Y, X) permuted, as in SwinSegmentationNetwork",
                "nnunet_swin_version": str(nnunet_swin.__version__), "torch_version": str(torch.__version__),
                "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def corpus_description(self) -> str:
        cfg = self.config
        names = [Path(e.get("source", "")).name for e in getattr(self, "entries", [])]
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"{len(names)} {cfg.modality} volume(s) ({shown}) at {'x'.join(f'{s:g}' for s in cfg.spacing)} mm"

    def save(self, path: Path, finished: bool = False) -> None:
        if not self.world.main:
            D.barrier(self.world)
            return
        cfg = self.config
        metadata = self.metadata(finished)
        exported = self.student if metadata["encoder_loaded"] == "student" else self.teacher
        obj = {
            metadata["encoder_loaded"]: encoder_state(exported),
            "pretraining": {
                "student": {k: v.detach().cpu() for k, v in self.student.state_dict().items()},
                "teacher": {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "centres": {k: v.detach().cpu() for k, v in self.centres.state_dict().items()},
                "epoch": self.state.epoch, "iteration": self.state.iteration, "history": self.state.history,
                "collapse": self.collapse, "rng": _rng_states(), "config": asdict(cfg)},
            "metadata": metadata,
            ADAPTATION_PLAN_KEY: adaptation_plan(metadata),
        }
        save_checkpoint(path, obj)
        write_json(self.out / HISTORY_FILE, {"config": asdict(cfg), "world_size": self.world.size,
                                             "history": self.state.history, "monitor": metadata["monitor"]})
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
        self.collapse = state.get("collapse")
        _set_rng_states(state["rng"])

    def plot(self) -> None:
        """Loss curves (left) and the collapse monitor (right: teacher entropy per head against ln K, and the
        cross-sample cosine of the student's bottleneck), epoch means."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        epochs = sorted({r["epoch"] for r in self.state.history})
        if not epochs:
            return
        means = [self.epoch_means(e) for e in epochs]
        xs = [e + 1 for e in epochs]
        fig, (ax, mon) = plt.subplots(1, 2, figsize=(11, 4))
        for k in ("loss",) + LOSS_PARTS:
            if k in means[0]:
                ax.plot(xs, [m[k] for m in means], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean loss")
        ax.set_yscale("log")
        ax.set_title(f"{self.config.method} pretraining, {self.config.backbone}")
        ax.legend()
        ln_k = math.log(self.config.out_dim)
        cos_ax = mon.twinx()
        for i, head in enumerate(M.HEADS):
            if f"teacher_entropy_{head}" in means[0]:
                colour = f"C{i}"
                mon.plot(xs, [m[f"teacher_entropy_{head}"] for m in means], color=colour, marker="o", ms=3,
                         label=f"teacher entropy {head.upper()}")
                cos_ax.plot(xs, [m[f"cosine_{head}"] for m in means], color=colour, ls="--",
                            label=f"cosine {head.upper()}")
        mon.axhline(ln_k, color="k", lw=0.8, ls=":", label="ln K (uniform teacher)")
        mon.set_xlabel("epoch")
        mon.set_ylabel("teacher entropy (nats)")
        cos_ax.set_ylabel("student cross-sample cosine (dashed)")
        cos_ax.set_ylim(-0.05, 1.05)
        title = "collapse monitor"
        if self.collapse is not None:
            title += f": collapsed in epoch {self.collapse['epoch']}"
            mon.axvline(self.collapse["epoch"], color="r", lw=1)
        mon.set_title(title)
        mon.legend(fontsize=7, loc="lower left")
        save_figure(self.out / CURVE_FILE, fig)
        plt.close(fig)
