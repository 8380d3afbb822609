"""PIT, Pivot Interaction Transfer (Lv et al., CVPR 2020), as this project reconstructs it.

B  a pivot head (image-level classifier) learns on the source which classes a frame holds;
C  on the target its verdict q (optionally refreshed with the pooled predictions) is the pivot,
   and an image-level discriminator aligns the features it reads;
D  image-level region expansion: a present class must pool high (GWRP), an absent one stays low,
   one relation on both domains;
E  pixel-level region expansion: pseudo-labels grown from confident seeds, restricted by the pivot;
F  optionally, AdaptSegNet's output-space discriminators.
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
from pit_engine.errors import UserError
from pit_engine.methods.base import Method, Nets, Pass, adversarial_loss, upsample
from pit_engine.models import ImageDiscriminator, OutputDiscriminator


@dataclass
class PITConfig:
    # what the GUI's training form shows (the rest keeps the loaded config's values)
    FORM: ClassVar[dict[str, str]] = {
        "pivot": "B  pivot (image-level classifier)", "align": "C  image-level alignment",
        "image_level": "D  image-level expansion (GWRP)", "pixel_level": "E  pixel-level expansion",
        "output_adv": "F  output-space adversarial", "lambda_cls": "λ cls", "lambda_img": "λ img",
        "lambda_pix": "λ pix", "lambda_align": "λ align", "lambda_adv": "λ adv"}

    pivot: bool = True  # B: the image-level classifier, trained on the source
    align: bool = True  # C: image-level adversarial alignment of the pivot features
    image_level: bool = True  # D: GWRP image-level expansion / suppression
    pixel_level: bool = True  # E: seeded region growing pseudo-labels
    output_adv: bool = False  # F: output-space adversarial alignment
    pivot_source: str = "inferred"  # inferred, or oracle (ground-truth target vectors, diagnosis only)
    min_pixels: int = 1  # a class is present in a source label if it covers this many valid pixels
    tau_lo: float = 0.1
    tau_hi: float = 0.5
    refresh_pivot: bool = True  # pivot = max(q, GWRP(p))
    gwrp_decay: float = 0.996
    gwrp_topk: bool = True
    seed_threshold: float = 0.9
    grow_threshold: float = 0.7
    seed_ratio: float = 0.0  # > 0: class-balanced top ratio seeds instead of the threshold
    refresh_every: int = 1  # K: pseudo-labels come from the weights of the last multiple of K
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
        if not 0 <= self.tau_lo <= self.tau_hi <= 1:
            raise UserError("pivot thresholds must satisfy 0 <= tau_lo <= tau_hi <= 1", where,
                            f"got {key}.tau_lo={self.tau_lo}, {key}.tau_hi={self.tau_hi}")
        if not 0 < self.gwrp_decay <= 1:
            raise UserError(f"'{key}.gwrp_decay' must be in (0, 1]", where, f"got {self.gwrp_decay}")
        if not self.pivot and self.pivot_source == "inferred" and (self.image_level or self.pixel_level):
            raise UserError("image- and pixel-level expansion need the pivot", where,
                            f"set {key}.pivot = true, or {key}.pivot_source = \"oracle\"")
        if self.refresh_every < 1:
            raise UserError(f"'{key}.refresh_every' must be at least 1", where, "fix the value")


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
        modules = {}  # built in this order: it fixes their random initialisation
        if m.output_adv:
            modules["d_out"] = OutputDiscriminator(c, m.disc_width)
            if model.aux_head is not None:
                modules["d_out_aux"] = OutputDiscriminator(c, m.disc_width)
        if m.align:
            modules["d_img"] = ImageDiscriminator(model.backbone.channels[1])
        return modules

    # the step ----------------------------------------------------------------------------------
    def source_pass(self, nets: Nets, batch: dict) -> Pass:
        m = self.config
        p = super().source_pass(nets, batch)
        v_s = P.category_vector(batch["label"], self.model.num_classes, m.min_pixels)
        if m.pivot:
            p.losses["cls"] = m.lambda_cls * F.binary_cross_entropy_with_logits(p.out.pivot.float(), v_s)
        if m.image_level:
            p.losses["img_src"] = m.lambda_img * P.image_level_loss(p.logits.softmax(1), v_s, m.gwrp_decay,
                                                                    m.gwrp_topk)
        return p

    def target_pass(self, nets: Nets, batch: dict, iteration: int) -> Pass:
        m = self.config
        x = batch["image"]
        out = nets.forward(x)
        logits = upsample(out.logits, x).float()
        p_t = logits.softmax(1)
        losses: dict[str, torch.Tensor] = {}
        # GWRP once per step: with gradients for L_img, detached for the pivot refresh
        pooled = P.gwrp(p_t, m.gwrp_decay, m.gwrp_topk) if m.image_level or m.refresh_pivot else None
        if self.uses_pivot:
            state = self.target_pivot(out, p_t, pooled, batch)
        if m.image_level:
            losses["img_tgt"] = m.lambda_img * P.image_level_loss(p_t, state, m.gwrp_decay, m.gwrp_topk, pooled=pooled)
        if m.pixel_level:
            # an all-ignore target gives a NaN mean; weighting by "any pseudo-label" keeps the
            # step free of a host-device sync
            pseudo = self.pseudo_labels(x, p_t, state, iteration)
            any_valid = (pseudo != IGNORE).any()
            ce = F.cross_entropy(logits, pseudo, ignore_index=IGNORE)
            losses["pix"] = m.lambda_pix * torch.where(any_valid, ce, torch.zeros_like(ce))
        if "d_img" in self.modules:
            losses["align"] = m.lambda_align * adversarial_loss(self.modules["d_img"](out.features), real=True)
        if "d_out" in self.modules:
            losses["adv"] = m.lambda_adv * adversarial_loss(self.modules["d_out"](p_t), real=True)
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

    # C: the pivot ------------------------------------------------------------------------------
    def target_pivot(self, out, p_t, pooled, batch) -> torch.Tensor:
        """The target category vector: 1 present, 0 absent, -1 unsure (skipped)."""
        m = self.config
        if m.pivot_source == "oracle":
            return P.category_vector(batch["label"], self.model.num_classes, m.min_pixels).long()
        return P.infer_pivot(out.pivot, p_t if m.refresh_pivot else None, m.tau_lo, m.tau_hi, m.gwrp_decay,
                             m.refresh_pivot, m.gwrp_topk, pooled=pooled if m.refresh_pivot else None)[2]

    def infer_pivot(self, out, prob: torch.Tensor):
        """(q, pooled, state) of a batch the network saw in evaluation: what the GUI shows and
        what the pivot's precision and recall measure."""
        m = self.config
        return P.infer_pivot(out.pivot, prob, m.tau_lo, m.tau_hi, m.gwrp_decay, m.refresh_pivot)

    def expand(self, prob: torch.Tensor, state: torch.Tensor):
        """E's (pseudo-labels, seeds) of probabilities under a pivot."""
        m = self.config
        return P.expand_regions(prob, state, m.seed_threshold, m.grow_threshold, m.seed_ratio, self.regions_backend)

    # E: the pseudo-labels ----------------------------------------------------------------------
    @torch.no_grad()
    def pseudo_labels(self, x, p_t, state, iteration: int) -> torch.Tensor:
        """Region-grown labels from the weights of the last multiple of K iterations
        (K = 1: the current weights, whose probabilities this step already has)."""
        m = self.config
        if m.refresh_every == 1:
            prob = p_t.detach()
        else:
            if self.teacher is None or iteration % m.refresh_every == 0:
                self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
            prob = upsample(self.teacher(x).logits, x).float().softmax(1)
        return self.expand(prob, state)[0]

    def extra_state(self) -> dict:
        return {"teacher": self.teacher.state_dict()} if self.teacher is not None else {}

    def load_extra_state(self, state: dict) -> None:
        if "teacher" in state:
            self.teacher = copy.deepcopy(self.model)
            self.teacher.load_state_dict(state["teacher"])
            self.teacher.eval().requires_grad_(False)
