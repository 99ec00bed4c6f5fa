"""Prediction benchmark: a whole case through nnU-Net's predictor with our network vs MONAI's sliding-window inference.

Both arms predict the same NIfTI volume with the same weights: a randomly initialised Swin UNETR of one
configuration (``--preset``, default the reduced ``swin_unetr_tiny``; merge order ``monai16``, which is MONAI 1.6's
function), written once as an nnU-Net trained-model folder (plans + ``checkpoint_final.pth``) and loaded by MONAI's
``SwinUNETR`` of the same configuration through a key mapping. Same patch (64^3), same overlap (0.5, the same
windows: both place ``ceil((L - P) / (P / 2)) + 1`` windows per axis), Gaussian blending on both, the same
test-time flip (left-right only, as our trainers set ``inference_allowed_mirroring_axes``).

- ``ours``: what ``nnUNetv2_predict -device cpu -npp 0 -nps 0`` runs (``predict_from_files_sequential``), phase by
  phase: start-up (``nnUNetPredictor`` + ``initialize_from_trained_model_folder``), preprocessing (the plans'
  ``DefaultPreprocessor``: SimpleITK read, crop to non-zero, resampling to the plans' spacing, z-score),
  sliding window (``predict_logits_from_preprocessed_data``: one window at a time, flip TTA, fp16 accumulation
  as nnU-Net does), export (``export_prediction_from_logits``: resampling back, argmax, SimpleITK write).
- ``monai``: the equivalent MONAI script: start-up (``SwinUNETR`` + ``load_state_dict``), preprocessing
  (``LoadImage``, ``EnsureChannelFirst``, ``CropForeground`` (non-zero), ``Spacing`` (bilinear),
  ``NormalizeIntensity``), sliding window (``sliding_window_inference``, ``sw_batch_size`` windows per forward,
  mode ``gaussian``, the flip done per window batch), export (``Compose.inverse``: spacing and crop undone on the
  logits, argmax, ``SaveImage``).

The two preprocessings differ in method (nnU-Net resamples images with third-order splines, separately along a
thick z; MONAI's ``Spacing`` is trilinear), so their whole-case outputs are close, not equal. The agreement check
therefore feeds both sliding windows the same preprocessed volume (nnU-Net's) and compares logits: with nnU-Net's
Gaussian given to MONAI as ``roi_weight_map`` the two agree up to nnU-Net's fp16 accumulation; the single-window
forward of the two networks agrees to float32 rounding.

Each arm runs in a fresh subprocess (peak memory = its maximum resident set size, imports included); the arms
alternate for ``--rounds`` rounds and medians are reported. "case" = start-up + preprocessing + sliding window +
export inside the process; "process" adds the interpreter start and imports; "network" = time inside the
network's forward; "sliding window only" = the sliding-window phase.

    python benchmarks/bench_predict.py --quick                 # one small isotropic case, < 5 min on 2 cores
    python benchmarks/bench_predict.py                          # real thick-slice MRI + synthetic cases
    python benchmarks/bench_predict.py --cases iso96 --preset swin_unetr --rounds 2
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL = [REPO.parent / "shared" / "data" / "real", REPO / "tests" / "data" / "real"]
PATCH_ZYX = (64, 64, 64)
FLIP_AXIS_ZYX = 2  # left-right = X of nnU-Net's (Z, Y, X) arrays (trainers/mirroring.py)

# name -> source ("real:<file>" or synthetic shape (Z, Y, X)), voxel spacing (Z, Y, X) mm of a synthetic image,
# target spacing (Z, Y, X) mm of the plans (what both arms resample to)
CASES = {
    "small": {"source": (64, 96, 96), "spacing": (1.0, 1.0, 1.0), "target": (1.0, 1.0, 1.0)},
    "iso96": {"source": (96, 96, 96), "spacing": (1.0, 1.0, 1.0), "target": (1.0, 1.0, 1.0)},
    "thick": {"source": (24, 160, 160), "spacing": (5.0, 0.8, 0.8), "target": (1.6, 1.6, 1.6)},
    "brain_real": {"source": "real:pyrad_brain1_0000.nii.gz", "target": (2.0, 2.0, 2.0)},
}


# ------------------------------------------------------------------------------------------------- set-up
def _arch(preset: str) -> dict:
    from nnunet_swin.networks.presets import get_preset
    arch = get_preset(preset)
    arch["merge_order"] = "monai16"  # MONAI >= 1.5's neighbour order: the same function as its SwinUNETR
    arch["strides"] = [[2, 2, 2]] * 5
    return arch


def write_image(case: str, folder: Path) -> Path:
    """The case's input volume as ``folder/<case>_0000.nii.gz`` (the real one copied, a synthetic one drawn)."""
    import numpy as np
    import SimpleITK as sitk
    spec = CASES[case]
    out = folder / f"{case}_0000.nii.gz"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(spec["source"], str):
        name = spec["source"].split(":", 1)[1]
        src = next((d / name for d in REAL if (d / name).is_file()), None)
        if src is None:
            raise SystemExit(f"real volume {name} not found in {', '.join(map(str, REAL))}")
        sitk.WriteImage(sitk.ReadImage(str(src)), str(out))
        return out
    rng = np.random.default_rng(0)
    z, y, x = spec["source"]
    zz, yy, xx = np.indices((z, y, x), dtype=np.float32)
    sphere = ((zz / z - 0.5) ** 2 + (yy / y - 0.45) ** 2 + (xx / x - 0.55) ** 2) < 0.06
    img = 100 + 20 * rng.standard_normal((z, y, x)).astype(np.float32) + 120 * sphere
    image = sitk.GetImageFromArray(img.astype(np.float32))
    image.SetSpacing(tuple(float(s) for s in spec["spacing"][::-1]))  # SimpleITK spacing is (X, Y, Z)
    sitk.WriteImage(image, str(out))
    return out


