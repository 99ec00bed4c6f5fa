"""The GPU check (issue 16): nnU-Net's CUDA path and the measurements, in one run of at most about 8 minutes.

On one CUDA device, under nnU-Net's defaults (fp16 autocast + GradScaler + ``torch.compile``, as ``nnUNetTrainer``
trains; bf16 autocast as the alternative), it prints one table per question:

1. ``steps``: a training step of each full-size backbone (SMIT, Swin UNETR) at the ACT crop 128x128x64, batch 2:
   finite loss and gradients under fp16 + GradScaler + compile and under bf16 (eager), and the step time;
2. ``sdpa``: which scaled-dot-product-attention kernel runs each block geometry (``networks.sdpa_backends``);
3. ``monai``: step time and peak memory, ours against MONAI 1.6.1's ``SwinUNETR`` of the same configuration
   (feature 48, depths 2-2-2-2, heads 3-6-12-24, window 7), 128x128x64 and 96^3, batch 2, fp16 + compile
   (goals: time <= 0.6x, memory <= 1.0x);
4. ``act``: SMIT training step at ACT 128x128x64 against cubic 128^3 (goal <= 0.5x; the paper reports 56% less);
5. ``mfu``: model FLOP utilisation of those training steps, FLOPs counted with ``torch.utils.flop_counter`` over one
   eager forward + backward, time from the compiled step, peak = the device's dense fp16/bf16 tensor peak
   (``PEAK_TFLOPS``; "unknown peak" for other devices; goal >= 30%);
6. ``sliding``: sliding-window inference of one case of 140x140x93 voxels (1 mm) with nnU-Net's own
   ``nnUNetPredictor.predict_sliding_window_return_logits`` (step 0.5, Gaussian weighting, left-right flip TTA as our
   trainers set, fp16 autocast as the predictor does), ACT patch against cubic patch (SMIT);
7. ``nnunet``: stock ``nnUNetv2_train`` (``SwinACTTrainer_smoke``: 3 epochs x 2 iterations, stand-in pretrained
   encoder, nnU-Net's default compile) and stock ``nnUNetv2_predict`` for both full-size backbones on a small
   synthetic dataset (the two backbones run side by side), and ``nnunet-swin pretrain`` for a few steps.

Times are medians of ``--repeats`` steps after ``--warmup`` steps (the first of which compiles), synchronised;
peak memory is ``torch.cuda.max_memory_allocated`` over the timed steps. Every measurement that fails prints its
error in its row; the script goes on. Parts that would not fit into ``--budget-s`` are listed as not run, with the
``--parts`` to run them separately.

    python benchmarks/gpu_check.py                            # everything, on a CUDA machine
    python benchmarks/gpu_check.py --parts nnunet             # one part
    python benchmarks/gpu_check.py --device cpu --tiny        # smoke-test the script itself on CPU (reduced
                                                              # backbones and sizes, the plain layers CUDA runs)

Without a CUDA device (and without ``--device cpu``) it prints one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

PARTS = ("steps", "sdpa", "monai", "act", "mfu", "sliding", "nnunet")
# rough seconds per part on a modern GPU (compiles dominate), used to decide what still fits the budget
ESTIMATE_S = {"steps": 150, "sdpa": 20, "monai": 150, "act": 60, "mfu": 20, "sliding": 40, "nnunet": 240}
# dense (no sparsity) fp16/bf16 tensor-core peak in TFLOPS, by a substring of torch.cuda.get_device_name();
# the first match wins, so more specific names come first
PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0),
               ("L4", 121.0), ("V100", 125.0))
ACT_ZYX, CUBIC_ZYX, MONAI_ZYX_96 = (64, 128, 128), (128, 128, 128), (96, 96, 96)
VOLUME_ZYX = (93, 140, 140)  # 140 x 140 x 93 voxels at 1 mm, (Z, Y, X)


@dataclass
class Setup:
    device: str
    tiny: bool
    compile_backend: str | None   # None: no torch.compile
    repeats: int
    warmup: int
    deadline: float
    workdir: Path

    # the backbones and sizes of the run (the tiny smoke mode keeps the structure and shrinks everything)
    def preset(self, backbone: str) -> str:
        return f"{backbone}_tiny" if self.tiny else backbone

    def zyx(self, full: tuple[int, int, int]) -> tuple[int, int, int]:
        if not self.tiny:
            return full
        return {ACT_ZYX: (32, 64, 64), CUBIC_ZYX: (64, 64, 64), MONAI_ZYX_96: (64, 64, 64),
                VOLUME_ZYX: (46, 70, 70)}[full]

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def amp(self, dtype: str):
        """The autocast dtype for a mode; on CPU bf16 stands in for fp16 (fp16 convolution backward has no fast CPU
        kernel: minutes per step), the GradScaler still runs."""
        import torch
        return torch.bfloat16 if self.device == "cpu" else getattr(torch, dtype)


def _name(zyx) -> str:
    """(Z, Y, X) -> 'X x Y x Z' as the paper writes crops (128x128x64)."""
    return "x".join(str(s) for s in zyx[::-1])


def _error(e: BaseException) -> str:
    return f"error: {type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:150]}"


# ------------------------------------------------------------------------------------------------- models
def ours(setup: Setup, backbone: str, monai_order: bool = False):
    from nnunet_swin.networks import SwinSegmentationNetwork
    from nnunet_swin.networks.presets import get_preset
    kw = get_preset(setup.preset(backbone))
    if monai_order:
        kw["merge_order"] = "monai16"  # the function MONAI 1.6 computes; the legacy order costs the same
    return SwinSegmentationNetwork(1, 2, **kw)


def monai_swin_unetr(setup: Setup):
    from monai.networks.nets import SwinUNETR
    from nnunet_swin.networks.presets import get_preset
    kw = get_preset(setup.preset("swin_unetr"))
    return SwinUNETR(in_channels=1, out_channels=2, feature_size=kw["embed_dim"], depths=tuple(kw["depths"]),
                     num_heads=tuple(kw["num_heads"]))


# ----------------------------------------------------------------------------------------- training steps
def _sync(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def training_step(setup: Setup, net, zyx, dtype: str = "float16", compiled: bool = True, batch: int = 2,
                  repeats: int | None = None) -> dict:
    """nnU-Net's train step (autocast, loss, GradScaler for fp16, unscale, clip at 12, AdamW step) on random data:
    compile time (first step), median step time, peak memory, loss and whether every gradient is finite."""
    import torch
    import torch.nn.functional as F
    device = setup.device
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = net.to(device).train()
    model = torch.compile(net, backend=setup.compile_backend) if compiled and setup.compile_backend else net
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=1e-5)
    amp_dtype = setup.amp(dtype)
    scaler = torch.amp.GradScaler(device) if dtype == "float16" else None
    x = torch.randn(batch, 1, *zyx, device=device)
    y = torch.randint(0, 2, (batch, *zyx), device=device)
    skipped = 0

    def step():
        nonlocal skipped
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=amp_dtype):
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        if scaler is not None:
            scale = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped += scaler.get_scale() < scale  # an inf/NaN gradient: the scaler skipped the step
        else:
            opt.step()
        return loss

    t0 = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(max(0, setup.warmup - 1)):
        step()
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats or setup.repeats):
        t0 = time.perf_counter()
        loss = step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device == "cuda" else float("nan")
    # after the scaler has settled: one more step whose gradients are inspected before the optimizer sees them
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=amp_dtype):
        check_loss = F.cross_entropy(model(x), y)
    (scaler.scale(check_loss) if scaler is not None else check_loss).backward()
    if scaler is not None:
        scaler.unscale_(opt)
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    finite = all(g is not None for g in grads) and bool(torch.stack([g.float().abs().max() for g in grads])
                                                         .isfinite().all())
    result = {"first_step_s": first, "step_s": statistics.median(times), "peak_gib": peak,
              "loss": float(loss.detach()), "loss_finite": bool(torch.isfinite(loss) and torch.isfinite(check_loss)),
              "grads_finite": finite, "scaler_skips": int(skipped)}
    del model, opt, x, y
    net.to("cpu")
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def step_flops(setup: Setup, net, zyx, batch: int = 2) -> float:
    """FLOPs of one training step (forward + backward, fp16 autocast, eager), by ``FlopCounterMode``."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode
    net = net.to(setup.device).train()
    x = torch.randn(batch, 1, *zyx, device=setup.device)
    y = torch.randint(0, 2, (batch, *zyx), device=setup.device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(setup.device, dtype=setup.amp("float16")):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
    net.zero_grad(set_to_none=True)
    net.to("cpu")
    return float(counter.get_total_flops())


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_TFLOPS:
        if key in device_name:
            return value
    return None


# ------------------------------------------------------------------------------------------------- parts
def part_steps(setup: Setup, results: dict) -> list[str]:
    rows = [f"{'backbone':>10} | {'crop':>10} | {'mode':>22} | {'loss':>7} {'finite':>6} {'grads':>6} "
            f"{'skips':>5} | {'1st step s':>10} {'step s':>7} {'GiB':>6}"]
    for backbone in ("smit", "swin_unetr"):
        for mode, dtype, compiled in (("fp16+GradScaler+compile", "float16", True), ("bf16 eager", "bfloat16", False)):
            key = f"{backbone}/{_name(setup.zyx(ACT_ZYX))}/{mode}"
            try:
                r = training_step(setup, ours(setup, backbone, monai_order=backbone == "swin_unetr"),
                                  setup.zyx(ACT_ZYX), dtype, compiled)
                results["steps"][key] = r
                rows.append(f"{backbone:>10} | {_name(setup.zyx(ACT_ZYX)):>10} | {mode:>22} | {r['loss']:7.4f} "
                            f"{str(r['loss_finite']):>6} {str(r['grads_finite']):>6} {r['scaler_skips']:5d} | "
                            f"{r['first_step_s']:10.2f} {r['step_s']:7.3f} {r['peak_gib']:6.2f}")
            except Exception as e:  # noqa: BLE001 - reported in the row
                results["steps"][key] = {"error": _error(e)}
                rows.append(f"{backbone:>10} | {_name(setup.zyx(ACT_ZYX)):>10} | {mode:>22} | {_error(e)}")
    return rows


def part_sdpa(setup: Setup, results: dict) -> list[str]:
    import torch
    from nnunet_swin.networks.sdpa_backends import sdpa_report
    rows = []
    for backbone in ("smit", "swin_unetr"):
        for dtype in ("float16", "bfloat16"):
            try:
                net = ours(setup, backbone).to(setup.device).train()
                x = torch.randn(2, 1, *setup.zyx(ACT_ZYX), device=setup.device)
                with torch.autocast(setup.device, dtype=setup.amp(dtype)):
                    calls = sdpa_report(net, x)
                results["sdpa"][f"{backbone}/{dtype}"] = [c.__dict__ for c in calls]
                rows += [f"{backbone} {dtype}: {c.line()}" for c in calls]
                del net
            except Exception as e:  # noqa: BLE001
                rows.append(f"{backbone} {dtype}: {_error(e)}")
    return rows


def _cached_step(setup: Setup, results: dict, key: str, build, zyx) -> dict:
    """fp16 + GradScaler + compile step of ``build()`` at ``zyx``, reusing a measurement of an earlier part."""
    if key not in results["steps"]:
        try:
            results["steps"][key] = training_step(setup, build(), zyx)
        except Exception as e:  # noqa: BLE001
            results["steps"][key] = {"error": _error(e)}
    return results["steps"][key]


def _ratio(a: dict, b: dict, field: str) -> str:
    if "error" in a or "error" in b or not b.get(field):
        return "n/a"
    return f"{a[field] / b[field]:.2f}"


def part_monai(setup: Setup, results: dict) -> list[str]:
    rows = [f"{'crop':>10} | {'ours s':>7} {'MONAI s':>7} {'ratio':>5} (goal <= 0.6) | {'ours GiB':>8} "
            f"{'MONAI GiB':>9} {'ratio':>5} (goal <= 1.0)"]
    mode = "fp16+GradScaler+compile"
    for zyx in (setup.zyx(ACT_ZYX), setup.zyx(MONAI_ZYX_96)):
        a = _cached_step(setup, results, f"swin_unetr/{_name(zyx)}/{mode}", lambda: ours(setup, "swin_unetr", True),
                         zyx)
        b = _cached_step(setup, results, f"monai_swinunetr/{_name(zyx)}/{mode}", lambda: monai_swin_unetr(setup), zyx)
        if "error" in a or "error" in b:
            rows.append(f"{_name(zyx):>10} | ours {a.get('error', 'ok')} | MONAI {b.get('error', 'ok')}")
            continue
        rows.append(f"{_name(zyx):>10} | {a['step_s']:7.3f} {b['step_s']:7.3f} {_ratio(a, b, 'step_s'):>5}"
                    f"{'':14} | {a['peak_gib']:8.2f} {b['peak_gib']:9.2f} {_ratio(a, b, 'peak_gib'):>5}")
    return rows


def part_act(setup: Setup, results: dict) -> list[str]:
    mode = "fp16+GradScaler+compile"
    act, cubic = setup.zyx(ACT_ZYX), setup.zyx(CUBIC_ZYX)
    a = _cached_step(setup, results, f"smit/{_name(act)}/{mode}", lambda: ours(setup, "smit"), act)
    b = _cached_step(setup, results, f"smit/{_name(cubic)}/{mode}", lambda: ours(setup, "smit"), cubic)
    head = f"SMIT, {mode}, batch 2: ACT {_name(act)} vs cubic {_name(cubic)}"
    if "error" in a or "error" in b:
        return [head, f"ACT {a.get('error', 'ok')} | cubic {b.get('error', 'ok')}"]
    return [head, f"ACT {a['step_s']:.3f} s | cubic {b['step_s']:.3f} s | ratio {_ratio(a, b, 'step_s')} "
                  f"(goal <= 0.5) | memory {a['peak_gib']:.2f} vs {b['peak_gib']:.2f} GiB"]


def part_mfu(setup: Setup, results: dict) -> list[str]:
    import torch
    name = torch.cuda.get_device_name() if setup.device == "cuda" else "cpu"
    peak = peak_tflops(name)
    rows = [f"device {name}: " + (f"dense fp16/bf16 peak {peak:.0f} TFLOPS" if peak else "unknown peak"),
            f"{'model':>10} | {'crop':>10} | {'GFLOP/step':>10} | {'step s':>7} | {'TFLOPS':>7} | MFU (goal >= 30%)"]
    mode = "fp16+GradScaler+compile"
    for backbone, zyx in (("smit", setup.zyx(ACT_ZYX)), ("swin_unetr", setup.zyx(ACT_ZYX)),
                          ("smit", setup.zyx(CUBIC_ZYX))):
        key = f"{backbone}/{_name(zyx)}/{mode}"
        step = results["steps"].get(key)
        if step is None or "error" in step:
            rows.append(f"{backbone:>10} | {_name(zyx):>10} | no compiled step time (run the steps/act parts)")
            continue
        try:
            flops = step_flops(setup, ours(setup, backbone, monai_order=backbone == "swin_unetr"), zyx)
        except Exception as e:  # noqa: BLE001
            rows.append(f"{backbone:>10} | {_name(zyx):>10} | {_error(e)}")
            continue
        achieved = flops / step["step_s"] / 1e12
        mfu = f"{100 * achieved / peak:.1f}%" if peak else "unknown peak"
        results["mfu"][key] = {"flops": flops, "step_s": step["step_s"], "tflops": achieved, "peak_tflops": peak}
        rows.append(f"{backbone:>10} | {_name(zyx):>10} | {flops / 1e9:10.1f} | {step['step_s']:7.3f} | "
                    f"{achieved:7.2f} | {mfu}")
    return rows


def part_sliding(setup: Setup, results: dict) -> list[str]:
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    volume = setup.zyx(VOLUME_ZYX)
    rows = [f"SMIT, one case of {_name(volume)} voxels, step 0.5, Gaussian, left-right flip TTA, autocast as nnU-Net"]
    times = {}
    for label, patch in (("ACT", setup.zyx(ACT_ZYX)), ("cubic", setup.zyx(CUBIC_ZYX))):
        try:
            predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                        perform_everything_on_device=setup.device == "cuda",
                                        device=torch.device(setup.device), allow_tqdm=False)
            # what predict_sliding_window_return_logits reads of an initialised predictor
            predictor.network = ours(setup, "smit").to(setup.device).eval()
            predictor.configuration_manager = SimpleNamespace(patch_size=list(patch))
            predictor.label_manager = SimpleNamespace(num_segmentation_heads=2)
            predictor.allowed_mirroring_axes = (2,)
            image = torch.randn(1, *volume)
            predictor.predict_sliding_window_return_logits(image)  # warm-up (cuDNN autotuning, allocator)
            runs = []
            for _ in range(2):
                _sync(setup.device)
                t0 = time.perf_counter()
                logits = predictor.predict_sliding_window_return_logits(image)
                _sync(setup.device)
                runs.append(time.perf_counter() - t0)
            assert tuple(logits.shape) == (2, *volume), logits.shape
            times[label] = min(runs)
            rows.append(f"{label:>6} patch {_name(patch):>10}: {times[label]:.3f} s per case")
            del predictor
        except Exception as e:  # noqa: BLE001
            rows.append(f"{label:>6} patch {_name(patch):>10}: {_error(e)}")
    results["sliding"] = times
    if len(times) == 2:
        rows.append(f"ACT / cubic = {times['ACT'] / times['cubic']:.2f}")
    return rows


