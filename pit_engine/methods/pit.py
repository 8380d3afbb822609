"""PIT, Pivot Interaction Transfer (Lv et al., CVPR 2020), as this project reconstructs it.

B  a pivot head (image-level classifier) learns on the source which classes a frame holds;
C  on the target its verdict q, or the refreshed max(q, GWRP(p)), is the pivot, and an
   image-level discriminator aligns the features it reads;
D  image-level region expansion: a present class must pool high (GWRP over the output map, its
   support a fraction of that map), an absent one stays low; one relation on both domains;
E  pixel-level region expansion: pseudo-labels grown from seeds under the pivot, both read from a
   teacher (a mean teacher, or a snapshot every K steps);
F  optionally, AdaptSegNet's output-space discriminators.
Schedule: the trainer's source-only warm-up, then `align_steps` of C (and F) alone, then D and E.
Each part is a switch of [method.pit], which gives the ablation rows.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from pit_engine import pit_ops as P
from pit_engine.classes import IGNORE
from pit_engine.distributed import sum_over_ranks
from pit_engine.errors import UserError
from pit_engine.methods.base import Method, Nets, Pass, adversarial_loss, upsample
from pit_engine.models import ImageDiscriminator, OutputDiscriminator
from pit_engine.presence import SegmenterPresence


@dataclass
class PITConfig:
    # what the GUI's training form shows (the rest keeps the loaded config's values)
    FORM: ClassVar[dict[str, str]] = {
        "pivot": "B  pivot (image-level classifier)", "align": "C  image-level alignment",
        "image_level": "D  image-level expansion (GWRP)", "pixel_level": "E  pixel-level expansion",
        "output_adv": "F  output-space adversarial", "align_steps": "stage 2: alignment steps before D, E",
        "teacher": "E  teacher (mean or snapshot)", "lambda_cls": "λ cls", "lambda_img": "λ img",
        "lambda_pix": "λ pix", "lambda_align": "λ align", "lambda_adv": "λ adv"}
    RETIRED: ClassVar[dict[str, str]] = {
        "gwrp_decay": "GWRP pools the output map now: set method.pit.gwrp_support, the fraction of that map "
                      "its weights cover (SEC's d = 0.996 on 41 x 41 maps is about 0.15)"}

    pivot: bool = True  # B: the image-level classifier, trained on the source
    align: bool = True  # C: image-level adversarial alignment of the pivot features
    image_level: bool = True  # D: GWRP image-level expansion / suppression
    pixel_level: bool = True  # E: seeded region growing pseudo-labels
    output_adv: bool = False  # F: output-space adversarial alignment
    align_steps: int = 0  # stage 2: adapting steps of alignment (C, F) alone, before D and E switch on
    pivot_source: str = "inferred"  # inferred, or oracle (ground-truth target vectors, diagnosis only)
    pivot_reading: str = "head"  # q from: head (B's pooled features) or segmenter (its output map's per-class max and mean, fitted on the source)
    min_pixels: int = 1  # a class is present in a source label if it covers this many valid pixels
    tau_lo: float = 0.1
    tau_hi: float = 0.5
    refresh_pivot: bool = True  # pivot = max(q, GWRP(p)), not q alone: the better pivot by measurement (README)
    gwrp_support: float = 0.15  # the fraction of the output map GWRP's weights cover (1/(1-d) pixels)
    gwrp_per_class: bool = False  # per class: its mean pixel share on the source frames that hold it
    gwrp_topk: bool = True
    seed_threshold: float = 0.9
    grow_threshold: float = 0.7
    seed_ratio: float = 0.0  # > 0: class-balanced top ratio seeds instead of the threshold
    teacher: str = "mean"  # pseudo-labels and pivot from: mean (an EMA of the weights) or snapshot
    teacher_momentum: float = 0.999  # mean teacher: its weights move 1 - momentum towards the student's
    refresh_every: int = 1  # snapshot teacher: a copy of the weights every K steps (1: the student itself)
    confidence_weighted: bool = False  # weigh each pseudo-labelled pixel by the teacher's confidence
    lambda_cls: float = 0.1
    lambda_img: float = 0.1
    lambda_pix: float = 1.0
    lambda_adv: float = 1e-3
    lambda_adv_aux: float = 2e-4
    lambda_align: float = 1e-3
    disc_lr: float = 1e-4
    disc_width: int = 64

    def validate(self, where: str, key: str) -> None:
        if self.pivot_source not in ("inferred", "oracle"):
            raise UserError(f"'{key}.pivot_source' is '{self.pivot_source}'", where, "use one of: inferred, oracle")
        if self.pivot_reading not in ("head", "segmenter"):
            raise UserError(f"'{key}.pivot_reading' is '{self.pivot_reading}'", where, "use one of: head, segmenter")
        if self.teacher not in ("mean", "snapshot"):
            raise UserError(f"'{key}.teacher' is '{self.teacher}'", where, "use one of: mean, snapshot")
        if not 0 <= self.tau_lo <= self.tau_hi <= 1:
            raise UserError("pivot thresholds must satisfy 0 <= tau_lo <= tau_hi <= 1", where,
                            f"got {key}.tau_lo={self.tau_lo}, {key}.tau_hi={self.tau_hi}")
        if not 0 < self.gwrp_support <= 1:
            raise UserError(f"'{key}.gwrp_support' must be in (0, 1], a fraction of the output map", where,
                            f"got {self.gwrp_support}")
        if not 0 <= self.teacher_momentum < 1:
            raise UserError(f"'{key}.teacher_momentum' must be in [0, 1)", where, f"got {self.teacher_momentum}")
        if not self.pivot and self.pivot_source == "inferred" and (self.image_level or self.pixel_level):
            raise UserError("image- and pixel-level expansion need the pivot", where,
                            f"set {key}.pivot = true, or {key}.pivot_source = \"oracle\"")
        if self.refresh_every < 1 or self.align_steps < 0:
            raise UserError(f"'{key}.refresh_every' must be at least 1 and '{key}.align_steps' at least 0", where,
                            "fix the value")


class PIT(Method):
    name = "pit"
    label = "PIT"
    Config = PITConfig
    has_pivot = True
    terms = ("cls", "img_src", "img_tgt", "pix", "align", "adv", "adv_aux")

    def __init__(self, config=None, aux_weight: float = 0.1):
        super().__init__(config, aux_weight)
        self.teacher = None
        self.regions_backend = "auto"  # region growing: torch on a GPU, OpenCV on the CPU (same labels)
        # per class, over the source frames seen: how many held it, and the sum of its pixel shares
        self.source_frames = self.source_shares = None
        self.presence = None  # pivot_reading = "segmenter": the reading, made with the network

    @property
    def adapts(self) -> bool:
        m = self.config
        return m.align or m.image_level or m.pixel_level or m.output_adv

    @property
    def trains_pivot(self) -> bool:
        return self.config.pivot

    @property
    def uses_pivot(self) -> bool:
        return self.config.image_level or self.config.pixel_level

    @property
    def reads_target_labels(self) -> bool:
        return self.config.pivot_source == "oracle"

    @property
    def min_pixels(self) -> int:
        return self.config.min_pixels

    def create_modules(self, model):
        m, c = self.config, model.num_classes
        if m.pivot_reading == "segmenter":
            self.presence = SegmenterPresence(c)
        modules = {}  # built in this order: it fixes their random initialisation
        if m.output_adv:
            modules["d_out"] = OutputDiscriminator(c, m.disc_width)
            if model.aux_head is not None:
                modules["d_out_aux"] = OutputDiscriminator(c, m.disc_width)
        if m.align:
            modules["d_img"] = ImageDiscriminator(model.backbone.channels[1])
        return modules

    # D: the pooling's scale ---------------------------------------------------------------------
    def decay(self, n: int):
        """GWRP's decay on an output map of n pixels: one shared support fraction, or per class the
        class's mean pixel share on the source frames that held it (the shared fraction for a
        class not seen yet)."""
        m = self.config
        if not m.gwrp_per_class or self.source_frames is None:
            return P.support_decay(m.gwrp_support, n)
        seen = self.source_frames > 0
        share = torch.where(seen, self.source_shares / self.source_frames.clamp_min(1), m.gwrp_support)
        return P.support_decay(share, n)

    def pool(self, prob: torch.Tensor) -> torch.Tensor:
        return P.gwrp(prob, self.decay(prob.shape[2] * prob.shape[3]), self.config.gwrp_topk)

    @torch.no_grad()
    def _count_source_shares(self, labels: torch.Tensor) -> None:
        # summed over the ranks, so that every rank pools with the same per-class supports
        frames, shares = sum_over_ranks(torch.stack(P.class_shares(labels, self.model.num_classes)))
        if self.source_frames is None:
            self.source_frames, self.source_shares = torch.zeros_like(frames), torch.zeros_like(shares)
        self.source_frames += frames
        self.source_shares += shares

    # the step ----------------------------------------------------------------------------------
    def source_pass(self, nets: Nets, batch: dict) -> Pass:
        m = self.config
        p = super().source_pass(nets, batch)
        v_s = P.category_vector(batch["label"], self.model.num_classes, m.min_pixels)
        # a crop without any labelled pixel says nothing of which classes it holds: no image-level loss
        labelled = (batch["label"] != IGNORE).flatten(1).any(1)
        if m.gwrp_per_class:
            self._count_source_shares(batch["label"])
        weight = labelled[:, None].float().expand_as(v_s)
        if m.pivot:
            p.losses["cls"] = m.lambda_cls * F.binary_cross_entropy_with_logits(p.out.pivot.float(), v_s, weight)
        if self.presence is not None:
            self.presence.fit_step(p.out.logits.detach().float().softmax(1), v_s, weight)
        if m.image_level:
            prob = p.out.logits.float().softmax(1)  # the output map: GWRP's support is a fraction of it
            v = torch.where(labelled[:, None], v_s, torch.full_like(v_s, -1))  # -1: skipped
            p.losses["img_src"] = m.lambda_img * P.image_level_loss(prob, v, None, pooled=self.pool(prob))
        return p

    def expanding(self, step: int) -> bool:
        """Stage 3: D and E are on once the alignment steps of stage 2 are done."""
        return self.uses_pivot and step >= self.config.align_steps

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        """`step`: adapting steps done before this one (0 right after the warm-up)."""
        m = self.config
        x = batch["image"]
        out = nets.forward(x)
        logits = upsample(out.logits, x).float()
        losses: dict[str, torch.Tensor] = {}
        if self.expanding(step):
            prob = out.logits.float().softmax(1)
            pooled = self.pool(prob) if m.image_level else None  # with gradients, for L_img
            guide = self.guide(x, out, prob, pooled, step)  # the teacher's view: pivot and probabilities
            targets = self.targets(guide["prob"] if m.pixel_level else None, self.target_pivot(guide, batch))
            if m.image_level:
                losses["img_tgt"] = m.lambda_img * P.image_level_loss(prob, targets.state, None, pooled=pooled)
            if m.pixel_level:
                losses["pix"] = m.lambda_pix * self.pixel_loss(logits, guide["prob"], targets.state, targets)
        if "d_img" in self.modules:
            losses["align"] = m.lambda_align * adversarial_loss(self.modules["d_img"](out.features), real=True)
        if "d_out" in self.modules:
            losses["adv"] = m.lambda_adv * adversarial_loss(self.modules["d_out"](logits.softmax(1)), real=True)
            if "d_out_aux" in self.modules and out.aux is not None:
                losses["adv_aux"] = m.lambda_adv_aux * adversarial_loss(
                    self.modules["d_out_aux"](upsample(out.aux, x).float().softmax(1)), real=True)
        return Pass(losses, out, x, logits)

    def discriminator_inputs(self, p: Pass) -> dict[str, torch.Tensor]:
        inputs = {}
        if "d_img" in self.modules:
            inputs["d_img"] = p.out.features.detach()
        if "d_out" in self.modules:
            inputs["d_out"] = p.logits.detach().softmax(1)
        if "d_out_aux" in self.modules and p.out.aux is not None:
            inputs["d_out_aux"] = upsample(p.out.aux, p.x).detach().float().softmax(1)
        return inputs

    # E: the teacher ----------------------------------------------------------------------------
    @torch.no_grad()
    def guide(self, x, out, prob, pooled, step: int) -> dict:
        """What the pivot and the pseudo-labels are read from: the teacher's outputs (detached):
        pivot logits, the pooled scores of its output map, probabilities at x's size.
        A snapshot teacher with K = 1 is the student: this step's outputs serve."""
        m = self.config
        if m.teacher == "snapshot" and m.refresh_every == 1:
            pooled = pooled.detach() if pooled is not None else self.pool(prob) if m.refresh_pivot else None
            return {"pivot": self.pivot_logits(out).detach(), "pooled": pooled,
                    "prob": upsample(out.logits.detach(), x).float().softmax(1)}
        self.update_teacher(step - m.align_steps)
        t = self.teacher(x)
        t_prob = t.logits.float().softmax(1)
        return {"pivot": self.pivot_logits(t), "pooled": self.pool(t_prob) if m.refresh_pivot else None,
                "prob": upsample(t.logits, x).float().softmax(1)}

    @torch.no_grad()
    def update_teacher(self, step: int) -> None:
        """`step`: expanding steps done. A snapshot: a copy every K steps. A mean teacher: an
        exponential moving average, its momentum ramped as min(1 - 1/(step + 1), m), so that it
        starts as the student and does not hold on to the first weights it saw."""
        m = self.config
        if self.teacher is None or m.teacher == "snapshot" and step % m.refresh_every == 0:
            self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
            return
        if m.teacher == "mean":
            momentum = min(1 - 1 / (step + 1), m.teacher_momentum)
            for t, s in zip(self.teacher.parameters(), self.model.parameters()):
                t.lerp_(s.detach(), 1 - momentum)
            for t, s in zip(self.teacher.buffers(), self.model.buffers()):
                t.copy_(s)

    def pixel_loss(self, logits, prob, state, targets: P.PivotTargets | None = None) -> torch.Tensor:
        """CE on the region-grown pseudo-labels (of `targets`, else grown here); with
        `confidence_weighted` each labelled pixel counts by the teacher's confidence. An all-ignore
        batch gives 0, without a host sync."""
        pseudo = (targets or self.targets(prob, state)).pseudo
        labelled = pseudo != IGNORE
        ce = F.cross_entropy(logits, pseudo, ignore_index=IGNORE, reduction="none")
        weight = prob.amax(1) if self.config.confidence_weighted else torch.ones_like(ce)
        return (ce * weight * labelled).sum() / labelled.sum().clamp_min(1)

    # C: the pivot ------------------------------------------------------------------------------
    def pivot_logits(self, out) -> torch.Tensor:
        """The logits of q: the pivot head's (B), or the segmenter reading's."""
        if self.presence is None:
            return out.pivot
        return self.presence.logits(out.logits.float().softmax(1))

    def target_pivot(self, guide: dict, batch) -> torch.Tensor:
        """The target category vector: 1 present, 0 absent, -1 unsure (skipped)."""
        m = self.config
        if m.pivot_source == "oracle":
            return P.category_vector(batch["label"], self.model.num_classes, m.min_pixels).long()
        return P.infer_pivot(guide["pivot"], guide["pooled"], m.tau_lo, m.tau_hi, m.refresh_pivot)[2]

    def infer_pivot(self, out):
        """(q, pooled, state) of a batch the network saw in evaluation: what the GUI shows and
        what the pivot's precision and recall measure. pooled: GWRP of the output map."""
        m = self.config
        prob = out.logits.float().softmax(1)
        return P.infer_pivot(self.pivot_logits(out), self.pool(prob), m.tau_lo, m.tau_hi, m.refresh_pivot)

    def pivot_verdicts(self, out) -> dict[str, torch.Tensor]:
        """The pivot states of q alone and of the refreshed max(q, GWRP(p)), whichever is used."""
        m = self.config
        q, pooled, _ = self.infer_pivot(out)
        return {"q": P.pivot_state(q, m.tau_lo, m.tau_hi),
                "refreshed": P.pivot_state(torch.maximum(q, pooled), m.tau_lo, m.tau_hi)}

    def targets(self, prob: torch.Tensor | None, state: torch.Tensor) -> P.PivotTargets:
        """D's and E's targets under a pivot state (B x C), from the teacher's probabilities at the
        input's size (None: D's alone). The training step calls it, and so does a what-if on a
        pivot edited by hand (Predictor.what_if): the two cannot drift apart."""
        m = self.config
        return P.pivot_targets(prob, state, m.seed_threshold, m.grow_threshold, m.seed_ratio, self.regions_backend)

    def expand(self, prob: torch.Tensor, state: torch.Tensor):
        """E's (pseudo-labels, seeds) of probabilities under a pivot."""
        t = self.targets(prob, state)
        return t.pseudo, t.seeds

    def extra_state(self) -> dict:
        state = {}
        if self.teacher is not None:
            state["teacher"] = self.teacher.state_dict()
        if self.source_frames is not None:
            state["source_shares"] = torch.stack([self.source_frames, self.source_shares])
        if self.presence is not None:
            state["presence"] = self.presence.state()
        return state

    def load_extra_state(self, state: dict) -> None:
        if "teacher" in state:
            self.teacher = copy.deepcopy(self.model)
            self.teacher.load_state_dict(state["teacher"])
            self.teacher.eval().requires_grad_(False)
        self.load_inference_state(state)

    def load_inference_state(self, state: dict) -> None:
        if "source_shares" in state:  # the per-class GWRP supports
            self.source_frames, self.source_shares = state["source_shares"].float()
        if "presence" in state:  # the segmenter reading of the pivot (evaluation builds no modules)
            self.presence = self.presence or SegmenterPresence(state["presence"].shape[0])
            self.presence.load(state["presence"])

    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, out) -> dict[str, torch.Tensor]:
        """The pivot's verdicts, and the pseudo-labels the teacher (or the network itself, before
        there is one) would grow now under the pivot in use."""
        verdicts = self.pivot_verdicts(out)
        source = self.teacher(x) if self.teacher is not None else out
        prob = upsample(source.logits, x).float().softmax(1)
        m = self.config
        q, pooled, _ = self.infer_pivot(source)
        state = P.pivot_state(torch.maximum(q, pooled) if m.refresh_pivot else q, m.tau_lo, m.tau_hi)
        targets = self.targets(prob, state)
        # the rest is what the run's timeline records of the mechanism (pit_engine/timeline.py)
        return {"pseudo": targets.pseudo, "pivot_q": verdicts["q"], "pivot_refreshed": verdicts["refreshed"],
                "seeds": targets.seeds, "teacher": prob.max(1).indices, "q": q, "pooled": pooled, "pivot": state}
