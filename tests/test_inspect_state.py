"""The Inspect view's state (pit_gui/inspect_state.py) apart from its widgets: each change says so
through its signal, and the widgets that read it (the model list, the folder summary, the Inspect
view's frame list) follow. No models are loaded: results are made here, as the inference worker
would send them."""
from pathlib import Path

import numpy as np
import pytest

from pit_engine.classes import NUM_CLASSES
from pit_gui.folder_summary import FolderSummary
from pit_gui.inspect_state import InspectState
from pit_gui.model_list import ModelList
from pit_gui.workers import FrameResult

SIGNALS = ("frames_changed", "current_changed", "models_changed", "names_changed", "pair_changed", "frame_scored",
           "frame_unreadable", "scoring_reset")


class Heard:
    """Every signal of a state, in the order they came, with their arguments."""

    def __init__(self, state):
        self.calls = []
        for name in SIGNALS:
            getattr(state, name).connect(lambda *args, n=name: self.calls.append((n, args)))

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def take(self) -> list[str]:
        names, self.calls = self.names(), []
        return names


def result(path, generation=0, scores=(0.5, 0.75), road=(10, 30)) -> FrameResult:
    """A frame's result as the inference worker makes it: two models, ground truth of road only."""
    matrices = []
    for hits in road:  # of 40 road pixels, `hits` predicted road, the rest sidewalk
        m = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        m[0, 0], m[0, 1] = hits, 40 - hits
        matrices.append(m)
    present = np.zeros(NUM_CLASSES, bool)
    present[0] = True
    return FrameResult(path=Path(path), generation=generation, image=np.zeros((4, 10, 3), np.uint8),
                       truth=np.zeros((4, 10), np.uint8), preds=(None, None),
                       thumbnail=np.zeros((4, 10, 3), np.uint8), scores=tuple(scores), truth_present=present,
                       matrices=tuple(matrices), ious=(None, None),
                       facts={"truth": {0}, "predicted": {0, 1}, "pivot_wrong": set()})


@pytest.fixture
def state(qapp):
    return InspectState()


def test_each_change_of_the_models_says_so(state):
    heard = Heard(state)
    state.set_checkpoints(["runs/so/a.pt", "runs/pit/b.pt"])
    assert heard.calls == [("models_changed", (["runs/so/a.pt", "runs/pit/b.pt"],)), ("pair_changed", (0, 1))]
    heard.take()
    state.set_pair(1, 0)  # another pair: only the pair, nothing is predicted again
    assert heard.calls == [("pair_changed", (1, 0))] and state.pair == (1, 0)
    heard.take()
    state.add("runs/pit/c.pt", replace_run=True)  # the run's newer checkpoint takes its model's place
    assert heard.take() == ["models_changed", "pair_changed"]
    assert state.checkpoints == ["runs/so/a.pt", "runs/pit/c.pt"] and state.pair == (1, 0)  # still in panel A
    state.set_names(["source-only", "PIT"])  # all loaded: names, and the scoring starts again
    assert heard.calls == [("names_changed", (["source-only", "PIT"],)), ("scoring_reset", (("source-only", "PIT"), 0))]
    heard.take()
    state.add("runs/x/d.pt")
    heard.take()
    assert not state.set_names(["source-only", "", "X"])  # one failed to load: it leaves, the rest load anew
    assert heard.take() == ["models_changed", "pair_changed"]
    assert state.checkpoints == ["runs/so/a.pt", "runs/x/d.pt"] and state.pair == (0, 1)
    state.remove(0)
    assert heard.take() == ["models_changed", "pair_changed"] and state.pair == (-1, 0)


def test_each_change_of_the_frames_and_their_results_says_so(state, monkeypatch):
    import pit_gui.inspect_state as inspect_state

    heard = Heard(state)
    state.set_checkpoints(["a.pt", "b.pt"])
    state.generation = 3  # the inference worker's number for these models
    frames = [Path(f"f{i}.png") for i in range(4)]
    heard.take()
    state.set_frames(frames)
    assert heard.calls == [("frames_changed", (frames,)), ("scoring_reset", (("a", "b"), 4))]
    heard.take()
    state.select(frames[0])
    assert heard.calls == [("current_changed", (frames[0],))] and state.result() is None
    heard.take()
    assert not state.add_result(result(frames[1], generation=2))  # made by models since replaced
    assert not state.add_result(result("elsewhere.png", generation=3))  # not a frame of this folder
    assert heard.take() == [] and not state.scores
    first = result(frames[0], generation=3)
    assert state.add_result(first)
    assert heard.calls == [("frame_scored", (first,))] and state.result() is first
    assert state.scores == {frames[0]: (0.5, 0.75)} and state.pair_scores(frames[0]) == (0.5, 0.75)
    heard.take()
    assert state.mark_unreadable(frames[2], "error: cannot read f2.png")
    assert not state.mark_unreadable(frames[2], "error: cannot read f2.png")  # told once
    assert not state.mark_unreadable(Path("elsewhere.png"), "error")
    assert heard.calls == [("frame_unreadable", (frames[2], "error: cannot read f2.png"))]
    assert state.settled() == 2 and state.readable(frames) == [frames[0], frames[1], frames[3]]
    # the predictions held stay under CACHE_BYTES, the frame shown among them
    monkeypatch.setattr(inspect_state, "CACHE_BYTES", int(2.5 * first.nbytes))
    for path in (frames[1], frames[3]):
        state.add_result(result(path, generation=3))
    assert list(state.cache) == [frames[0], frames[3]] and len(state.scores) == 3
    heard.take()
    state.set_checkpoints(["c.pt"])  # other models: nothing of the old ones kept
    assert heard.take() == ["models_changed", "pair_changed"] and not state.cache and not state.scores
    assert state.unreadable  # the same bytes stay unreadable for other models
    state.set_frames([])  # another folder: nothing unreadable either
    assert heard.take() == ["frames_changed", "scoring_reset"] and not state.unreadable