# ----------------------------------------------------------------------------------------- stock nnU-Net
def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def _start(cmd: list[str], env: dict, log: Path) -> tuple[subprocess.Popen, float, object]:
    handle = open(log, "w")
    return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT), time.monotonic(), handle


def _finish(job, timeout: float) -> tuple[int, float]:
    """Wait for a job; one that outlives the budget still gets 5 minutes (a started job is worth finishing)."""
    proc, t0, handle = job
    try:
        rc = proc.wait(timeout=max(300.0, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    handle.close()
    return rc, time.monotonic() - t0


def _tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:150] if lines else "(no output)"


def part_nnunet(setup: Setup, results: dict) -> list[str]:
    from nnunet_swin.cli.main import COMMANDS
    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint
    root = setup.workdir / "nnunet"
    shutil.rmtree(root, ignore_errors=True)
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_swin_pretrained": str(root / "weights"),
           "nnUNet_n_proc_DA": "2" if setup.device == "cuda" else "0", "nnUNet_def_n_proc": "2"}
    env.pop("nnUNet_compile", None)  # nnU-Net's default: compile on CUDA
    if setup.device == "cpu":
        env["nnUNet_compile"] = "f"
        env["nnUNet_swin_cpu_kernels"] = "0"  # the plain layers, as on CUDA
    cli = [sys.executable, "-m", "nnunet_swin.cli.main"]
    out = subprocess.run(cli + ["env", "--ext-trainer-dir"], env=env, capture_output=True, text=True, check=True)
    env["nnUNet_extTrainer"] = out.stdout.strip().splitlines()[-1]
    dataset = 951
    make_demo_dataset(root / "raw", dataset, spec=SyntheticSpec(num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0,
                                                                z_iqr_mm=(32.0, 48.0), short_share=0.0),
                      progress=False)
    raw = next((root / "raw").glob(f"Dataset{dataset}_*"))
    trainer = "SwinACTTrainer_smoke"
    plans = {"smit": ("SMITPlanner", "nnUNetSMITPlans"), "swin_unetr": ("SwinUNETRPlanner", "nnUNetSwinUNETRPlans")}
    device_flag = ["-device", setup.device]
    rows = [f"{'backbone':>10} | {'step':>20} | {'rc':>3} | {'s':>6} | result"]
    train_jobs, logs = {}, root / "logs"
    logs.mkdir(parents=True)
    for backbone, (planner, plans_name) in plans.items():  # planning writes one fingerprint: one after the other
        preset = setup.preset(backbone)
        t0 = time.monotonic()
        proc = subprocess.run(cli + ["plan_and_preprocess", "-d", str(dataset), "-pl", planner, "-backbone", preset,
                                     "-inplane_patch", "64", "64", "-cubic_size", "64", "-c", "3d_fullres", "-npfp",
                                     "2", "-np", "2", "--quiet"], env=env, capture_output=True, text=True)
        rows.append(f"{backbone:>10} | {'plan+preprocess':>20} | {proc.returncode:3d} | {time.monotonic() - t0:6.1f} | "
                    + ("ok" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-150:]))
        if proc.returncode:
            continue
        pre = next((root / "pre").glob(f"Dataset{dataset}_*"))
        cases = sorted(p.name[:-len(".pkl")] for p in (pre / f"{plans_name}_3d_fullres").glob("*.pkl"))
        (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
        arch = json.loads((pre / f"{plans_name}.json").read_text())["configurations"]["3d_fullres"]["architecture"]
        write_standin_checkpoint(arch["arch_kwargs"], root / "weights" / f"{preset}.pth")
        train_jobs[backbone] = _start([_tool("nnUNetv2_train"), str(dataset), "3d_fullres", "0", "-tr", trainer,
                                       "-p", plans_name] + device_flag, env, logs / f"train_{backbone}.log")
    jobs = {}
    for backbone, job in train_jobs.items():
        rc, seconds = _finish(job, setup.left())
        log = logs / f"train_{backbone}.log"
        text = log.read_text(errors="replace")
        ok = rc == 0 and "encoder loaded from" in text
        rows.append(f"{backbone:>10} | {'nnUNetv2_train':>20} | {rc:3d} | {seconds:6.1f} | "
                    + ("ok: 3 epochs, pretrained stand-in loaded" + (", compiled" if "Using torch.compile" in text else "")
                       if ok else _tail(log)))
        results["nnunet"][f"{backbone}/train"] = {"rc": rc, "s": seconds, "ok": ok}
        if rc == 0:
            jobs[f"{backbone}/predict"] = _start(
                [_tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(root / f"pred_{backbone}"), "-d",
                 str(dataset), "-c", "3d_fullres", "-f", "0", "-tr", trainer, "-p", plans[backbone][1], "-npp", "1",
                 "-nps", "1"] + device_flag, env, logs / f"predict_{backbone}.log")
    if "pretrain" in COMMANDS:
        for backbone in plans:
            jobs[f"{backbone}/pretrain"] = _start(
                cli + ["pretrain", "-d", str(dataset), "-o", str(root / f"pretrain_{backbone}"), "-backbone",
                       setup.preset(backbone), "--epochs", "1", "--iterations-per-epoch", "3", "--crop", "64",
                       "--batch-size", "2", "--device", setup.device, "--quiet", "--num-workers", "2"],
                env, logs / f"{backbone}_pretrain.log")
    else:
        rows.append(f"{'':>10} | {'pretrain':>20} | not run: this checkout has no `nnunet-swin pretrain` command")
    n_test = len(list((raw / "imagesTs").glob("*_0000.nii.gz")))
    for key, job in jobs.items():
        backbone, what = key.split("/")
        rc, seconds = _finish(job, setup.left())
        if what == "predict":
            written = len(list((root / f"pred_{backbone}").glob("*.nii.gz")))
            ok = rc == 0 and written == n_test
            result = f"ok: {written}/{n_test} cases predicted" if ok else _tail(logs / f"predict_{backbone}.log")
            label = "nnUNetv2_predict"
        else:
            ok = rc == 0 and (root / f"pretrain_{backbone}" / "checkpoint_final.pth").is_file()
            result = "ok: checkpoint_final.pth written" if ok else _tail(logs / f"{backbone}_pretrain.log")
            label = "nnunet-swin pretrain"
        results["nnunet"][key] = {"rc": rc, "s": seconds, "ok": ok}
        rows.append(f"{backbone:>10} | {label:>20} | {rc:3d} | {seconds:6.1f} | {result}")
    rows.append(f"logs: {logs}")
    return rows


PART_FUNCTIONS = {"steps": part_steps, "sdpa": part_sdpa, "monai": part_monai, "act": part_act, "mfu": part_mfu,
                  "sliding": part_sliding, "nnunet": part_nnunet}
TITLES = {"steps": "CUDA training steps (nnU-Net's train step; ACT crop, batch 2)",
          "sdpa": "SDPA backend per block geometry (batch 2, ACT crop)",
          "monai": "ours vs MONAI 1.6.1 SwinUNETR (same configuration; fp16 + GradScaler + compile, batch 2)",
          "act": "ACT vs cubic training step", "mfu": "model FLOP utilisation of the training step",
          "sliding": "sliding-window inference per case (nnUNetPredictor)",
          "nnunet": "stock nnU-Net commands (SwinACTTrainer_smoke) and nnunet-swin pretrain"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="reduced backbones and sizes (a smoke test of the script)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--budget-s", type=float, default=470.0,
                        help="skip parts that would not finish within this many seconds (default 470)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first; the first one compiles")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend (default inductor; aot_eager with --device cpu); 'none' = eager")
    parser.add_argument("--workdir", help="scratch folder for the nnU-Net part (default: a temporary folder)")
    parser.add_argument("--json", help="also write all results here")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {','.join(PARTS)}")

    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing was measured. Run it on a "
              "GPU machine, or smoke-test the script with --device cpu --tiny")
        return 2
    backend = args.compile_backend or ("inductor" if args.device == "cuda" else "aot_eager")
    start = time.monotonic()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="nnunet_swin_gpu_check_"))
    setup = Setup(args.device, args.tiny, None if backend == "none" else backend, args.repeats, args.warmup,
                  start + args.budget_s, workdir)
    if args.device == "cpu":
        from nnunet_swin.networks import cpu_kernels
        cpu_kernels.enabled = False  # exercise the plain layers, the ones CUDA runs
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # as nnUNetv2_train sets it
    import monai
    import nnunetv2  # noqa: F401
    info = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
            "cuda": torch.version.cuda, "monai": monai.__version__, "compile_backend": setup.compile_backend,
            "tiny": args.tiny, "repeats": args.repeats, "warmup": args.warmup}
    print("gpu_check: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    if args.tiny:
        print("gpu_check: --tiny: reduced backbones and sizes; the numbers say nothing about the real configuration")
    if args.device == "cpu":
        print("gpu_check: on CPU: the plain layers (CPU kernels off), bf16 autocast in place of fp16 (the GradScaler "
              "still runs); oneDNN's bf16 Conv3d weight gradient on maps with a side of 2 can return NaN (see "
              "tests/networks/test_segmentation_network.py), so a 'False' under grads here may be that")
    results = {"info": info, "steps": {}, "sdpa": {}, "mfu": {}, "sliding": {}, "nnunet": {}, "not_run": []}
    for part in parts:
        if setup.left() < (ESTIMATE_S[part] if not args.tiny else 0):
            results["not_run"].append(part)
            continue
        print(f"\n== {part}: {TITLES[part]} ==", flush=True)
        t0 = time.monotonic()
        try:
            rows = PART_FUNCTIONS[part](setup, results)
        except Exception as e:  # noqa: BLE001 - one part failing must not hide the others
            rows = [_error(e), traceback.format_exc(limit=3).strip().splitlines()[-1]]
        for row in rows:
            print(row, flush=True)
        print(f"({part}: {time.monotonic() - t0:.0f} s)", flush=True)
    if results["not_run"]:
        print(f"\nnot run (time budget of {args.budget_s:.0f} s): {', '.join(results['not_run'])}; run them with "
              f"--parts {','.join(results['not_run'])}")
    print(f"\ngpu_check: done in {time.monotonic() - start:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
