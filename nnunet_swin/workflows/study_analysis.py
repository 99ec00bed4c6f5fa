"""The study's analysis steps, each one of our commands on finished arms: subtypes, evaluate, compare per
pre-specified family (and by subtype), ADI against padding fraction, CKA against the pretrained encoder and its floor
(the pretrained encoder against an untrained network of the same layout). The CNN baseline has no attention and no
Swin encoder: ADI and CKA skip it, saying so."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnunet_swin.workflows.study_arms import CUBIC_ARMS, PRESETS
from nnunet_swin.workflows.study_comparisons import SUBTYPE_FAMILIES, family_folder, study_families
from nnunet_swin.workflows.study_runner import Step
from nnunet_swin.workflows.study_splits import case_ids
from nnunet_swin.workflows.study_steps import analysis_images, arm_done, ours, pretrained_checkpoint

if TYPE_CHECKING:
    from nnunet_swin.workflows.study_context import Study


def subtypes_step(study: Study) -> Step:
    """Fit the subtypes on imagesTr/labelsTr and apply them to the test split."""
    out, raw = study.paths.output / "subtypes", study.raw_dataset

    def command() -> list[str]:
        cmd = ours("subtypes", "--train-images", str(raw / "imagesTr"), "--train-labels", str(raw / "labelsTr"),
                   "-o", str(out), "--file-ending", study.file_ending(), "--quiet")
        if study.test_split():
            cmd += ["--test-images", str(raw / "imagesTs"), "--test-labels", str(raw / "labelsTs")]
        if study.tumor_labels():
            cmd += ["--tumor-labels", *map(str, study.tumor_labels())]
        return cmd

    return Step("subtypes", "subtypes", study.paths.logs / "subtypes.log", command=command, needs=("plan",),
                outputs=lambda: [out / "subtypes_summary.json", out / "subtypes_train.csv"])


def _common(study: Study) -> list[str]:
    tumor = study.tumor_labels()
    return ["--dataset-json", str(study.raw_dataset / "dataset.json"), "-np", str(study.settings.num_processes),
            "--quiet"] + (["--tumor-labels", *map(str, tumor)] if tumor else [])


def _evaluation(study: Study, name: str) -> Path:
    return study.paths.output / "evaluation" / name / "metrics_per_case.csv"


def evaluation_steps(study: Study) -> list[Step]:
    ending = study.file_ending()
    reference_need = () if study.test_split() else ("cv reference",)
    steps = []
    for arm in study.arms:
        def predictions(arm=arm) -> list[Path]:
            return sorted(study.prediction_folder(arm).glob(f"*{ending}"))

        steps.append(Step(
            f"evaluate {arm.name}", "evaluate", study.paths.logs / f"evaluate_{arm.name}.log",
            outputs=lambda arm=arm: [_evaluation(study, arm.name)], inputs=predictions,
            command=lambda arm=arm: ours("evaluate", str(study.reference_folder()), str(study.prediction_folder(arm)),
                                         "-o", str(_evaluation(study, arm.name).parent), *_common(study)),
            needs=(f"predict {arm.name}",) + reference_need))
    return steps


def comparison_steps(study: Study, evaluate: list[Step]) -> list[Step]:
    """One ``compare --family F`` per pre-specified family with at least two of its arms in the study
    (``study_comparisons``), over the family's arms with an evaluation; then the same by subtype for the families
    where that answers something (``SUBTYPE_FAMILIES``)."""
    evaluated = tuple(s.name for s in evaluate)
    subtype_csv = study.paths.output / "subtypes" / f"subtypes_{'test' if study.test_split() else 'train'}.csv"
    steps = []
    for family in study_families(a.name for a in study.arms):
        def arms(family=family) -> list[str]:
            done = {s.name.removeprefix("evaluate ") for s in evaluate if s.is_done()}
            return [a for a in family.arms if a in done]

        def too_few(arms=arms, family=family) -> str | None:
            n = len(arms())
            return None if n >= 2 else (f"{n} arm(s) of family {family.name} ({', '.join(family.arms)}) with "
                                        f"predictions; comparing needs 2")

        def inputs(arms=arms) -> list[Path]:
            return [_evaluation(study, a) for a in arms()]

        def command(by_subtype: bool, arms=arms, family=family) -> list[str]:
            names = arms()
            extra = ["--subtypes", str(subtype_csv)] if by_subtype else []
            return ours("compare", str(study.reference_folder()),
                        *[str(study.prediction_folder_named(n)) for n in names], "--names", *names, "--family",
                        family.name, *extra, "-o", str(family_folder(study.paths.output, family.name, by_subtype)),
                        *_common(study))

        needs = tuple(f"evaluate {a}" for a in family.arms if f"evaluate {a}" in evaluated)
        name = f"compare {family.name}"
        steps.append(Step(
            name, "compare", study.paths.logs / f"compare_{family.name}.log", needs=needs, blocking=False,
            skip=too_few, inputs=inputs, command=lambda command=command: command(False),
            outputs=lambda family=family: [family_folder(study.paths.output, family.name) / "comparison_table.csv"]))
        if family.name in SUBTYPE_FAMILIES:
            steps.append(Step(
                f"{name} by subtype", "compare", study.paths.logs / f"compare_{family.name}_by_subtype.log",
                needs=needs + ("subtypes",), blocking=False, command=lambda command=command: command(True),
                inputs=lambda inputs=inputs: inputs() + [subtype_csv],
                skip=lambda too_few=too_few: too_few() or (None if subtype_csv.is_file() else
                                                           f"no {subtype_csv.name} (subtypes step)"),
                outputs=lambda family=family: [family_folder(study.paths.output, family.name, True)
                                               / "comparison_table.csv"]))
    return steps


def adi_step(study: Study, after: tuple[str, ...]) -> Step:
    """ADI of the ACT arm against the cubic arms, against padding fraction; surface Dice binned by pf from the
    evaluation of the first cubic arm (TA, else Base: the paper's Figure 4E bins by the cubic crop's pf, which is 0
    under ACT for most scans), or ACT's when no cubic arm finished."""
    def models():
        done = [a for a in study.arms if arm_done(study, a)]
        act = next((a for a in done if a.name == "ACT"), None)
        cubic = sorted((a for a in done if a.name in CUBIC_ARMS), key=lambda a: (a.name != "TA", a.name != "Base"))
        return [] if act is None else cubic[:1] + [act] + cubic[1:]

    def command() -> list[str]:
        chosen = models()
        act = next(a for a in chosen if a.name == "ACT")
        cmd = ours("adi", "-i", str(analysis_images(study)), "-o", str(study.paths.output / "adi"), "-f",
                   str(study.folds(act)[0]), "--device", study.device, "--quiet")
        for a in chosen:
            cmd += ["-m", str(study.model_folder(a)), "--label", a.name]
        if _evaluation(study, chosen[0].name).is_file():
            cmd += ["--evaluation", str(_evaluation(study, chosen[0].name))]
        return cmd

    def inputs() -> list[Path]:
        chosen = models()
        return [study.model_folder(a) / f"fold_{f}" / "checkpoint_final.pth" for a in chosen for f in study.folds(a)] \
            + ([_evaluation(study, chosen[0].name)] if chosen else [])

    return Step("adi", "adi", study.paths.logs / "adi.log", command=command, inputs=inputs, needs=after,
                blocking=False, outputs=lambda: [study.paths.output / "adi" / "adi_summary.json"],
                skip=lambda: None if models() else "the ACT arm has not finished", resources=study.resources)