def write_model_folder(root: Path, case: str, preset: str, seed: int = 0) -> Path:
    """An nnU-Net trained-model folder (plans.json, dataset.json, fold_0/checkpoint_final.pth) for the case's target
    spacing, with a randomly initialised network of the preset."""
    import torch
    from nnunet_swin.networks import SwinSegmentationNetwork
    target = list(CASES[case]["target"])
    arch = _arch(preset)
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    plans = {
        "dataset_name": "Dataset991_Bench", "plans_name": "nnUNetSwinUNETRPlans",
        "original_median_spacing_after_transp": target, "original_median_shape_after_transp": [64, 64, 64],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetSwinUNETRPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": list(PATCH_ZYX), "median_image_size_in_voxels": [64, 64, 64],
            "spacing": target, "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": resampling, "resampling_fn_seg_kwargs": {**resampling, "is_seg": True,
                                                                                 "order": 1},
            "resampling_fn_probabilities_kwargs": {**resampling, "order": 1},
            "architecture": {"network_class_name": "nnunet_swin.networks.segmentation.SwinSegmentationNetwork",
                             "arch_kwargs": arch, "_kw_requires_import": []},
            "batch_dice": False}},
        "experiment_planner_used": "SwinUNETRPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 5.0, "mean": 1.0, "median": 1.0, "min": -5.0, "percentile_00_5": -3.0, "percentile_99_5": 3.0,
            "std": 1.0}},
    }
    folder = root / f"model_{case}" / "nnUNetTrainer__nnUNetSwinUNETRPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": {"background": 0,
                                                     "tumour": 1}, "numTraining": 1, "file_ending": ".nii.gz"}))
    torch.manual_seed(seed)
    net = SwinSegmentationNetwork(1, 2, **arch)
    with torch.no_grad():  # perturb: zero-initialised parts (biases, norms) would hide mapping mistakes
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres"}, "inference_allowed_mirroring_axes": (FLIP_AXIS_ZYX,)},
               folder / "fold_0" / "checkpoint_final.pth")
    return folder


def ours_to_monai(state: dict) -> dict:
    """Our network's state dict -> MONAI ``SwinUNETR`` keys (the inverse of tests/networks/test_swin_vs_monai.py)."""
    out = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            k = key[len("encoder."):]
            k = re.sub(r"^layers\.(\d)\.", lambda m: f"layers{int(m.group(1)) + 1}.0.", k)
            k = k.replace("mlp.fc1", "mlp.linear1").replace("mlp.fc2", "mlp.linear2")
            out["swinViT." + k] = value
        elif key.startswith("decoder."):
            out[key[len("decoder."):]] = value
        else:
            raise KeyError(f"unexpected key {key}")
    return out


