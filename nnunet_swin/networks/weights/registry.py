"""The public pretrained Swin checkpoints users have: where each is, its licence, what it was pretrained on, and the
preset it loads into (``nnunet-swin weights list``), and ``fetch`` (download, checksum, atomic write).

Facts from ``shared/reference/public_swin_checkpoints.md``; ``None`` / "unverified" where no primary source says.
Torch-free.
"""
from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nnunet_swin.errors import UserError


@dataclass(frozen=True)
class PublicCheckpoint:
    name: str
    file: str
    url: str                  # the file itself
    page: str                 # where a person reads about it (and downloads it when the licence asks them to)
    licence: str
    parameters: str           # encoder parameters (as loaded) and the published figure
    data: str                 # pretraining data: modality, volumes
    spacing: str
    intensity: str
    preset: str               # the backbone preset it loads into
    md5: str | None = None    # the published checksum, when there is one
    own_download: bool = False  # the licence requires the user to download it themselves
    # What `plan_and_preprocess -like_pretrained NAME` takes (None: no primary source says; the planner keeps its own)
    modality: str = "CT"                        # "CT" or "MR": what the encoder saw
    spacing_mm: tuple[float, float, float] | None = None   # pretraining target spacing (z, y, x)
    input_range: tuple[float, float] = (0.0, 1.0)          # the range the encoder's input was scaled to
    roi: int | None = None                      # side of the pretraining crop (None: the preset's input size)


_HF = "https://huggingface.co"
REGISTRY: dict[str, PublicCheckpoint] = {e.name: e for e in [
    PublicCheckpoint("nvidia_swinvit", "model_swinvit.pt",
                     "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/model_swinvit.pt",
                     "https://github.com/Project-MONAI/research-contributions/tree/main/SwinUNETR/Pretrain",
                     "code Apache-2.0; weights' own licence unverified", "8.06 M encoder (f48)",
                     "CT, 5,050 volumes (self-supervised)", "unverified (no resampling in the public pipeline)",
                     "HU [-1000, 1000] -> [0, 1]", "swin_unetr", roi=96),
    PublicCheckpoint("voco_b", "VoCo_B_SSL_head.pt", f"{_HF}/Luffy503/VoCo/resolve/main/VoCo_B_SSL_head.pt",
                     f"{_HF}/Luffy503/VoCo", "see the model page", "53.2 M (README 53 M)",
                     "CT, PreCT-160K (160k volumes, self-supervised)", "1.5 mm isotropic (abdomen, head and neck)",
                     "HU [-175, 250] -> [0, 1]", "swin_unetr_v2", md5="f80c4da2f81d700bdae3df188f2057eb",
                     spacing_mm=(1.5, 1.5, 1.5), roi=64),
    PublicCheckpoint("voco_l", "VoCo_L_SSL_head.pt", f"{_HF}/Luffy503/VoCo/resolve/main/VoCo_L_SSL_head.pt",
                     f"{_HF}/Luffy503/VoCo", "see the model page", "212.0 M (README says 206 M)",
                     "CT, PreCT-160K (160k volumes, self-supervised)", "1.5 mm isotropic (abdomen, head and neck)",
                     "HU [-175, 250] -> [0, 1]", "swin_unetr_v2_96", md5="795095d1d43ef3808ec4c41798310136",
                     spacing_mm=(1.5, 1.5, 1.5), roi=64),
    PublicCheckpoint("voco_h", "VoCo_H_SSL_head.pt", f"{_HF}/Luffy503/VoCo/resolve/main/VoCo_H_SSL_head.pt",
                     f"{_HF}/Luffy503/VoCo", "see the model page", "847.3 M (README says 818 M)",
                     "CT, PreCT-160K (160k volumes, self-supervised)", "1.5 mm isotropic (abdomen, head and neck)",
                     "HU [-175, 250] -> [0, 1]", "swin_unetr_v2_192", md5="76f95a474736b60bf5b8aad94643744d",
                     spacing_mm=(1.5, 1.5, 1.5), roi=64),
    PublicCheckpoint("suprem", "supervised_suprem_swinunetr_2100.pth",
                     f"{_HF}/MrGiovanni/SuPreM/resolve/main/supervised_suprem_swinunetr_2100.pth",
                     f"{_HF}/MrGiovanni/SuPreM", "CC BY-NC-ND 4.0 (non-commercial, no derivatives)",
                     "62.19 M network (f48)", "CT, AbdomenAtlas 1.1 (2,100 volumes, 25 classes, supervised)",
                     "1.5 mm isotropic", "HU [-175, 250] -> [0, 1]", "swin_unetr",
                     md5="72688b8e5766e87f7c3712fa7555d1fd", spacing_mm=(1.5, 1.5, 1.5), roi=96),
    PublicCheckpoint("brainsegfounder_ukb", "model_weights_UKB-pretrain.pt",
                     f"{_HF}/smilelab/BrainSegFounder/resolve/main/model_weights_UKB-pretrain.pt",
                     f"{_HF}/smilelab/BrainSegFounder", "UK Biobank material transfer agreement (no redistribution)",
                     "62.19 M network (f48, depths 2-2-2-2; deeper files: swin_unetr_d6 / d18)",
                     "MRI, UK Biobank T1 + T2-FLAIR (~41,000 subjects, 2 channels, self-supervised)",
                     "MNI grid as given (no resampling)", "unverified (script defaults -1000..1000 -> [0, 1])",
                     "swin_unetr", own_download=True, modality="MR", roi=96),
]}


