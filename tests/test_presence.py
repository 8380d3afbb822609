"""PIT's segmenter reading of the pivot (`pivot_reading = "segmenter"`): a logistic layer on each
frame's per-class max and mean probability, fitted on the source as training goes, kept in the
checkpoint, and what evaluation, prediction and training all read as q."""
import numpy as np
import pytest
import torch

from pit_engine.errors import UserError
from pit_engine.presence import SegmenterPresence, frame_summary
from tests.conftest import tiny_config


def test_the_reading_learns_which_classes_a_frame_holds():
    """On maps where class c's blob is present in some frames and not others, the fitted reading
    says which: it reads the frame, not the priors."""
    torch.manual_seed(0)
    c, reader = 3, SegmenterPresence(3)

    def maps(present):  # class k, where present, a confident blob in rows 2k and 2k + 1
        logits = torch.randn(len(present), c, 6, 6) * 0.3
        for k in range(c):
            logits[:, k, 2 * k:2 * k + 2, :] += 4 * present[:, k, None, None]
        return logits.softmax(1)
    for _ in range(300):
        present = (torch.rand(8, c) < 0.5).float()
        reader.fit_step(maps(present), present, torch.ones(8, c))
    present = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    q = torch.sigmoid(reader.logits(maps(present)))
    assert ((q > 0.5).float() == present).all()


def test_frames_without_labelled_pixels_do_not_move_it():
    reader = SegmenterPresence(2)
    prob = torch.rand(2, 2, 4, 4).softmax(1)
    reader.fit_step(prob, torch.ones(2, 2), torch.zeros(2, 2))
    assert torch.equal(reader.state(), torch.zeros(2, 5))


def test_frame_summary_is_max_then_mean():
    prob = torch.rand(1, 2, 3, 3)
    s = frame_summary(prob)
    assert torch.equal(s[0, :2], prob.amax((2, 3))[0]) and torch.allclose(s[0, 2:], prob.mean((2, 3))[0])


def test_a_run_keeps_the_reading_and_prediction_reads_q_from_it(tiny_demo, tmp_path):
    from PIL import Image

    from pit_engine.checkpoint import checkpoint_method
    from pit_engine.data.transforms import resize
    from pit_engine.predict import Predictor
    from pit_engine.train import Trainer

    cfg = tiny_config(tiny_demo, pit={"pivot_reading": "segmenter", "align_steps": 0})
    assert Trainer(cfg, tmp_path / "run").run(lambda e: None).reason == "done"
    ckpt = sorted((tmp_path / "run/checkpoints").glob("*.pt"))[-1]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["presence"].shape == (19, 39) and state["presence"].abs().sum() > 0  # fitted, and kept
    method = checkpoint_method(state, ckpt)
    predictor = Predictor.from_checkpoint(ckpt, "cpu")
    frame = np.asarray(Image.open(sorted((tiny_demo / "target/leftImg8bit/val").glob("*/*.png"))[0]).convert("RGB"))
    pred = predictor.predict(frame)
    assert pred.pivot_reading == "segmenter"  # the GUI and `pit predict` say where q comes from
    # q is the reading of the network's own output map, not the pivot head's verdict
    x = predictor.normalization.apply(resize(frame, None, predictor.size)[0])[None]
    with torch.no_grad():
        out = predictor.model(x)
    expected = torch.sigmoid(method.presence.logits(out.logits.float().softmax(1)))[0].numpy()
    assert np.allclose(pred.q, expected, atol=1e-5)
    assert not np.allclose(pred.q, torch.sigmoid(out.pivot)[0].numpy(), atol=1e-3)


def test_an_unknown_reading_is_refused_in_one_line(tiny_demo):
    with pytest.raises(UserError, match="pivot_reading"):
        tiny_config(tiny_demo, pit={"pivot_reading": "segmentor"})