def radios(model_list, which) -> list[bool]:
    return [b.isChecked() for b in sorted(model_list.groups[which].buttons(), key=model_list.groups[which].id)]


def test_the_model_list_follows_the_state_and_changes_it(state, qtbot):
    models = ModelList(state)
    qtbot.addWidget(models)
    state.set_checkpoints(["runs/so/a.pt", "runs/pit/b.pt"])
    assert models.table.rowCount() == 2 and models.table.item(0, 0).text() == "a.pt (loading…)"
    assert radios(models, "a") == [True, False] and radios(models, "b") == [False, True]
    state.set_names(["source-only", "PIT"])
    assert [models.table.item(i, 0).text() for i in range(2)] == ["source-only", "PIT"]
    state.set_pair(1, 0)
    assert radios(models, "a") == [False, True] and radios(models, "b") == [True, False]
    state.add("runs/x/c.pt")
    assert models.table.rowCount() == 3 and radios(models, "b") == [False, False, True]
    # and the other way: its buttons change the state, which redraws it
    with qtbot.waitSignal(state.pair_changed):
        models.groups["a"].button(0).click()
    assert state.pair == (0, 2) and radios(models, "a") == [True, False, False]
    with qtbot.waitSignal(state.models_changed):
        models.table.cellWidget(0, 3).click()  # ✕ on the first model
    assert state.checkpoints == ["runs/pit/b.pt", "runs/x/c.pt"] and models.table.rowCount() == 2


def test_the_folder_summary_follows_the_state(state, qtbot):
    summary = FolderSummary(state)
    qtbot.addWidget(summary)
    state.set_checkpoints(["so.pt", "pit.pt"])
    state.set_names(["source-only", "PIT"])
    frames = [Path("f0.png"), Path("f1.png")]
    state.set_frames(frames)
    assert [summary.which.itemText(i) for i in range(summary.which.count())] == ["source-only", "PIT"]
    assert summary.total_frames == 2 and summary.which.currentText() == "PIT"  # panel B's model
    state.add_result(result(frames[0]))
    state.add_result(result(frames[1], road=(30, 30)))
    summary.refresh()  # as its timer does, a few times a second at most
    assert len(summary.totals.frames) == 2
    assert summary.row("road") == ["road", "50.0", "75.0", "+25.0"]  # 40 of 80 road pixels, and 60 of 80
    state.set_pair(1, 0)
    assert summary.pair == (1, 0) and summary.row("road")[3] == "-25.0"
    state.set_frames(frames)  # the folder again: nothing scored
    assert not summary.totals.frames and summary.row("road") == []


class FakeInference:
    """What the Inspect view asks of the inference worker, written down."""

    def __init__(self):
        self.asked, self.generation = [], 0

    def set_models(self, checkpoints):
        self.generation += 1
        return self.generation

    def set_pair(self, a, b):
        self.asked.append(("pair", a, b))

    def request(self, paths, urgent=False):
        self.asked.append(("request", list(paths), urgent))

    def forget(self):
        self.asked.append(("forget",))


def test_the_inspect_views_frame_list_follows_the_state(state, qtbot):
    from pit_gui.inspect_view import InspectView

    view = InspectView()
    qtbot.addWidget(view)
    view.inference = inference = FakeInference()
    state = view.state
    view.set_models("so.pt", "pit.pt")
    assert state.generation == 1 and ("pair", 0, 1) in inference.asked
    frames = [Path(f"/frames/f{i}_leftImg8bit.png") for i in range(3)]
    state.set_frames(frames)  # the list is drawn from the state's signal
    assert [view.list.item(i).text() for i in range(3)] == ["f0.png", "f1.png", "f2.png"]
    assert view.current == frames[0] and ("request", [frames[0]], True) in inference.asked
    state.add_result(result(frames[1], generation=1))
    assert view.items[frames[1]].text() == "f1.png\n50.0 → 75.0 (+25.0)"
    assert not view.progress.isHidden() and view.progress.value() == 1  # scored 1 of 3
    state.set_pair(1, 0)  # the other way round: the gain turns
    assert view.items[frames[1]].text() == "f1.png\n75.0 → 50.0 (-25.0)"
    state.mark_unreadable(frames[2], "error: cannot read")
    assert view.items[frames[2]].text() == "f2.png\nunreadable" and view.settled() == 2
    state.select(frames[2])  # selected: empty panels that say so
    assert view.panel_a.titleLabel.text.endswith("is unreadable")
