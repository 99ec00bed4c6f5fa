"""`nnunet-swin make_demo_dataset`: the synthetic pelvic-MRI-like tumour dataset in nnU-Net raw format."""
from __future__ import annotations

import argparse
import os

from nnunet_swin.cli import options
from nnunet_swin.errors import UserError


def main(argv: list[str]) -> int:
    from nnunet_swin.datasets.synthetic import SyntheticSpec

    p = argparse.ArgumentParser(prog="nnunet-swin make_demo_dataset",
                                parents=[options.dataset(501), options.seed(SyntheticSpec.seed)],
                                description="Write DatasetNNN_Name (imagesTr/labelsTr/imagesTs/labelsTs, dataset.json) "
                                            "with bright/sharp and dark/diffuse tumour subtypes; deterministic.")
    p.add_argument("--name", default="SyntheticRectum", help="dataset name (default SyntheticRectum)")
    p.add_argument("-o", "--output", default=None, help="nnUNet_raw folder (default: $nnUNet_raw)")
    options.from_dataclass(p, SyntheticSpec, "num_train", "num_test", "fov_mm", "channels", "labels",
                           underscore_aliases=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset with this id")
    p.add_argument("--kind", default="rectum", choices=("rectum", "spine"),
                   help="rectum (default): the MRI tumour dataset; spine: 5-7 vertebrae, discs and the spinal canal "
                        "(9 labels; --name defaults to SyntheticSpine)")
    p.add_argument("--modality", default="CT", choices=("CT", "MR"), help="contrast of --kind spine (default CT)")
    a = p.parse_args(argv)
    out = a.output or os.environ.get("nnUNet_raw")
    if not out:
        raise UserError("no output folder: pass -o /path/to/nnUNet_raw or export nnUNet_raw")
    if a.fov_mm < 40:
        raise UserError(f"--fov-mm must be at least 40 mm to hold the anatomy, got {a.fov_mm}")
    if a.kind == "spine":
        from nnunet_swin.datasets.synthetic_spine import SpineSpec, make_spine_dataset

        name = "SyntheticSpine" if a.name == "SyntheticRectum" else a.name
        spec = SpineSpec(num_train=a.num_train, num_test=a.num_test, modality=a.modality, fov_mm=a.fov_mm, seed=a.seed)
        print(f"wrote {make_spine_dataset(out, a.dataset_id, name, spec, overwrite=a.overwrite)}")
        return 0
    from nnunet_swin.datasets.synthetic import make_demo_dataset

    spec = SyntheticSpec(num_train=a.num_train, num_test=a.num_test, fov_mm=a.fov_mm, seed=a.seed,
                         channels=tuple(a.channels), labels=a.labels)
    path = make_demo_dataset(out, a.dataset_id, a.name, spec, overwrite=a.overwrite)
    print(f"wrote {path}")
    return 0
