"""The trainer: runs ultralytics YOLOv8 training and reports its progress truthfully through a status sink.

Importing this package is cheap: torch and ultralytics are imported only when training starts, so the
sinks and the progress logic can be used (and tested) without them.
"""
