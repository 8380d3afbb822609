"""The run's timeline (pit_engine/timeline.py): what a run records of the mechanism at each health
step, that recording leaves training as it was, its bad input, and the what-if on an edited pivot
(the same targets the training step computes)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import tiny_config
from pit_engine import pit_ops as P
from pit_engine import timeline as T
from pit_engine.classes import IGNORE
from pit_engine.events import Step
from pit_engine.methods.base import Nets
from pit_engine.predict import Predictor
from pit_engine.train import Trainer


def train(config, run_dir):
    losses = []
    finished = Trainer(config, run_dir, log=lambda *_: None).run(
        lambda e: losses.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    return losses


@pytest.fixture(scope="module")
def pit_run(tiny_demo, tmp_path_factory):
    run = tmp_path_factory.mktemp("timeline") / "pit"
    train(tiny_config(tiny_demo, train={"health_every": 2, "health_frames": 2}), run)
    return run


def test_a_pit_run_records_its_mechanism_at_each_health_step(pit_run):
    tl = T.read_timeline(pit_run)
    assert tl.iterations == [2, 4, 6] and tl.frames == 2 and not tl.skipped
    assert tl.images.shape == (2, 32, 64, 3) and tl.truth.shape == (2, 32, 64)
    last = {**tl.steps[-1], **tl.maps(2)}
    for key in ("student", "teacher", "pseudo"):
        assert last[key].shape == (2, 32, 64) and last[key].dtype == np.uint8
    assert last["q"].shape == last["pooled"].shape == last["pivot"].shape == (2, 19)
    assert set(np.unique(last["pivot"])) <= {-1, 0, 1}
    # pseudo-labels only where the pivot does not call a class absent, and seeds inside them
    for f in range(2):
        labelled = last["pseudo"][f][last["pseudo"][f] != IGNORE]
        assert all(last["pivot"][f][c] != P.ABSENT for c in np.unique(labelled))
        seeds = tl.seeds(2, f)
        assert seeds.shape == (32, 64) and (last["pseudo"][f][seeds] != IGNORE).all()
    # the per-frame curves: the share is the map's, the precision against the frame's truth
    share = tl.curve("share", 0)
    assert share.shape == (3, 19)
    assert np.allclose(share[-1].sum(), (last["pseudo"][0] != IGNORE).mean(), atol=1e-6)
    p = tl.curve("precision", 1)[-1]
    for c in np.unique(last["pseudo"][1][last["pseudo"][1] != IGNORE]):
        said = (last["pseudo"][1] == c) & (tl.truth[1] != IGNORE)  # pixels of unknown truth count neither way
        assert p[c] == pytest.approx((tl.truth[1][said] == c).mean(), abs=1e-6)


def test_recording_leaves_the_losses_bit_identical(tiny_demo, tmp_path):
    cfg = dict(train={"health_every": 2, "health_frames": 2, "iterations": 5})
    on = train(tiny_config(tiny_demo, **cfg), tmp_path / "on")
    rng_on = torch.get_rng_state()
    off = train(tiny_config(tiny_demo, train={**cfg["train"], "timeline": False}), tmp_path / "off")
    assert on == off
    assert torch.equal(rng_on, torch.get_rng_state())  # no random numbers drawn from training's stream
    assert T.read_timeline(tmp_path / "on").iterations == [2, 4, 5]
    assert T.read_timeline(tmp_path / "off") is None


def test_methods_without_pseudo_labels_record_their_prediction_only(tiny_demo, tmp_path):
    train(tiny_config(tiny_demo, "minent", train={"health_every": 3, "health_frames": 2}), tmp_path / "minent")
    step = T.read_timeline(tmp_path / "minent").steps[-1]
    assert step["keys"] == {"iteration", "student"}
    # CBST: its selection is its pseudo-label map, beside its teacher's arg-max
    train(tiny_config(tiny_demo, "cbst", train={"health_every": 3, "health_frames": 2},
                      method={"cbst": {"round_every": 2}}), tmp_path / "cbst")
    tl = T.read_timeline(tmp_path / "cbst")
    step = {**tl.steps[-1], **tl.maps(-1)}
    assert {"student", "teacher", "pseudo", "share", "precision"} <= set(step) and "pivot" not in step
    selected = step["pseudo"] != IGNORE
    assert (step["pseudo"][selected] == step["teacher"][selected]).all()


def test_a_cut_or_missing_step_is_skipped_in_one_line(pit_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(pit_run, run)
    cut = T.step_path(run, 4)
    cut.write_bytes(cut.read_bytes()[:100])  # a kill mid-write, had the write not been atomic
    lines = []
    tl = T.read_timeline(run, lines.append)
    assert tl.iterations == [2, 6]
    assert len(lines) == 1 and "step_0000004.npz" in lines[0] and "\n" not in lines[0]
    tl.refresh()  # a skipped file is not read again
    assert len(lines) == 1
    T.step_path(run, 6).unlink()  # gone after it was listed: its maps are skipped in one line, the rest shows
    assert tl.maps(1) is None and len(lines) == 2 and "step_0000006.npz" in lines[1]
    assert tl.maps(0) is not None and T.read_timeline(run).iterations == [2]
    tl.refresh()  # a step whose file went (the run thinned it out) is forgotten
    assert tl.iterations == [2] and len(tl.steps) == 1
    assert T.read_timeline(tmp_path) is None  # a run without a timeline (older runs)


def test_past_the_cap_steps_are_thinned_evenly(tmp_path):
    writer = T.TimelineWriter(tmp_path, max_steps=6)
    for i in range(1, 8):
        writer.write_step(i * 10, {"student": np.zeros((1, 2, 2), np.uint8)}, wait=True)
    kept = [i for i, _ in T.step_files(tmp_path)]
    assert kept[0] == 10 and kept[-1] == 70 and len(kept) <= 6
    assert not list(T.timeline_dir(tmp_path).glob(".step_*"))  # no temporary files left
    writer.rewind(40)
    assert all(i <= 40 for i, _ in T.step_files(tmp_path))


def test_the_training_step_trains_on_the_targets_the_what_if_recomputes(tiny_demo, tmp_path):
    """The what-if (Predictor.what_if) and the training step's D and E share one function: on the
    same network and pivot, its pseudo-labels give the step's `pix` term and its states `img_tgt`."""
    trainer = Trainer(tiny_config(tiny_demo, pit={"teacher": "snapshot", "refresh_every": 1}), tmp_path / "r",
                      log=lambda *_: None)
    trainer.setup_model()
    method, model = trainer.method, trainer.model
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 64)
    p = method.target_pass(Nets(model), {"image": x}, step=0)
    with torch.no_grad():
        out = model(x)
        prob = F.interpolate(out.logits.float(), size=x.shape[-2:], mode="bilinear", align_corners=False).softmax(1)
        state = method.infer_pivot(out)[2]
        targets = method.targets(prob, state)
        logits = F.interpolate(out.logits.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        labelled = targets.pseudo != IGNORE
        ce = F.cross_entropy(logits, targets.pseudo, ignore_index=IGNORE, reduction="none")
        pix = (ce * labelled).sum() / labelled.sum().clamp_min(1)
        img = P.image_level_loss(out.logits.float().softmax(1), targets.state, None,
                                 pooled=method.pool(out.logits.float().softmax(1)))
    m = method.config
    assert p.losses["pix"].item() == pytest.approx(m.lambda_pix * pix.item(), rel=1e-6)
    assert p.losses["img_tgt"].item() == pytest.approx(m.lambda_img * img.item(), rel=1e-6)


def test_a_class_set_absent_leaves_the_pseudo_labels(tmp_path):
    from pit_resources import resource

    predictor = Predictor.from_checkpoint(resource("demo_pit.pt"))
    image = np.asarray(Image.open(sorted(resource("demo_frames").rglob("*_leftImg8bit.png"))[0]).convert("RGB"))
    before = predictor.predict(image)
    edited = before.pivot.copy()
    grown = [c for c in np.unique(before.regions) if c != IGNORE]
    assert grown, "the demo frame has grown regions"
    c = int(grown[0])
    same = predictor.what_if(image, before.pivot)
    assert np.array_equal(same.regions, before.regions) and np.array_equal(same.seeds, before.seeds)
    edited[c] = P.ABSENT
    after = predictor.what_if(image, edited)
    # E zeroes an absent class: none of its pixels stay (they may go to the next class, if confident)
    assert (before.regions == c).any() and not (after.regions == c).any()
    assert after.suppress[c] and not after.expand[c]
    # present where it was absent: it may now seed and grow, and D expands it
    absent = [k for k in range(19) if before.pivot[k] == P.ABSENT]
    if absent:
        edited = before.pivot.copy()
        edited[absent[0]] = P.PRESENT
        assert predictor.what_if(image, edited).expand[absent[0]]


def test_the_frame_s_timeline_exports_as_an_animation_and_a_step_as_png(pit_run, tmp_path):
    from pit_engine.errors import UserError
    from pit_engine.timeline_render import PANELS, panels, save_animation, save_step_png

    tl = T.read_timeline(pit_run)
    shown = panels(tl, 1, 0)
    assert len(shown) == len(PANELS) and all(a.shape == (32, 64, 3) for _, a in shown)
    assert "pseudo-labels" in shown[1][0] and np.array_equal(shown[0][1], tl.images[0])
    for name in ("t.gif", "t.webp"):
        with Image.open(save_animation(tmp_path / name, tl, 1)) as im:
            assert im.n_frames == 3 and im.is_animated
    with Image.open(save_step_png(tmp_path / "s.png", tl, 2, 1)) as im:
        assert im.format == "PNG" and im.width >= 4 * 64
    with pytest.raises(UserError, match="gif or .webp"):
        save_animation(tmp_path / "t.mp4", tl, 0)
