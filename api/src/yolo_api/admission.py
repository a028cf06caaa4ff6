"""``POST /train`` answers 422 for an image, Secret or PriorityClass outside the allow-lists.

The cluster refuses such a training too (the chart's ValidatingAdmissionPolicy, then the operator); the
API says so first, in its own envelope and naming the request field, instead of a 500 from a refused
create or a training that fails. The rule is :mod:`yolo_crd.admission`.
"""

from yolo_api.errors import invalid
from yolo_api.settings import ApiSettings
from yolo_crd.admission import refusals
from yolo_crd.spec import YoloTrainingSpec

#: Where a spec field comes from in the request body (POST /train uses snake_case at its top level).
BODY_FIELDS = {"objectStorage": "object_storage", "priorityClassName": "priority_class_name"}


def check(spec: YoloTrainingSpec, settings: ApiSettings) -> None:
    """Raise a 422 (:func:`yolo_api.errors.invalid`) listing every field of ``spec`` the allow-lists refuse."""
    found = refusals(spec, images=settings.allowed_images, secrets=settings.allowed_secrets,
                     priority_classes=settings.allowed_priority_classes)
    if found:
        raise invalid([{"loc": ["body", BODY_FIELDS.get(item.path[0], item.path[0]), *item.path[1:]],
                        "msg": item.message, "type": "not_allowed"} for item in found])
