"""The HTTP API: ``POST /train`` and ``GET /task_status/{task_id}`` over a Kubernetes or a local backend.

Importing this package needs neither torch nor ultralytics: training runs in trainer processes or pods.
"""