def monai_network(preset: str, weights: dict, sdpa: bool = False):
    """MONAI ``SwinUNETR`` of the preset's configuration holding our weights."""
    from monai.networks.nets import SwinUNETR
    arch = _arch(preset)
    net = SwinUNETR(in_channels=1, out_channels=2, feature_size=arch["embed_dim"], depths=arch["depths"],
                    num_heads=arch["num_heads"], use_flash_attention=sdpa)
    result = net.load_state_dict(ours_to_monai(weights), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("relative_position_index")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"weights do not map onto MONAI: missing {missing}, unexpected {result.unexpected_keys}")
    return net.eval()


class _Marks:
    """Wall (``perf_counter``) and process CPU time (``process_time``, all threads) at named points."""

    def __init__(self) -> None:
        self.marks = {}
        self.mark("t0")

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()
        self.marks[name + "_cpu"] = time.process_time()


class Clock:
    """Seconds spent inside the wrapped callables (the network's forward)."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1
        return timed


# ----------------------------------------------------------------------------------------------- the arms
def arm_ours(image: Path, model: Path, out: Path) -> dict:
    t = _Marks()
    import torch
    from nnunetv2.inference.export_prediction import export_prediction_from_logits
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    t.mark("imported")
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), (0,), "checkpoint_final.pth")
    clock = Clock()
    predictor.network.forward = clock.wrap(predictor.network.forward)
    t.mark("started")
    # predict_from_files_sequential's loop body, phase by phase
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case([str(image)], None, predictor.plans_manager,
                                                predictor.configuration_manager, predictor.dataset_json)
    t.mark("preprocessed")
    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
    t.mark("predicted")
    export_prediction_from_logits(logits, properties, predictor.configuration_manager, predictor.plans_manager,
                                  predictor.dataset_json, str(out / image.name.replace("_0000.nii.gz", "")), False)
    t.mark("exported")
    return {"network_s": clock.seconds, "forwards": clock.calls, "network_input": list(data.shape[1:]), **t.marks}


def arm_monai(image: Path, model: Path, out: Path, sw_batch_size: int, sdpa: bool) -> dict:
    t = _Marks()
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import (Compose, CropForeground, EnsureChannelFirst, LoadImage, NormalizeIntensity,
                                  SaveImage, Spacing)
    t.mark("imported")
    plans = json.loads((model / "plans.json").read_text())["configurations"]["3d_fullres"]
    preset_arch = plans["architecture"]["arch_kwargs"]
    weights = torch.load(model / "fold_0" / "checkpoint_final.pth", map_location="cpu",
                         weights_only=False)["network_weights"]
    net = monai_network(preset_arch["backbone"], weights, sdpa)
    clock = Clock()
    net.forward = clock.wrap(net.forward)
    flip = 2 + (2 - FLIP_AXIS_ZYX)  # MONAI's (B, C, X, Y, Z): nnU-Net's X axis is dim 2

    def predictor(x):  # flip TTA per window batch, as nnU-Net does per window
        return (net(x) + torch.flip(net(torch.flip(x, (flip,))), (flip,))) / 2

    pre = Compose([LoadImage(image_only=True), EnsureChannelFirst(),
                   CropForeground(select_fn=lambda v: v != 0, allow_smaller=True),
                   Spacing(pixdim=plans["spacing"][::-1], mode="bilinear"), NormalizeIntensity()])
    t.mark("started")
    img = pre(str(image))
    t.mark("preprocessed")
    with torch.inference_mode():
        logits = sliding_window_inference(img[None], plans["patch_size"][::-1], sw_batch_size, predictor,
                                          overlap=0.5, mode="gaussian")[0]
    t.mark("predicted")
    logits = pre.inverse(logits)
    seg = torch.argmax(logits, dim=0, keepdim=True).to(torch.uint8)
    SaveImage(output_dir=str(out), output_postfix="", separate_folder=False, print_log=False,
              output_dtype="uint8")(seg)
    (out / image.name).replace(out / image.name.replace("_0000.nii.gz", ".nii.gz"))  # nnU-Net's output name
    t.mark("exported")
    return {"network_s": clock.seconds, "forwards": clock.calls, "network_input": list(img.shape[1:])[::-1],
            **t.marks}


def _arm_main(args) -> int:
    import resource
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.arm == "ours":
        r = arm_ours(Path(args.image), Path(args.model), out)
    else:
        r = arm_monai(Path(args.image), Path(args.model), out, args.sw_batch_size, args.monai_sdpa)
    import torch
    result = {"imports_s": r["imported"] - r["t0"], "startup_s": r["started"] - r["imported"],
              "preprocess_s": r["preprocessed"] - r["started"], "sliding_s": r["predicted"] - r["preprocessed"],
              "export_s": r["exported"] - r["predicted"], "case_s": r["exported"] - r["imported"],
              "case_cpu_s": r["exported_cpu"] - r["imported_cpu"],
              "sliding_cpu_s": r["predicted_cpu"] - r["preprocessed_cpu"], "network_s": r["network_s"], "forwards": r["forwards"], "network_input_zyx": r["network_input"],
              "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, "threads": torch.get_num_threads()}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_arm(arm: str, image: Path, model: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--arm", arm, "--image", str(image), "--model", str(model), "--out", str(out),
           "--sw-batch-size", str(args.sw_batch_size)] + (["--monai-sdpa"] if args.monai_sdpa else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "nnUNet_results": str(out)})
    wall = time.perf_counter() - t0
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"{arm} arm failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {**json.loads(line[len("RESULT "):]), "process_s": wall}


# -------------------------------------------------------------------------------------------- agreement
def agreement(image: Path, model: Path, sw_batch_size: int) -> dict:
    """Same preprocessed volume (nnU-Net's) through both sliding windows; max |logit difference|."""
    import numpy as np
    import torch
    from monai.inferers import sliding_window_inference
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), (0,), "checkpoint_final.pth")
    cm = predictor.configuration_manager
    data, _, _ = cm.preprocessor_class(verbose=False).run_case([str(image)], None, predictor.plans_manager, cm,
                                                               predictor.dataset_json)
    # same number of windows per axis in both, but nnU-Net spaces 3+ windows evenly and MONAI at P/2 steps (the
    # last one flush with the end): crop each such axis to P + k P/2, where the two tilings coincide
    keep = [s if s <= p + p // 2 * 1 or (s - p) % (p // 2) == 0 else p + (s - p) // (p // 2) * (p // 2)
            for s, p in zip(data.shape[1:], cm.patch_size)]
    x = torch.from_numpy(data[:, :keep[0], :keep[1], :keep[2]].copy())
    ours_logits = predictor.predict_logits_from_preprocessed_data(x).float()  # (K, Z, Y, X), fp16-accumulated
    net = monai_network(_arch_name(model), predictor.network.state_dict())
    flip = 2 + (2 - FLIP_AXIS_ZYX)

    def monai_predictor(w):
        return (net(w) + torch.flip(net(torch.flip(w, (flip,))), (flip,))) / 2

    xyz = x.permute(0, 3, 2, 1)[None].contiguous()
    roi = tuple(cm.patch_size[::-1])
    gaussian = compute_gaussian(tuple(cm.patch_size), 1. / 8, 10, device=torch.device("cpu")).float()
    # MONAI raises every weight to at least 1e-3 (nnU-Net's corners are ~1e-7): scaling changes no blend, only that
    gaussian *= 1e-3 / gaussian.min()
    with torch.inference_mode():
        same_map = sliding_window_inference(xyz, roi, sw_batch_size, monai_predictor, overlap=0.5, mode="gaussian",
                                            roi_weight_map=gaussian.permute(2, 1, 0))[0].permute(0, 3, 2, 1)
        own_map = sliding_window_inference(xyz, roi, sw_batch_size, monai_predictor, overlap=0.5,
                                           mode="gaussian")[0].permute(0, 3, 2, 1)
        window = x[None, :, :cm.patch_size[0], :cm.patch_size[1], :cm.patch_size[2]]
        one_ours = predictor.network(window)
        one_monai = net(window.permute(0, 1, 4, 3, 2)).permute(0, 1, 4, 3, 2)
    # nnU-Net sums weighted logits and weights in float16: where the summed Gaussian is tiny (the volume's corners,
    # weights down to 6e-8, float16's smallest step) its blend is quantised to whole logits, so the comparison is
    # made where the summed weight is >= 1e-4 of a window's peak and the rest is counted
    weight = torch.zeros(x.shape[1:])
    padded = [max(s, p) for s, p in zip(x.shape[1:], cm.patch_size)]
    if padded == list(x.shape[1:]):
        for sl in predictor._internal_get_sliding_window_slicers(tuple(padded)):
            weight[sl[1:]] += gaussian
        kept = weight >= 1e-4 * float(gaussian.max())
    else:
        kept = torch.ones(x.shape[1:], dtype=torch.bool)
    # nnU-Net's own loop (its windows, its flip-and-predict) with a float32 sum: the network and tiling alone
    f32 = torch.zeros((2, *x.shape[1:]))
    if padded == list(x.shape[1:]):
        with torch.inference_mode():
            for sl in predictor._internal_get_sliding_window_slicers(tuple(padded)):
                f32[sl] += predictor._internal_maybe_mirror_and_predict(x[sl][None])[0] * gaussian
        f32 /= weight
    fp16_step = float(ours_logits.abs().max()) * 2.0 ** -11  # fp16 rounding of nnU-Net's accumulator
    return {"window_max_abs": float((one_ours - one_monai).abs().max()),
            "sliding_max_abs": float((ours_logits - same_map).abs()[:, kept].max()),
            "sliding_excluded_fraction": 1.0 - float(kept.float().mean()),
            "float32_sum_max_abs": float((f32 - same_map).abs().max()),
            "sliding_all_voxels_max_abs": float((ours_logits - same_map).abs().max()),
            "sliding_own_gaussian_max_abs": float((ours_logits - own_map).abs()[:, kept].max()),
            "fp16_resolution": fp16_step, "compared_zyx": keep, "max_abs_logit": float(ours_logits.abs().max()),
            "argmax_agreement": float(np.mean((ours_logits.argmax(0) == same_map.argmax(0)).numpy()))}


