"""Regenerate the README's figures: `python docs/figures.py`."""
from pathlib import Path

import numpy as np
from PIL import Image

from pit_engine.classes import colourize
from pit_engine.data.demo import SOURCE, TARGET, make_frame

HERE = Path(__file__).parent


def demo_pair(out: Path = HERE / "demo_pair.png", frames=(0, 1, 2), scale=3) -> None:
    """Source frames (top) and target frames (bottom), each above its label."""
    w, h = TARGET.size
    rows = []
    for look in (SOURCE, TARGET):
        tiles = []
        for i in frames:
            image, label = make_frame(0, look, i)
            image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
            label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
            tiles.append(np.concatenate([image, colourize(label)], 0))
            tiles.append(np.full((2 * h, 4, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], 1))
        rows.append(np.full((6, rows[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows[:-1], 0)
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(out)


if __name__ == "__main__":
    demo_pair()
