"""The study's analysis steps, each one of our commands on finished arms: subtypes, evaluate, compare (Table 2),
compare by subtype, ADI against padding fraction, CKA against the pretrained encoder."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnunet_swin.workflows.study_arms import CUBIC_ARMS
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
    """Table 2 over the arms with an evaluation, then the same by subtype."""
    def arms() -> list[str]:
        return [s.name.removeprefix("evaluate ") for s in evaluate if s.is_done()]

    def inputs() -> list[Path]:
        return [_evaluation(study, a) for a in arms()]

    def too_few() -> str | None:
        n = len(arms())
        return None if n >= 2 else f"{n} arm(s) with predictions; comparing needs 2"

    def command(*extra: str, out: str) -> list[str]:
        names = arms()
        return ours("compare", str(study.reference_folder()), *[str(study.prediction_folder_named(n)) for n in names],
                    "--names", *names, *extra, "-o", str(study.paths.output / out), *_common(study))

    subtype_csv = study.paths.output / "subtypes" / f"subtypes_{'test' if study.test_split() else 'train'}.csv"
    evaluated = tuple(s.name for s in evaluate)
    return [
        Step("compare", "compare", study.paths.logs / "compare.log", needs=evaluated, blocking=False, skip=too_few,
             outputs=lambda: [study.paths.output / "comparison" / "comparison_table.csv"], inputs=inputs,
             command=lambda: command(out="comparison")),
        Step("compare by subtype", "compare", study.paths.logs / "compare_by_subtype.log",
             needs=evaluated + ("subtypes",), blocking=False, inputs=lambda: inputs() + [subtype_csv],
             skip=lambda: too_few() or (None if subtype_csv.is_file() else f"no {subtype_csv.name} (subtypes step)"),
             outputs=lambda: [study.paths.output / "comparison_by_subtype" / "comparison_table.csv"],
             command=lambda: command("--subtypes", str(subtype_csv), out="comparison_by_subtype"))]


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
    for arm in (a for a in study.arms if a.subtype is None):
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
