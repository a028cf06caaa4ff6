"""Names of the YoloTraining custom resource and the labels that link its children to it.

The API group, version, kind and plurals appear in the CRD manifest, in the operator's handlers, in the
trainer's status sink and in the API's watch; a test checks the CRD manifest against these constants.
"""

from typing import Final

GROUP: Final = "yolo-operator.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "YoloTraining"
PLURAL: Final = "yolotrainings"
SINGULAR: Final = "yolotraining"
SHORT_NAMES: Final = ("yt",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

#: Label put on every Job, Pod, ServiceAccount and Role created for a training: the resource's name.
LABEL_NAME: Final = f"{GROUP}/training"
#: Label carrying the task id (the training's metadata.uid): on the training itself (set by POST /train and by the
#: operator, so that any API replica can look a task up by id) and on each of its children.
LABEL_TASK_ID: Final = f"{GROUP}/task-id"
#: Standard label naming the component that manages the children.
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "yolo-training-operator"

#: Annotation set by ``DELETE /tasks/{id}``: the training is cancelled (its Job is suspended, then failed
#: with reason Cancelled by the operator); the resource stays so that its task id keeps answering.
ANNOTATION_CANCEL: Final = f"{GROUP}/cancel"
