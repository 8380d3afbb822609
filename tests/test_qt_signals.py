"""Guards the PySide6 pin: 6.12.0 on Python 3.11 aborts after a few hundred signal emits
(`Fatal Python error: bool_dealloc`). Emits many bool-carrying signals across threads."""
from PySide6.QtCore import QObject, QThread, Signal, Slot


class Emitter(QObject):
    tick = Signal(int, bool, object)
    done = Signal()

    @Slot()
    def run(self):
        for i in range(5000):
            self.tick.emit(i, i % 2 == 0, {"loss": float(i)})
        self.done.emit()


class Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.evens = 0

    @Slot(int, bool, object)
    def on_tick(self, i, even, payload):
        self.count += 1
        self.evens += even
        assert payload["loss"] == float(i)


def test_many_signals_across_threads(qtbot):
    thread = QThread()
    emitter, receiver = Emitter(), Receiver()
    emitter.moveToThread(thread)
    emitter.tick.connect(receiver.on_tick)  # receiver lives in the GUI thread: queued
    thread.started.connect(emitter.run)
    try:
        with qtbot.waitSignal(emitter.done, timeout=30000):
            thread.start()
        qtbot.waitUntil(lambda: receiver.count == 5000, timeout=30000)
    finally:
        thread.quit()
        assert thread.wait(10000)
    assert receiver.evens == 2500
