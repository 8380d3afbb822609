"""Does a network's last feature map say which classes a frame holds, and does that carry over to
the target? A diagnosis of PIT's pivot (README, "The pivot, measured").

    python scripts/pivot_probe.py CHECKPOINT [--split val] [--frames 300]

The checkpoint's network is frozen. Linear heads on its last features (a 1x1 convolution to C
logits, then average pooling as the pivot head pools, or max pooling, which no per-frame
normalisation can flatten) are fitted to the category vectors of the first two thirds of the
source frames read, and scored on the last third and on the target split: the mean per-class ROC
AUC (0.5 is chance; classes present in every frame or in none are left out) and the BCE beside
that of the class priors, and the precision and recall of "present" (above 0.5) on the target.
The checkpoint's own pivot q (from its pivot head, or its segmenter reading), the segmenter's
pooled probabilities (raw, calibrated per class on the source frames fitted, GWRP-pooled) and a
logistic head on the segmenter's pooled output are scored the same way, and so are the linear
heads fitted again with the target's train frames added, labelled by pseudo-presence (the
calibrated segmenter reading where it is confident). A last table gives the checkpoint's pivot
per class on the target: which classes it reads, and which it cannot. Data folders and sizes
come from the checkpoint's config. Every frame's features are held at once, on the CPU: sized
for the demo's small network (under a minute); a ResNet at Cityscapes sizes needs --frames
lowered to fit in memory.
"""
import argparse
import math
import sys

import torch
import torch.nn.functional as F

from pit_engine import pit_ops
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.checkpoint import checkpoint_method, restore_model
from pit_engine.data.datasets import open_dataset
from pit_engine.data.transforms import get_normalization
from pit_engine.errors import UserError
from pit_engine.health import HealthProbe


def class_aucs(scores: torch.Tensor, present: torch.Tensor) -> list[float | None]:
    """Per class, P(score of a frame holding c > score of one without), ties counting half: a
    constant score (the prior) gets exactly 0.5. None where the class is in every frame or none."""
    aucs = []
    for c in range(present.shape[1]):
        pos, neg = scores[present[:, c] == 1, c], scores[present[:, c] == 0, c]
        diff = pos[:, None] - neg[None, :]
        aucs.append(((diff > 0).float() + 0.5 * (diff == 0).float()).mean().item() if diff.numel() else None)
    return aucs


def mean_auc(scores: torch.Tensor, present: torch.Tensor) -> float:
    """The mean of class_aucs over the classes that vary among the frames."""
    aucs = [a for a in class_aucs(scores, present) if a is not None]
    return sum(aucs) / len(aucs) if aucs else float("nan")  # no class varies among these frames


def class_precision_recall(logits: torch.Tensor, present: torch.Tensor, tau_hi: float = 0.5):
    """Per class over the frames, the precision and recall of "present" (score above tau_hi);
    NaN where a class is never called present, or never is."""
    said = (torch.sigmoid(logits) > tau_hi).float()
    hits, claims, truths = (said * present).sum(0), said.sum(0), present.sum(0)
    nan = torch.tensor(float("nan"))
    return (torch.where(claims > 0, hits / claims.clamp_min(1), nan),
            torch.where(truths > 0, hits / truths.clamp_min(1), nan))


def precision_recall(logits: torch.Tensor, present: torch.Tensor, tau_hi: float = 0.5) -> tuple[float, float]:
    """The pivot's precision and recall, the means over the classes where each is defined, as
    `pit eval` counts them."""
    precision, recall = class_precision_recall(logits, present, tau_hi)
    precision, recall = precision[~precision.isnan()], recall[~recall.isnan()]
    return (precision.mean().item() if len(precision) else float("nan"),
            recall.mean().item() if len(recall) else float("nan"))


POOLINGS = {"average": lambda m: m.mean((2, 3)), "max": lambda m: m.amax((2, 3))}


def fit_platt(scores: torch.Tensor, present: torch.Tensor, steps: int = 500):
    """Per-class temperature and offset (Platt scaling) of logit scores, fitted by BCE: a
    calibration, so the ranking (AUC) stays and the thresholds move."""
    a, b = torch.ones(scores.shape[1], requires_grad=True), torch.zeros(scores.shape[1], requires_grad=True)
    opt = torch.optim.Adam([a, b], 5e-2)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(a * scores + b, present)
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, b = a.detach(), b.detach()
    return lambda s: a * s + b


