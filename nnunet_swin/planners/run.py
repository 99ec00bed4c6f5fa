"""Fingerprint -> plan -> preprocess through nnU-Net's own API, with our planner classes handed over directly.

This is what ``nnunet-swin plan_and_preprocess`` runs; nnU-Net's name lookup of ``-pl`` only searches nnunetv2's own
folders, so our classes are passed to ``plan_experiment_dataset`` instead (stock names still go through nnU-Net).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from nnunet_swin.errors import UserError
from nnunet_swin.raw_dataset.checks import check_raw_dataset
from nnunet_swin.raw_dataset.folders import find_raw_dataset, read_dataset_json

STOCK_DEFAULT_CONFIGURATIONS = ["2d", "3d_fullres", "3d_lowres"]
# stock configurations a planner may leave out (nnU-Net skips them with a message): not an error when asked for
STOCK_OPTIONAL_CONFIGURATIONS = ("2d", "3d_lowres", "3d_cascade_fullres")


@dataclass
class SwinPlanOptions:
    """Our planner's own settings (absent from stock nnU-Net). ``None`` keeps the planner default."""

    backbone: str | None = None
    inplane_patch: tuple[int, int] | None = None
    pf_threshold: float | None = None
    cubic_size: int | None = None
    batch_size: int | None = None
    resampling: str | None = None
    normalization: str | None = None
    tumor_labels: tuple[int, ...] | None = None
    pretraining_spacing: tuple[float, float, float] | None = None   # set by -like_pretrained (z, y, x) mm
    like_pretrained: dict | None = None          # what -like_pretrained took, recorded in the plans

    def as_kwargs(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}

    def validate(self) -> None:
        """Refuse values the planner would silently replace (0 -> default) or crash on (negative sizes)."""
        if self.cubic_size is not None and self.cubic_size < 1:
            raise UserError(f"-cubic_size must be a positive number of voxels (e.g. 96 or 128), got {self.cubic_size}; "
                            "omit it for the backbone's pretraining size")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"-batch_size must be at least 1, got {self.batch_size}")
        if self.inplane_patch is not None and min(self.inplane_patch) < 1:
            raise UserError(f"-inplane_patch takes two positive sides in voxels (e.g. 128 128), got "
                            f"{list(self.inplane_patch)}")
        if self.pf_threshold is not None and not 0 <= self.pf_threshold < 1:
            raise UserError(f"-pf_threshold is a padding fraction in [0, 1), got {self.pf_threshold}")


def resolve_planner(name: str, options: SwinPlanOptions = SwinPlanOptions()):
    """Our planner (with options bound) or a stock nnU-Net planner class, by name."""
    from nnunet_swin.planners.swin_planner import PLANNERS

    if name in PLANNERS:
        return functools.partial(PLANNERS[name], **options.as_kwargs()), True
    if options.as_kwargs():
        raise UserError(f"options {', '.join('-' + k for k in options.as_kwargs())} only apply to "
                        f"{' / '.join(PLANNERS)}, not to {name}")
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    cls = recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "experiment_planning"), name,
                                      current_module="nnunetv2.experiment_planning")
    if cls is None:
        raise UserError(f"unknown planner {name!r}; ours: {', '.join(PLANNERS)}; or a stock nnU-Net planner such as "
                        f"ExperimentPlanner, nnUNetPlannerResEncM")
    return cls, False


DEFAULT_PLANNER = "SMITPlanner"


@dataclass
class PlanRequest:
    dataset_ids: list[int]
    planner: str | None = None          # None: SMITPlanner, or the planner of the -like_pretrained checkpoint's family
    like_pretrained: str | None = None  # a checkpoint file or a registry name (planners/like_pretrained.py)
    options: SwinPlanOptions = field(default_factory=SwinPlanOptions)
    fingerprint_extractor: str = "DatasetFingerprintExtractor"
    num_processes_fingerprint: int = 8
    verify_dataset_integrity: bool = False
    no_pp: bool = False
    clean: bool = False
    gpu_memory_target: float | None = None
    preprocessor_name: str = "DefaultPreprocessor"
    overwrite_target_spacing: list[float] | None = None
    overwrite_plans_name: str | None = None
    configurations: list[str] | None = None
    num_processes: list[int] | None = None
    verbose: bool = False
    progress: bool = True
    check_dataset: bool = True


def _check_preprocessor(name: str) -> None:
    """The preprocessor class must exist in nnunetv2.preprocessing (stock preprocessing looks it up there)."""
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    if recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "preprocessing"), name,
                                   current_module="nnunetv2.preprocessing") is None:
        raise UserError(f"unknown preprocessor {name!r} (-preprocessor_name); nnU-Net finds only classes in "
                        f"nnunetv2.preprocessing, e.g. DefaultPreprocessor (the default)")


