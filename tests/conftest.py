"""Shared test helpers: nnU-Net folders in a temporary directory, the real sample volume, small datasets."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slurm_cluster import slurm_cluster  # noqa: F401 (a one-node SLURM, for the cluster tests)

HERE = Path(__file__).resolve().parent
SHARED_REAL = HERE.parent.parent / "shared" / "data" / "real"


def real_data_dir() -> Path:
    """The bundled copy of the real sample volumes (falls back to the shared checkout folder)."""
    bundled = HERE / "data" / "real"
    if (bundled / "pyrad_brain1_0000.nii.gz").is_file():
        return bundled
    return SHARED_REAL


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch):
    """nnUNet_raw / nnUNet_preprocessed / nnUNet_results under tmp_path, set in this process's environment."""
    dirs = {name: tmp_path / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for name, path in dirs.items():
        path.mkdir()
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    return dirs


def _run_cli(*args: str, env: dict | None = None, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a console script (ours or nnU-Net's) from the active environment's bin folder."""
    exe = Path(sys.executable).parent / args[0]
    cmd = [str(exe) if exe.exists() else shutil.which(args[0]) or args[0], *args[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _write_real_dataset(raw: Path, dataset_id: int = 502, copies: int = 3) -> Path:
    """An nnU-Net raw dataset from the real thick-slice brain MRI: the volume and two flipped copies for training,
    the original in imagesTs."""
    import numpy as np
    import SimpleITK as sitk

    src = real_data_dir()
    img = sitk.ReadImage(str(src / "pyrad_brain1_0000.nii.gz"))
    lab = sitk.ReadImage(str(src / "pyrad_brain1_label.nii.gz"))
    folder = raw / f"Dataset{dataset_id:03d}_RealBrain"
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True)
    for i in range(copies):
        def flip(image, axis=i):
            arr = sitk.GetArrayFromImage(image)
            arr = np.flip(arr, axis=2 - (axis % 3)).copy() if axis else arr
            out = sitk.GetImageFromArray(arr)
            out.CopyInformation(image)
            return out
        sitk.WriteImage(flip(img), str(folder / "imagesTr" / f"brain_{i:03d}_0000.nii.gz"))
        sitk.WriteImage(flip(lab), str(folder / "labelsTr" / f"brain_{i:03d}.nii.gz"))
    sitk.WriteImage(img, str(folder / "imagesTs" / "brain_test_0000.nii.gz"))
    sitk.WriteImage(lab, str(folder / "labelsTs" / "brain_test.nii.gz"))
    import json
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T2"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": copies, "file_ending": ".nii.gz", "name": "RealBrain"}))
    return folder


# ----------------------------------------------------------------------------------- public checkpoint layouts
# Each public Swin checkpoint layout of shared/reference/public_swin_checkpoints.md, built as its section 9 says: the
# keys and shapes come from MONAI 1.6.1's own SwinUNETR (the module the public code used), the checkpoint's own prefix
# and wrapper are put on top, float tensors are N(0, 0.02) and index buffers keep their real values.
PUBLIC_LAYOUTS = {
    # name: (preset it loads into, tensors, format the adapters must name)
    "nvidia_model_swinvit": ("swin_unetr", 128, "nvidia_swinvit"),
    "voco_b_ssl_head": ("swin_unetr_v2", 145, "voco_ssl_head"),
    "vocomni_b": ("swin_unetr_v2", 167, "monai_swinunetr_v2"),
    "suprem_swinunetr": ("swin_unetr", 170, "suprem"),
    "brainsegfounder_ukb": ("swin_unetr", 142, "swin_ssl_head"),
    "brainsegfounder_64m": ("swin_unetr_d6", 198, "swin_ssl_head"),
    "monai14_swinunetr": ("swin_unetr", 159, "monai_swinunetr"),
    "monai15_swinunetr": ("swin_unetr_monai15", 159, "monai_swinunetr"),
    "monai_swinunetr_v2": ("swin_unetr_v2", 167, "monai_swinunetr_v2"),
}


def _monai_swinunetr_state(feature: int = 48, in_ch: int = 1, out: int = 14, v2: bool = False,
                           depths=(2, 2, 2, 2), meta: bool = False) -> dict:
    import torch
    from monai.networks.nets import SwinUNETR

    from nnunet_swin.networks.attention import relative_position_index

    if meta:  # shapes only (VoCo L/H: 212 M / 847 M parameters); MONAI reads its drop-path rates with .item()
        import monai.networks.nets.swin_unetr as module
        linspace = torch.linspace
        module.torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
        try:
            with torch.device("meta"):
                net = SwinUNETR(in_channels=in_ch, out_channels=out, feature_size=feature, use_v2=v2, depths=depths)
        finally:
            module.torch.linspace = linspace
    else:
        net = SwinUNETR(in_channels=in_ch, out_channels=out, feature_size=feature, use_v2=v2, depths=depths)
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("relative_position_index"):
            side = round(v.shape[0] ** (1 / 3))
            state[k] = relative_position_index((side,) * 3, (side,) * 3)
        elif meta:
            state[k] = v
        else:
            state[k] = torch.randn(v.shape, generator=g) * 0.02
    return state


def _ssl_head_extras(in_ch: int) -> dict:
    """NVIDIA ``SSLHead`` / BrainSegFounder heads: rotation (4), contrastive (512), the 'vae' reconstruction decoder."""
    import torch
    out = {"rotation_head.weight": (4, 768), "rotation_head.bias": (4,), "contrastive_head.weight": (512, 768),
           "contrastive_head.bias": (512,)}
    chans = [768, 384, 192, 96, 48, 48, in_ch]
    for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
        k = 1 if i == 5 else 3
        out[f"conv.{4 * i}.weight"], out[f"conv.{4 * i}.bias"] = (b, a, k, k, k), (b,)
    return {k: torch.randn(s) * 0.02 for k, s in out.items()}


def build_public_checkpoint(name: str, meta: bool = False) -> dict:
    """The loaded-object form (what ``torch.load`` returns) of the named public layout."""
    import torch
    if name == "nvidia_model_swinvit":  # {"state_dict": module.<encoder key> (fc1/fc2) + module.norm.*}: 128
        swin = {k[len("swinViT."):]: v for k, v in _monai_swinunetr_state().items() if k.startswith("swinViT.")}
        sd = {"module." + k.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2"): v
              for k, v in swin.items()}
        sd["module.norm.weight"], sd["module.norm.bias"] = torch.ones(384), torch.zeros(384)
        return {"state_dict": sd}
    if name.startswith("voco_") and name.endswith("_ssl_head"):  # bare: swinViT (v2) + encoder1/2/3/4/10: 145
        feature = {"b": 48, "l": 96, "h": 192}[name.split("_")[1]]
        st = _monai_swinunetr_state(feature, v2=True, meta=meta)
        return {k: v for k, v in st.items() if k.startswith(("swinViT.", "encoder"))}
    if name == "vocomni_b":  # {"epoch", "best_acc", "state_dict": full SwinUNETR-V2, 21 classes}: 167
        return {"epoch": 0, "best_acc": 0.0, "state_dict": _monai_swinunetr_state(48, out=21, v2=True)}
    if name == "suprem_swinunetr":  # {"net": module.backbone.<SwinUNETR without out> + module.<heads>}: 170
        backbone = {k: v for k, v in _monai_swinunetr_state().items() if not k.startswith("out.")}
        heads = {"organ_embedding": (32, 512), "precls_conv.0.weight": (48,), "precls_conv.0.bias": (48,),
                 "precls_conv.2.weight": (8, 48, 1, 1, 1), "precls_conv.2.bias": (8,), "GAP.0.weight": (768,),
                 "GAP.0.bias": (768,), "GAP.3.weight": (256, 768, 1, 1, 1), "GAP.3.bias": (256,),
                 "controller.weight": (153, 512, 1, 1, 1), "controller.bias": (153,),
                 "text_to_vision.weight": (256, 512), "text_to_vision.bias": (256,)}
        net = {"module.organ_embedding": torch.randn(32, 512)}
        net.update({f"module.backbone.{k}": v for k, v in backbone.items()})
        net.update({f"module.{k}": torch.randn(s) * 0.02 for k, s in heads.items() if k != "organ_embedding"})
        return {"net": net, "optimizer": {}, "scheduler": {}, "epoch": 0}
    if name.startswith("brainsegfounder"):  # {"global_step", "epoch", "state_dict": module.swinViT + heads}
        depths = (2, 2, 6, 2) if name.endswith("64m") else (2, 2, 2, 2)
        swin = {k: v for k, v in _monai_swinunetr_state(48, in_ch=2, depths=depths).items()
                if k.startswith("swinViT.")}
        sd = {f"module.{k}": v for k, v in {**swin, **_ssl_head_extras(2)}.items()}
        return {"global_step": 0, "epoch": 0, "state_dict": sd, "optimizer": {}}
    if name in ("monai14_swinunetr", "monai15_swinunetr"):  # same 159 keys in every MONAI version
        return _monai_swinunetr_state()
    if name == "monai_swinunetr_v2":
        return _monai_swinunetr_state(48, v2=True)
    raise KeyError(name)


def build_pretraining_checkpoint(path: Path, backbone: str = "smit_tiny", spacing=(1.5, 1.5, 1.5), crop: int = 64,
                                 modality: str = "CT") -> Path:
    """A checkpoint file laid out as ``nnunet-swin pretrain`` writes it: the teacher encoder, the metadata (the schema
    of ``networks.weights.metadata``) and its adaptation plan."""
    import torch

    from nnunet_swin.io import save_checkpoint
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY, FORMAT, adaptation_plan

    intensity = ({"modality": "CT", "scheme": "ct_hu_window", "hu_window": [-175.0, 250.0], "output_range": [0.0, 1.0]}
                 if modality == "CT" else {"modality": "MR", "scheme": "mr_percentile_clip", "lower": "min",
                                           "upper_percentile": 99.0, "output_range": [0.0, 1.0]})
    meta = {"format": FORMAT, "format_version": 1, "method": "smit", "backbone": backbone,
            "arch_kwargs": get_preset(backbone), "in_channels": 1, "crop": crop, "spacing_zyx_mm": list(spacing),
            "intensity": intensity, "epochs": 1, "epochs_completed": 1, "num_volumes": 2, "finished": True,
            "encoder_loaded": "teacher"}
    return save_checkpoint(path, {"teacher": {"encoder.patch_embed.proj.weight": torch.zeros(12, 1, 2, 2, 2)},
                                  "metadata": meta, ADAPTATION_PLAN_KEY: adaptation_plan(meta)})


@pytest.fixture
def pretraining_checkpoint():
    """``pretraining_checkpoint(path, backbone, spacing, crop, modality)``: see ``build_pretraining_checkpoint``."""
    return build_pretraining_checkpoint


@pytest.fixture
def public_checkpoint():
    """``public_checkpoint(name)``: the loaded-object form of a public layout (see ``PUBLIC_LAYOUTS``)."""
    return build_public_checkpoint


@pytest.fixture(params=list(PUBLIC_LAYOUTS))
def public_layout(request):
    """Each public layout in turn: ``(name, preset, number of tensors, format name)``."""
    return (request.param, *PUBLIC_LAYOUTS[request.param])


@pytest.fixture
def run_cli():
    """``run_cli("nnunet-swin", "evaluate", ..., env=..., check=...)``: a console script of this environment in a
    subprocess (callers are marked ``slow`` when the command trains or plans)."""
    return _run_cli


@pytest.fixture
def write_real_dataset():
    """``write_real_dataset(raw, dataset_id, copies)``: a raw dataset from the real thick-slice brain MRI."""
    return _write_real_dataset