def _arch_name(model: Path) -> str:
    plans = json.loads((model / "plans.json").read_text())
    return plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["backbone"]


def segmentation_agreement(a: Path, b: Path) -> float:
    """Fraction of voxels with the same label in the two written segmentations (whole-case outputs)."""
    import numpy as np
    import SimpleITK as sitk
    sa = sitk.GetArrayFromImage(sitk.ReadImage(str(a)))
    sb = np.asarray(sitk.GetArrayFromImage(sitk.ReadImage(str(b))))
    if sa.shape != sb.shape:
        return float("nan")
    return float(np.mean(sa == sb))


# ------------------------------------------------------------------------------------------------- main
def _median(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], (int, float))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small case, 3 rounds (< 5 min on 2 cores)")
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=["brain_real", "thick", "iso96"])
    parser.add_argument("--preset", default="swin_unetr_tiny",
                        help="network configuration (a Swin UNETR preset MONAI's SwinUNETR can express)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, each arm a fresh process")
    parser.add_argument("--sw-batch-size", type=int, default=4, help="MONAI's windows per forward")
    parser.add_argument("--monai-sdpa", action="store_true", help="MONAI's use_flash_attention (off by default)")
    parser.add_argument("--workdir", help="keep inputs, model folders and outputs here (default: a temp folder)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--arm", choices=("ours", "monai"), help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm:
        return _arm_main(args)
    if args.quick:
        args.cases = ["small"]
    if args.preset.startswith("smit"):
        parser.error("MONAI has no SMIT: use a Swin UNETR preset")
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="bench_predict_")
    root = Path(args.workdir or tmp.name)
    print(f"preset={args.preset} patch={'x'.join(map(str, PATCH_ZYX))} (Z,Y,X) overlap=0.5 gaussian flip=left-right "
          f"monai sw_batch_size={args.sw_batch_size} rounds={args.rounds}", flush=True)
    rows = []
    for case in args.cases:
        image = write_image(case, root / "images")
        model = write_model_folder(root, case, args.preset)
        agree = agreement(image, model, args.sw_batch_size)
        runs = {"ours": [], "monai": []}
        for r in range(args.rounds):
            for arm in (("ours", "monai") if r % 2 == 0 else ("monai", "ours")):
                runs[arm].append(run_arm(arm, image, model, root / f"out_{arm}", args))
        med = {arm: _median(v) for arm, v in runs.items()}
        seg = segmentation_agreement(root / "out_ours" / f"{case}.nii.gz", root / "out_monai" / f"{case}.nii.gz")
        ratios = {k: med["ours"][k] / med["monai"][k] for k in
                  ("case_s", "process_s", "sliding_s", "network_s", "preprocess_s", "export_s", "startup_s",
                   "peak_gib", "case_cpu_s", "sliding_cpu_s")}
        rows.append({"case": case, "agreement": agree, "segmentation_agreement": seg, "medians": med,
                     "ratios": ratios, "runs": runs})
        print(f"\n{case}: network input (Z,Y,X) ours {runs['ours'][0]['network_input_zyx']} monai "
              f"{runs['monai'][0]['network_input_zyx']}; forwards ours {runs['ours'][0]['forwards']} "
              f"monai {runs['monai'][0]['forwards']}")
        print(f"{'arm':>6} | {'process':>7} {'case':>6} | {'start':>5} {'prep':>5} {'window':>6} {'net':>6} "
              f"{'export':>6} | {'net %':>5} | {'GiB':>5}")
        for arm, m in med.items():
            print(f"{arm:>6} | {m['process_s']:7.2f} {m['case_s']:6.2f} | {m['startup_s']:5.2f} "
                  f"{m['preprocess_s']:5.2f} {m['sliding_s']:6.2f} {m['network_s']:6.2f} {m['export_s']:6.2f} | "
                  f"{100 * m['network_s'] / m['case_s']:5.1f} | {m['peak_gib']:5.2f}")
        print(f" ratio | {ratios['process_s']:7.2f} {ratios['case_s']:6.2f} | {ratios['startup_s']:5.2f} "
              f"{ratios['preprocess_s']:5.2f} {ratios['sliding_s']:6.2f} {ratios['network_s']:6.2f} "
              f"{ratios['export_s']:6.2f} |       | {ratios['peak_gib']:5.2f}")
        print(f"process CPU time ours/monai: case {ratios['case_cpu_s']:.2f}, sliding window "
              f"{ratios['sliding_cpu_s']:.2f}")
        print(f"agreement: one window max|d logit| {agree['window_max_abs']:.2e}; sliding window on "
              f"{'x'.join(map(str, agree['compared_zyx']))} (Z,Y,X; same Gaussian) "
              f"{agree['sliding_max_abs']:.2e} (nnU-Net fp16 accumulator step {agree['fp16_resolution']:.1e}; "
              f"{100 * agree['sliding_excluded_fraction']:.2f}% of voxels with summed weight < 1e-4 of a peak left "
              f"out, where fp16 quantises nnU-Net's blend: {agree['sliding_all_voxels_max_abs']:.2e}; nnU-Net's loop "
              f"summed in float32: {agree['float32_sum_max_abs']:.2e} on every voxel), "
              f"MONAI's own Gaussian {agree['sliding_own_gaussian_max_abs']:.2e}; argmax equal "
              f"{100 * agree['argmax_agreement']:.3f}%; written segmentations equal {100 * seg:.2f}% of voxels",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "sw_batch_size": args.sw_batch_size,
                                               "rounds": args.rounds, "rows": rows}, indent=1))
    if tmp is not None:
        tmp.cleanup()
    case_ratios = [r["ratios"]["case_s"] for r in rows]
    print(f"\nratio sliding window ours/monai = "
          + ", ".join(f"{r['case']} {r['ratios']['sliding_s']:.2f}" for r in rows))
    print(f"ratio wall ours/monai = {statistics.median(case_ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