def cka_steps(study: Study, train_names: dict[str, list[str]]) -> list[Step]:
    """CKA of every paper arm against the pretrained encoder (needs ``nnUNet_swin_pretrained``)."""
    steps = []
    for arm in (a for a in study.arms if a.subtype is None and a.swin):
        def skip(arm=arm) -> str | None:
            if pretrained_checkpoint(study) is None:
                return "nnUNet_swin_pretrained is not set or holds no checkpoint for the plans' backbone"
            if not arm_done(study, arm):
                return f"arm {arm.name} has not finished"
            images = analysis_images(study, minimum=4)
            n = len(case_ids(images, study.file_ending(), True))
            return None if n >= 4 else f"CKA needs at least 4 images, {images} holds {n}"

        def command(arm=arm) -> list[str]:
            images = analysis_images(study, minimum=4)
            n = len(case_ids(images, study.file_ending(), True))
            return ours("cka", "--pretrained", str(pretrained_checkpoint(study)), "-b", str(study.model_folder(arm)),
                        "--fold-b", str(study.folds(arm)[0]), "--label-a", "pretrained", "--label-b", arm.name, "-i",
                        str(images), "-o", str(study.paths.output / "cka" / arm.name), "--batch-size", str(min(8, n)),
                        "--device", study.device, "--quiet")

        steps.append(Step(
            f"cka {arm.name}", "cka", study.paths.logs / f"cka_{arm.name}.log", command=command, skip=skip,
            needs=tuple(train_names[arm.name]), resources=study.resources,
            outputs=lambda arm=arm: [study.paths.output / "cka" / arm.name / "cka_summary.json"],
            inputs=lambda arm=arm: [study.model_folder(arm) / f"fold_{f}" / "checkpoint_final.pth"
                                    for f in study.folds(arm)]))
    return steps


