"""The operator's second line behind the chart's admission policy: a spec outside the allow-lists runs nothing.

The ValidatingAdmissionPolicy refuses such a training at ``kubectl apply``; where it is off (disabled in
the chart, a cluster older than 1.30) or was installed after the training, the operator refuses to build
its Job. The rule itself is :mod:`yolo_crd.admission`, the same one the API applies.
"""

from yolo_crd.admission import refusals
from yolo_crd.spec import YoloTrainingSpec
from yolo_operator.settings import OperatorSettings


def refusal(spec: YoloTrainingSpec, settings: OperatorSettings) -> str | None:
    """Why the operator must not run ``spec`` (its image, Secret or PriorityClass is not allowed), or None."""
    found = refusals(spec, images=settings.allowed_images, secrets=settings.allowed_secrets,
                     priority_classes=settings.allowed_priority_classes)
    return "; ".join(item.message for item in found) or None
