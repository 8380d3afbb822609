"""Time from the main window's creation to "ready" (the demo models loaded, every demo frame
predicted and the first drawn), offscreen, in this process. Run it by hand, under the load you
care about, e.g. beside two busy loops (`sh -c 'while :; do :; done' &`, twice):

    python benchmarks/gui_ready.py                            # the app's setting (sleeping OpenMP threads)
    OMP_WAIT_POLICY=ACTIVE python benchmarks/gui_ready.py     # OpenMP threads that spin while they wait
"""
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pit_gui.main_window import MainWindow  # noqa: E402  (sets OMP_WAIT_POLICY unless given)


def main():
    app = QApplication([])
    settings = QSettings(os.devnull, QSettings.IniFormat)
    start = time.perf_counter()
    window = MainWindow(settings)
    window.show()
    while not window.ready_for_screenshot():
        app.processEvents()
        time.sleep(0.01)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}: ready after {time.perf_counter() - start:.2f} s")
    window.close()


if __name__ == "__main__":
    main()
