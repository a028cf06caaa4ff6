"""The kopf operator: reconciles YoloTraining resources into GPU Jobs and mirrors their fate into status.

Run it with ``kopf run -m yolo_operator.handlers --all-namespaces``. Importing this package registers no
handlers (that happens in :mod:`yolo_operator.handlers`) and needs neither torch nor ultralytics.
"""
