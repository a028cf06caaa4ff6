"""``python -m yolo_api``: the same as the ``yolo-api`` command."""

from yolo_api.cli import main

main()
