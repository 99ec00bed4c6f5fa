"""What loading a checkpoint did, key by key (``LoadReport``), and what ``weights inspect`` prints (``Inspection``).
Encoder keys are ours (``layers.{i}.blocks.{j}...``); checkpoint keys are the file's own."""
from __future__ import annotations

from dataclasses import dataclass, field

from nnunet_swin.networks.presets import FAMILY_NAMES


@dataclass
class LoadReport:
    """How a checkpoint's keys landed on the encoder. Encoder keys are ours (``layers.{i}.blocks.{j}...``)."""
    source_format: str
    matched: list[str] = field(default_factory=list)            # encoder keys loaded unchanged
    adapted: dict[str, str] = field(default_factory=dict)       # encoder key -> what was done to the tensor
    missing: list[str] = field(default_factory=list)            # encoder keys the checkpoint does not cover
    unexpected: list[str] = field(default_factory=list)         # checkpoint keys that map to no encoder key
    shape_mismatched: dict[str, tuple] = field(default_factory=dict)  # encoder key -> (checkpoint, model) shape
    ignored: dict[str, str] = field(default_factory=dict)       # checkpoint key -> why it is not loaded
    renamed: dict[str, str] = field(default_factory=dict)       # checkpoint key -> encoder key
    new: list[str] = field(default_factory=list)                # variant-module keys the checkpoint cannot hold
    merge_order: str | None = None                              # the patch-merging order the weights run with
    merge_reason: str = ""                                      # why that order

    @property
    def complete(self) -> bool:
        """Every encoder parameter covered, nothing left over or unadaptable."""
        return not (self.missing or self.unexpected or self.shape_mismatched)

    def summary(self) -> str:
        n_ign = len(self.ignored)
        lines = [f"format {self.source_format}: {len(self.matched)} matched, {len(self.adapted)} adapted, "
                 f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                 f"{len(self.shape_mismatched)} shape-mismatched, {n_ign} ignored"
                 + (f", {len(self.new)} new" if self.new else "")]
        if self.merge_order is not None:
            lines.append(f"  merge     patch-merging order {self.merge_order}: {self.merge_reason}")
        if self.new:
            lines.append(f"  new       {len(self.new)} key(s) of the variant's own modules (multi-scale fusion, "
                         "adaptive attention), kept at their identity initialisation")
        for key, what in self.adapted.items():
            lines.append(f"  adapted   {key}: {what}")
        for key in self.missing:
            lines.append(f"  missing   {key}")
        for key in self.unexpected:
            lines.append(f"  unexpected {key}")
        for key, (a, b) in self.shape_mismatched.items():
            lines.append(f"  shape     {key}: checkpoint {tuple(a)} vs model {tuple(b)}")
        reasons: dict[str, int] = {}
        for reason in self.ignored.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            lines.append(f"  ignored   {count} key(s): {reason}")
        return "\n".join(lines)

    __str__ = summary



@dataclass
class Inspection:
    """What ``nnunet-swin weights inspect`` prints."""
    path: str
    wrapper: str
    source_format: str
    source: str
    family: str | None
    architecture: str
    in_channels: int | None
    n_tensors: int
    fits: list[str]
    best_preset: str | None
    report: LoadReport | None

    def __str__(self) -> str:
        family = FAMILY_NAMES.get(self.family, "own network") if self.family else "nnunet_swin network"
        lines = [f"checkpoint: {self.path}", f"wrapper:    {self.wrapper}", f"format:     {self.source_format}"
                 f" ({family})", f"source:     {self.source}", f"architecture: {self.architecture}",
                 f"tensors:    {self.n_tensors}", f"in_channels: {self.in_channels}",
                 "fits presets: " + (", ".join(self.fits) if self.fits else "none completely")]
        if self.report is not None:
            unmapped = self.report.unexpected
            lines.append("unmapped keys: " + (", ".join(unmapped[:6]) + (" ..." if len(unmapped) > 6 else "")
                                              if unmapped else "none"))
        if self.best_preset is not None:
            lines.append(f"mapping onto preset {self.best_preset!r}:")
            lines.append(str(self.report))
        return "\n".join(lines)
