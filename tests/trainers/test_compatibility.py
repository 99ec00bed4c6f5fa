"""Plans checks and the left-right flip axis."""
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.networks.presets import NETWORK_CLASS_NAME
from nnunet_swin.trainers.compatibility import geometry_mismatch, require_foreground, require_swin_network
from nnunet_swin.trainers.mirroring import left_right_axis


def test_stock_unet_plans_are_refused_with_the_fix():
    with pytest.raises(UserError, match=r"PlainConvUNet.*nnunet-swin plan_and_preprocess.*-pl SMITPlanner"):
        require_swin_network("dynamic_network_architectures.architectures.unet.PlainConvUNet", "nnUNetPlans",
                             "3d_fullres")
    require_swin_network(NETWORK_CLASS_NAME, "nnUNetSMITPlans", "3d_fullres")


def test_no_foreground_label():
    with pytest.raises(UserError, match="no foreground label"):
        require_foreground([], "Dataset001_X")
    require_foreground([1], "Dataset001_X")


def test_geometry_mismatch_messages():
    assert geometry_mismatch({"swin": {"kind": "anisotropic"}}, "anisotropic", "SwinACTTrainer", "3d_fullres") is None
    msg = geometry_mismatch({"swin": {"kind": "cubic"}}, "anisotropic", "SwinACTTrainer", "3d_cubic")
    assert "meant for the anisotropic configuration (3d_fullres)" in msg and "'3d_cubic' is cubic" in msg
    msg = geometry_mismatch({"swin": {"kind": "anisotropic"}}, "cubic", "SwinBaseTrainer", "3d_fullres")
    assert "meant for the cubic configuration (3d_cubic)" in msg
    assert "no 'swin' geometry metadata" in geometry_mismatch({}, "cubic", "SwinBaseTrainer", "3d_fullres")


@pytest.mark.parametrize("transpose, expected", [([0, 1, 2], 2), ([2, 0, 1], 0), ([1, 2, 0], 1), ([0, 2, 1], 1)])
def test_left_right_axis_follows_transpose_forward(transpose, expected):
    assert left_right_axis(transpose) == expected


def test_left_right_axis_rejects_non_permutations():
    with pytest.raises(ValueError):
        left_right_axis([0, 0, 1])
