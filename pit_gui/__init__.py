"""PIT Studio's desktop application: PySide6 + pyqtgraph over the engine's public API."""
