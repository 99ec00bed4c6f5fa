"""Datasets the tool writes itself: the synthetic pelvic-MRI-like tumour dataset for tests and the demo."""
from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset

__all__ = ["SyntheticSpec", "make_demo_dataset"]
