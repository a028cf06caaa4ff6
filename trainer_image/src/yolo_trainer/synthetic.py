"""A small synthetic detection dataset (coloured shapes on noisy backgrounds) for demos and tests.

Nothing is downloaded: images and YOLO labels are drawn here. Squares, circles and triangles are easy
enough that a YOLOv8n trained from scratch visibly learns them in a minute on a CPU.
"""

from pathlib import Path

import cv2
import numpy as np

SHAPES = ("square", "circle", "triangle")


def _draw(image: np.ndarray, shape: int, x: int, y: int, size: int, color: tuple[int, int, int]) -> None:
    if shape == 0:
        cv2.rectangle(image, (x, y), (x + size, y + size), color, -1)
    elif shape == 1:
        cv2.circle(image, (x + size // 2, y + size // 2), size // 2, color, -1)
    else:
        points = np.array([[x + size // 2, y], [x, y + size], [x + size, y + size]], np.int32)
        cv2.fillPoly(image, [points], color)


def make_dataset(
    root: Path, *, classes: int = 2, train: int = 256, val: int = 64, imgsz: int = 64, seed: int = 0
) -> Path:
    """Write ``images/``, ``labels/`` and ``data.yaml`` under ``root``; return the data.yaml path."""
    if not 1 <= classes <= len(SHAPES):
        raise ValueError(f"classes must be between 1 and {len(SHAPES)}")
    for split, count in (("train", train), ("val", val)):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed + (0 if split == "train" else 1))
        for index in range(count):
            image = rng.integers(0, 60, (imgsz, imgsz, 3), dtype=np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 3))):
                shape = int(rng.integers(0, classes))
                size = int(rng.integers(imgsz // 5, imgsz * 2 // 5))
                x, y = (int(v) for v in rng.integers(0, imgsz - size, 2))
                color = tuple(int(c) for c in rng.integers(140, 256, 3))
                _draw(image, shape, x, y, size, color)  # type: ignore[arg-type]
                cx, cy, side = (x + size / 2) / imgsz, (y + size / 2) / imgsz, size / imgsz
                lines.append(f"{shape} {cx:.6f} {cy:.6f} {side:.6f} {side:.6f}")
            cv2.imwrite(str(images / f"{index:05d}.png"), image)
            (labels / f"{index:05d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = "".join(f"  {i}: {SHAPES[i]}\n" for i in range(classes))
    data = root / "data.yaml"
    data.write_text(f"path: {root.absolute()}\ntrain: images/train\nval: images/val\nnames:\n{names}", encoding="utf-8")
    return data


def main(argv: list[str] | None = None) -> None:
    """``python -m yolo_trainer.synthetic [ROOT]``: draw a dataset and print its data.yaml path."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m yolo_trainer.synthetic",
                                     description="Draw a small synthetic detection dataset (coloured shapes) and "
                                                 "print the path of its data.yaml.")
    parser.add_argument("root", nargs="?", default="synthetic-data", type=Path, help="folder to draw it in")
    parser.add_argument("--classes", type=int, default=2, choices=range(1, len(SHAPES) + 1), metavar="N",
                        help=f"number of classes, 1 to {len(SHAPES)} (default 2)")
    parser.add_argument("--train", type=int, default=256, help="training images (default 256)")
    parser.add_argument("--val", type=int, default=64, help="validation images (default 64)")
    parser.add_argument("--imgsz", type=int, default=64, help="image size in pixels (default 64)")
    args = parser.parse_args(argv)
    print(make_dataset(args.root, classes=args.classes, train=args.train, val=args.val, imgsz=args.imgsz))


if __name__ == "__main__":
    main()
