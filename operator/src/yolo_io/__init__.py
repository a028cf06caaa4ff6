"""I/O that more than one component does the same way, kept out of the contract (``yolo_crd``, which stays pure).

* :mod:`yolo_io.local_store`: the SQLite layout of one-machine mode, written by the trainer's local sink and
  read and written by the API's local backend;
* :mod:`yolo_io.kubeclient`: Kubernetes credentials (a pod's service account, else KUBECONFIG), loaded by the
  operator, the API and the trainer's status sink when each builds its client.

Every image installs the project's one wheel, so each ships this package with the contract.
"""