def fit_linear(inputs: torch.Tensor, present: torch.Tensor, steps: int = 1500):
    """A logistic layer on frame-level inputs (here the segmenter's pooled output), fitted by BCE."""
    layer = torch.nn.Linear(inputs.shape[1], present.shape[1])
    opt = torch.optim.Adam(layer.parameters(), 1e-2, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(layer(inputs), present)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return layer.requires_grad_(False)


def fit_head(features: torch.Tensor, present: torch.Tensor, pooling: str, steps: int = 1500,
             pseudo: tuple | None = None) -> torch.nn.Conv2d:
    """A 1x1 convolution to C logits, pooled, fitted by BCE to the category vectors; `pseudo`
    (target features, pseudo-presence, weights): a second BCE term on unlabelled target frames,
    counted where the weight is 1 (the pivot adapted to the target)."""
    conv = torch.nn.Conv2d(features.shape[1], present.shape[1], 1)
    opt = torch.optim.Adam(conv.parameters(), 1e-2, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(POOLINGS[pooling](conv(features)), present)
        if pseudo is not None:
            feats, said, weight = pseudo
            per = F.binary_cross_entropy_with_logits(POOLINGS[pooling](conv(feats)), said, reduction="none")
            loss = loss + (per * weight).sum() / weight.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return conv.requires_grad_(False)


def per_class_table(q: torch.Tensor, present: torch.Tensor, split: str, names) -> None:
    """Which classes the checkpoint's pivot reads on the target, and which it cannot."""
    precision, recall = class_precision_recall(q, present)
    print(f"\nThe checkpoint's pivot q per class, on the target {split} frames "
          "(AUC \"–\" where the class is in every frame or none):\n")
    print(f"| class | frames holding it (of {len(present)}) | AUC | precision (%) | recall (%) |\n|---|---|---|---|---|")
    cell = lambda x: "–" if x is None or math.isnan(x) else f"{x:.3f}"  # noqa: E731
    pct = lambda x: "–" if math.isnan(x) else f"{100 * x:.1f}"  # noqa: E731
    for name, count, auc, p, r in zip(names, present.sum(0).int().tolist(), class_aucs(q, present),
                                      precision.tolist(), recall.tolist()):
        print(f"| {name} | {count} | {cell(auc)} | {pct(p)} | {pct(r)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="val", help="the target split scored (default val)")
    ap.add_argument("--frames", type=int, default=300, help="source frames read, and at most as many target frames, evenly spaced (default 300)")
    args = ap.parse_args()
    if args.frames < 6:
        ap.error("--frames must be 6 or more (4 to fit, 2 held out at least)")
    torch.manual_seed(0)
    model, state = restore_model(args.checkpoint, "cpu")
    data, c = state["config"]["data"], model.num_classes
    norm = get_normalization(state["normalization"])
    source = HealthProbe(open_dataset(data["source_kind"], data["source_root"]), args.frames,
                         data["source_size"], norm, "cpu", c)
    target = HealthProbe(open_dataset("cityscapes", data["target_root"], args.split), args.frames,
                         data["target_size"], norm, "cpu", c)
    with torch.no_grad():
        out_s, out_t = model(source.x), model(target.x)
    v_s, v_t = pit_ops.category_vector(source.labels, c), pit_ops.category_vector(target.labels, c)
    fit, held = slice(0, 2 * len(v_s) // 3), slice(2 * len(v_s) // 3, None)
    prior = v_s[fit].mean(0).clamp(1e-3, 1 - 1e-3).logit()

    def row(name, held_scores, target_scores):
        bce = F.binary_cross_entropy_with_logits
        precision, recall = precision_recall(target_scores, v_t)
        print(f"| {name} | {mean_auc(held_scores, v_s[held]):.3f} | {mean_auc(target_scores, v_t):.3f} "
              f"| {bce(held_scores, v_s[held]):.3f} | {bce(target_scores, v_t):.3f} "
              f"| {100 * precision:.1f} | {100 * recall:.1f} |", flush=True)

    print(f"{len(v_s)} source frames ({fit.stop} fitted, {len(v_s) - fit.stop} held out), "
          f"{len(v_t)} target {args.split} frames; feature map {tuple(out_s.features.shape[1:])}\n")
    print("| scores | AUC, source held out | AUC, target | BCE, source held out | BCE, target "
          "| precision, target (%) | recall, target (%) |")
    print("|---|---|---|---|---|---|---|")
    row("class priors", prior.expand_as(v_s[held]), prior.expand_as(v_t))
    q_t = None
    if state.get("method") == "pit":  # other methods leave the pivot head untrained
        method = checkpoint_method(state, args.checkpoint)
        reading = getattr(method.config, "pivot_reading", "head")
        q_t = method.pivot_logits(out_t)
        row(f"the checkpoint's pivot, q (read from the {reading})", method.pivot_logits(out_s)[held], q_t)
    logit = lambda p: p.clamp(1e-4, 1 - 1e-4).logit()  # noqa: E731
    prob_s, prob_t = out_s.logits.float().softmax(1), out_t.logits.float().softmax(1)
    max_s, max_t = logit(prob_s.amax((2, 3))), logit(prob_t.amax((2, 3)))
    row("segmenter, max-pooled probabilities", max_s[held], max_t)
    calibrate = fit_platt(max_s[fit], v_s[fit])
    row("segmenter, max-pooled, calibrated per class on source", calibrate(max_s[held]), calibrate(max_t))
    n = prob_s.shape[2] * prob_s.shape[3]
    gwrp = lambda p: logit(pit_ops.gwrp(p, pit_ops.support_decay(0.15, n)))  # noqa: E731
    row("segmenter, GWRP-pooled (15 % support)", gwrp(prob_s)[held], gwrp(prob_t))
    frame_level = lambda p: torch.cat([p.amax((2, 3)), p.mean((2, 3))], 1)  # noqa: E731
    head = fit_linear(frame_level(prob_s[fit]), v_s[fit])
    row("logistic head on the segmenter's pooled output", head(frame_level(prob_s[held])), head(frame_level(prob_t)))
    for pooling in POOLINGS:
        head = fit_head(out_s.features[fit], v_s[fit], pooling)
        pooled = lambda out: POOLINGS[pooling](head(out.features))
        row(f"linear head fitted, {pooling} pooling", pooled(out_s)[held], pooled(out_t))
    # The pivot adapted to the target by pseudo-presence: the target's train frames (their images
    # alone), labelled by the calibrated segmenter reading where it is confident (above 0.9 or
    # below 0.1), join the source frames in the head's fit.
    train_frames = None
    if args.split != "train":
        try:
            train_frames = open_dataset("cityscapes", data["target_root"], "train")
        except UserError as exc:  # the table stands; only these rows need the train frames
            print(f"\n(no pseudo-presence rows: {exc.line()})")
    if train_frames is not None:
        unlabelled = HealthProbe(train_frames, args.frames, data["target_size"], norm, "cpu", c)
        with torch.no_grad():
            out_u = model(unlabelled.x)
        p_u = torch.sigmoid(calibrate(logit(out_u.logits.float().softmax(1).amax((2, 3)))))
        pseudo = (out_u.features, (p_u > 0.5).float(), ((p_u > 0.9) | (p_u < 0.1)).float())
        for pooling in POOLINGS:
            head = fit_head(out_s.features[fit], v_s[fit], pooling, pseudo=pseudo)
            pooled = lambda out: POOLINGS[pooling](head(out.features))  # noqa: E731
            row(f"linear head fitted, {pooling} pooling, + target pseudo-presence "
                f"({100 * pseudo[2].mean():.0f} % of the train frames' verdicts confident)",
                pooled(out_s)[held], pooled(out_t))
    if q_t is not None:
        per_class_table(q_t, v_t, args.split, state.get("classes") or CITYSCAPES_CLASSES)


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:  # one line and exit 2, as the pit command does
        print(exc.line(), file=sys.stderr)
        sys.exit(2)
