"""``python -m yolo_trainer``: the trainer container's entrypoint."""

from yolo_trainer.cli import main

main()
