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

#: The YoloSweep custom resource: a hyperparameter search whose trials are YoloTrainings it owns.
SWEEP_KIND: Final = "YoloSweep"
SWEEP_PLURAL: Final = "yolosweeps"
SWEEP_SINGULAR: Final = "yolosweep"
SWEEP_SHORT_NAMES: Final = ("ys",)
SWEEP_CRD_NAME: Final = f"{SWEEP_PLURAL}.{GROUP}"
#: Labels on every trial: the sweep's name and the trial's number (``kubectl get yt -l yolo-operator.io/sweep=x``).
LABEL_SWEEP: Final = f"{GROUP}/sweep"
LABEL_TRIAL: Final = f"{GROUP}/trial"
#: Annotation on a trial: its searched parameters as JSON, as the search chose them (the sweep's memory).
ANNOTATION_TRIAL_PARAMETERS: Final = f"{GROUP}/trial-parameters"
#: Annotation set by a sweep's median rule on a trial: stop it, ending Failed with reason EarlyStopped and this
#: message; its partial metrics stay.
ANNOTATION_EARLY_STOP: Final = f"{GROUP}/early-stop"
#: The longest sweep name: its trials are named ``<sweep>-<nnn>`` and a training's name is a label value (63).
SWEEP_NAME_MAX: Final = 52


def trial_name(sweep: str, number: int) -> str:
    """The deterministic name of a sweep's trial ``number``: ``<sweep>-007``."""
    return f"{sweep}-{number:03d}"