CKA_FLOOR = "random-init"
CKA_FLOOR_LABEL = "random init"


def _cka_images(study: Study) -> tuple[Path, int]:
    images = analysis_images(study, minimum=4)
    return images, len(case_ids(images, study.file_ending(), True))


def cka_floor_configuration(study: Study) -> str | None:
    """The configuration the floor is measured on: ACT's, else the first Swin arm's (None: no Swin arm)."""
    swin = [a for a in study.arms if a.swin and a.subtype is None]
    return next((a.configuration for a in swin if a.name == "ACT"), swin[0].configuration if swin else None)


def cka_floor_step(study: Study) -> Step:
    """CKA of the pretrained encoder against an untrained network of the same layout (the study's plans, the ACT
    configuration, random initialisation with the study's seed): what any network of that architecture reaches, the
    floor under every arm's CKA. Written as ``cka/random-init/cka_summary.json`` (labelled "random init")."""
    out = study.paths.output / "cka" / CKA_FLOOR

    def skip() -> str | None:
        if cka_floor_configuration(study) is None:
            return "no Swin arm in the study"
        if pretrained_checkpoint(study) is None:
            return "nnUNet_swin_pretrained is not set or holds no checkpoint for the plans' backbone"
        images, n = _cka_images(study)
        return None if n >= 4 else f"CKA needs at least 4 images, {images} holds {n}"

    def command() -> list[str]:
        images, n = _cka_images(study)
        return ours("cka", "--pretrained", str(pretrained_checkpoint(study)), "--random-b", "--plans",
                    str(study.plans_file), "--dataset-json", str(study.raw_dataset / "dataset.json"), "-c",
                    cka_floor_configuration(study), "--seed", str(study.settings.seed), "--label-a", "pretrained",
                    "--label-b", CKA_FLOOR_LABEL, "-i", str(images), "-o", str(out), "--batch-size", str(min(8, n)),
                    "--device", study.device, "--quiet")

    needs = ("plan",) + (("pretrain encoder",) if PRESETS[study.settings.preset].synthetic else ())
    return Step(f"cka {CKA_FLOOR}", "cka", study.paths.logs / f"cka_{CKA_FLOOR}.log", command=command, skip=skip,
                needs=needs, resources=study.resources, outputs=lambda: [out / "cka_summary.json"],
                inputs=lambda: [study.plans_file] + ([c] if (c := pretrained_checkpoint(study)) else []))


def not_applicable_steps(study: Study) -> list[Step]:
    """ADI and CKA of an arm without attention or Swin encoder (the CNN): recorded as skipped, with the reason."""
    steps = []
    for arm in (a for a in study.arms if not a.swin):
        why = (f"arm {arm.name} is a CNN planned by stock nnU-Net ({arm.planner}): it has no attention windows to "
               f"dilute and no Swin encoder to compare with the pretrained one")
        for kind in ("adi", "cka"):
            steps.append(Step(f"{kind} {arm.name}", kind, study.paths.logs / f"{kind}_{arm.name}.log",
                              outputs=lambda: [], skip=lambda why=why: why, blocking=False))
    return steps
