"""The pivot as a switch (pit_gui/what_if.py), in the real window on the shipped demo pair: a class
set absent leaves the pseudo-labels as the engine defines it, reset and export."""
import numpy as np
from PIL import Image

from pit_engine.classes import IGNORE
from pit_engine.pit_ops import ABSENT, PRESENT, UNSURE
from test_gui import WAIT_MS, make_window, settings, window  # noqa: F401  (fixtures)


def grown_class(pred) -> int:
    counts = np.bincount(pred.regions[pred.regions != IGNORE].ravel(), minlength=19)
    return int(counts.argmax())


def test_a_class_switched_absent_leaves_the_pseudo_labels(window, qtbot, tmp_path):
    view = window.inspect_view
    r = view.result()
    index, pred = view.regions_model(r)
    assert pred is not None and pred.has_pivot  # the shipped PIT model, panel B
    c = grown_class(pred)
    assert pred.pivot[c] == PRESENT and (pred.regions == c).any()
    wi = view.what_if
    view.chart.class_clicked.emit(c)  # not editing: a click changes nothing
    assert not wi.active()
    wi.edit.setChecked(True)
    view.chart.class_clicked.emit(c)  # present → unsure: skipped by D, and it still grows nowhere new
    assert wi.active() and wi.pivot[c] == UNSURE
    assert not wi.result.expand[c] and not wi.result.suppress[c]  # D skips an unsure class
    view.chart.class_clicked.emit(c)  # unsure → absent
    assert wi.pivot[c] == ABSENT
    # as the method defines it: an absent class is zeroed before region growing, so none of its pixels stay
    # labelled c, and D suppresses it; the other classes' states are as the model inferred them
    assert not (wi.result.regions == c).any() and wi.result.suppress[c] and not wi.result.expand[c]
    assert np.array_equal(np.delete(wi.pivot, c), np.delete(pred.pivot, c))
    # the view shows the edit: the chart's state for the class, the regions panel of that class
    shown = dict(view.chart.shown)
    assert any(p.pivot[c] == ABSENT for p in shown.values())
    assert view.region_class.currentIndex() == c and "what-if: absent" in view.panel_regions.titleLabel.text
    assert view.region_mode.currentIndex() == 2  # every class's pseudo-labels: the whole map the edit changes
    assert "absent" in wi.summary.text()
    # the engine computed it: the same as calling the Predictor directly
    same = window.inference.what_if(index, r.image, wi.pivot)
    assert np.array_equal(same.regions, wi.result.regions)
    # export: the frame, the pseudo-labels before and after
    assert window.exports.export_what_if(tmp_path / "w.png")
    qtbot.waitUntil(lambda: not window.tasks, timeout=WAIT_MS)
    with Image.open(tmp_path / "w.png") as im:
        assert im.width >= 3 * r.image.shape[1]
    # reset: the pivot and regions as inferred
    wi.reset()
    assert not wi.active() and "what-if" not in view.panel_regions.titleLabel.text
    assert any(p.pivot[c] == PRESENT for p in dict(view.chart.shown).values())


def test_an_edit_belongs_to_its_frame(window, qtbot):
    view = window.inspect_view
    wi = view.what_if
    wi.edit.setChecked(True)
    c = grown_class(view.regions_model(view.result())[1])
    wi.set_state(c, ABSENT)
    assert wi.active()
    view.step(1)
    qtbot.waitUntil(lambda: view.result() is not None and view.result().path == view.current, timeout=WAIT_MS)
    assert not wi.active() and wi.summary.text() == ""