def plan_and_preprocess(req: PlanRequest) -> str:
    """Run the whole chain for every dataset; returns the plans identifier. Validates all inputs first, including
    every raw file (:func:`check_raw_dataset`) unless ``check_dataset`` is off."""
    req.options.validate()
    if req.overwrite_target_spacing is not None:
        from nnunet_swin.planners.swin_planner import validate_target_spacing

        validate_target_spacing(req.overwrite_target_spacing)
    options, planner = req.options, req.planner
    if req.like_pretrained is not None:
        from nnunet_swin.networks.weights.plan_settings import plan_settings
        from nnunet_swin.planners.like_pretrained import apply_settings

        options, planner, lines = apply_settings(plan_settings(req.like_pretrained), options, planner,
                                                 req.overwrite_target_spacing)
        print("\n".join(lines))
        options.validate()
    planner_cls, ours = resolve_planner(planner or DEFAULT_PLANNER, options)
    if req.num_processes_fingerprint < 1:
        raise UserError(f"-npfp must be at least 1 process, got {req.num_processes_fingerprint}")
    if req.num_processes is not None and min(req.num_processes) < 1:
        raise UserError(f"-np takes process counts of at least 1, got {list(req.num_processes)}")
    _check_preprocessor(req.preprocessor_name)
    raw_folders = [find_raw_dataset(d) for d in req.dataset_ids]
    for folder in raw_folders:  # fail before anything is written
        read_dataset_json(folder)
    if req.check_dataset:
        for folder in raw_folders:
            check_raw_dataset(folder, num_threads=req.num_processes_fingerprint)
    if not os.environ.get("nnUNet_preprocessed"):
        raise UserError("nnUNet_preprocessed is not set; export nnUNet_preprocessed=/path/to/nnUNet_preprocessed")
    configurations = req.configurations or (["3d_fullres"] if ours else STOCK_DEFAULT_CONFIGURATIONS)
    if req.num_processes is None:
        default = max(1, min(4, os.cpu_count() or 1))
        num_processes = [default] * len(configurations)
    else:
        num_processes = list(req.num_processes)
        if len(num_processes) == 1:
            num_processes *= len(configurations)
        if len(num_processes) != len(configurations):
            raise UserError(f"-np takes one number or one per configuration ({len(configurations)}), "
                            f"got {len(num_processes)}")

    import nnunetv2
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprint_dataset,
                                                                       plan_experiment_dataset, preprocess_dataset)
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    fpe = recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "experiment_planning"),
                                      req.fingerprint_extractor, current_module="nnunetv2.experiment_planning")
    if fpe is None:
        raise UserError(f"unknown fingerprint extractor {req.fingerprint_extractor!r}; "
                        f"the default is DatasetFingerprintExtractor")
    plans_identifier = None
    for d in req.dataset_ids:
        print("Fingerprint extraction...")
        extract_fingerprint_dataset(d, fpe, req.num_processes_fingerprint, req.verify_dataset_integrity, req.clean,
                                    req.verbose, show_progress_bar=req.progress)
        print("Experiment planning...")
        _, plans_identifier = plan_experiment_dataset(d, planner_cls, req.gpu_memory_target, req.preprocessor_name,
                                                      req.overwrite_target_spacing, req.overwrite_plans_name)
        if not req.no_pp:
            print("Preprocessing...")
            # configurations sharing one data identifier are preprocessed once
            from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
            from nnunetv2.paths import nnUNet_preprocessed
            from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

            pm = PlansManager(os.path.join(str(nnUNet_preprocessed), convert_id_to_dataset_name(d),
                                           plans_identifier + ".json"))
            absent = [c for c in configurations if c not in pm.available_configurations]
            unknown = [c for c in absent if c not in STOCK_OPTIONAL_CONFIGURATIONS]
            if unknown and req.configurations is not None:
                raise UserError(f"unknown configuration(s) {', '.join(unknown)} (-c); the plans "
                                f"{plans_identifier} have {', '.join(pm.available_configurations)}")
            for c in absent:
                if c not in unknown:
                    print(f"note: the plans {plans_identifier} have no {c} (nnU-Net plans it only when needed); "
                          f"not preprocessed")
            seen, todo, todo_np = set(), [], []
            for c, n in zip(configurations, num_processes):
                key = pm.get_configuration(c).data_identifier if c in pm.available_configurations else c
                if key not in seen:
                    seen.add(key)
                    todo.append(c)
                    todo_np.append(n)
            preprocess_dataset(d, plans_identifier, todo, todo_np, req.verbose, show_progress_bar=req.progress)
    return plans_identifier