def lookup(name: str) -> PublicCheckpoint:
    if name not in REGISTRY:
        raise UserError(f"unknown public checkpoint {name!r}; `nnunet-swin weights list` shows: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def table() -> str:
    """``weights list``: one block per checkpoint."""
    blocks = []
    for e in REGISTRY.values():
        blocks.append("\n".join([
            f"{e.name}  ({e.file}; loads into preset {e.preset})", f"  source:     {e.url}",
            f"  licence:    {e.licence}" + ("  [download it yourself from the page]" if e.own_download else ""),
            f"  parameters: {e.parameters}", f"  data:       {e.data}", f"  spacing:    {e.spacing}",
            f"  intensity:  {e.intensity}", f"  checksum:   {'md5 ' + e.md5 if e.md5 else 'none published'}",
            f"  plan like:  nnunet-swin plan_and_preprocess -d ID -like_pretrained {e.name}"]))
    return "\n\n".join(blocks)


def fetch(name: str, folder: str | Path, url: str | None = None) -> Path:
    """Download checkpoint ``name`` into ``folder`` as ``<preset>.pt`` (the name ``nnUNet_swin_pretrained`` looks for),
    checking the published md5; ``url`` replaces the registry's source (a mirror, a ``file://`` copy)."""
    from nnunet_swin.io import write_chunks

    entry = lookup(name)
    if entry.own_download:
        raise UserError(f"{name}'s licence ({entry.licence}) requires your own download: get {entry.file} from "
                        f"{entry.page}, then put it in {folder} as {entry.preset}.pt")
    source = url or entry.url
    target = Path(folder) / f"{entry.preset}.pt"

    def download():
        digest = hashlib.md5()
        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    yield chunk
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UserError(f"cannot download {name} from {source} ({reason}); this machine may be offline: download "
                            f"it elsewhere and put it in {folder} as {entry.preset}.pt") from None
        if entry.md5 and digest.hexdigest() != entry.md5:
            raise UserError(f"{name} from {source} has md5 {digest.hexdigest()}, the published one is {entry.md5}; "
                            "the download is corrupt or not this checkpoint: fetch it again")

    return write_chunks(target, download())


__all__ = ["PublicCheckpoint", "REGISTRY", "fetch", "lookup", "table"]
