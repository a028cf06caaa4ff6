"""What a training may reference: trainer images, Secrets and PriorityClasses, decided by one rule.

Whoever may ``create yolotrainings`` makes the operator create a Job, so the spec's image, the Secret it
names and its PriorityClass are bounded by allow-lists. The same rule runs in three places: the chart's
ValidatingAdmissionPolicy (CEL, in the API server, ``templates/admission-policies.yaml``), the operator
(second line, for clusters without the policy) and ``POST /train`` (a 422 instead of a training that
fails). This module is the rule in Python: pure functions, no I/O; the CEL is its transcription and the
e2e tests hold both to the same cases.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from yolo_crd.spec import YoloTrainingSpec


def image_allowed(image: str, prefixes: Sequence[str]) -> bool:
    """Whether ``image`` matches one of ``prefixes``.

    A prefix ending in ``/`` allows every image under that path (``reg.io/yolo/`` allows
    ``reg.io/yolo/trainer:1`` and ``reg.io/yolo/team/x``). Any other prefix names one repository and allows
    exactly it, bare or with a ``:tag`` or ``@digest`` (``reg.io/yolo/trainer`` allows
    ``reg.io/yolo/trainer:1.0`` but neither ``reg.io/yolo/trainer-evil`` nor ``reg.io/yolo/trainer:x/y``).
    """
    return any(_image_matches(image, prefix) for prefix in prefixes)


def _image_matches(image: str, prefix: str) -> bool:
    if not prefix:
        return False
    if prefix.endswith("/"):
        return image.startswith(prefix)
    if image == prefix:
        return True
    # a tag or digest never holds '/': "reg:5000/x" is not repository "reg" with a tag
    return image.startswith((prefix + ":", prefix + "@")) and "/" not in image[len(prefix):]


def name_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Whether ``name`` is listed in ``allowed``, where an entry ending in ``*`` allows every name it starts."""
    return any(name.startswith(entry[:-1]) if entry.endswith("*") else name == entry for entry in allowed)


def secret_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Whether a training may name the Secret ``name`` (exact names, or name prefixes ending in ``*``)."""
    return name_allowed(name, allowed)


def priority_class_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Whether a training may name the PriorityClass ``name``; an empty list allows any."""
    return not allowed or name_allowed(name, allowed)


@dataclass(frozen=True)
class Refusal:
    """One spec field a training may not have: its path in the spec (camelCase, as on the wire) and why."""

    path: tuple[str, ...]
    message: str


def _listed(allowed: Sequence[str]) -> str:
    return ", ".join(allowed) if allowed else "none"


def refusals(spec: YoloTrainingSpec, *, images: Sequence[str] | None = None, secrets: Sequence[str] | None = None,
             priority_classes: Sequence[str] | None = None) -> list[Refusal]:
    """Every field of ``spec`` outside the allow-lists; a list that is None is not enforced.

    ``images``: prefixes for ``spec.image`` (absent: the operator's own trainer image, always allowed);
    ``secrets``: names for ``spec.objectStorage.secretRef`` (the only Secret a spec names; an empty list
    allows none); ``priority_classes``: names for ``spec.priorityClassName`` (an empty list allows any).
    """
    found: list[Refusal] = []
    if images is not None and spec.image is not None and not image_allowed(spec.image, images):
        found.append(Refusal(("image",), f"spec.image {spec.image} is not allowed: allowed images are "
                             f"{_listed(images)} (a prefix ending in / allows every image under it, any other "
                             "names one repository, with any :tag or @digest)"))
    secret = spec.object_storage.secret_ref.name if spec.object_storage else None
    if secrets is not None and secret is not None and not secret_allowed(secret, secrets):
        found.append(Refusal(("objectStorage", "secretRef", "name"), f"spec.objectStorage.secretRef {secret} is "
                             f"not allowed: allowed Secrets are {_listed(secrets)} (an entry ending in * is a name "
                             "prefix)"))
    priority = spec.priority_class_name
    if priority_classes is not None and priority is not None and not priority_class_allowed(priority,
                                                                                           priority_classes):
        found.append(Refusal(("priorityClassName",), f"spec.priorityClassName {priority} is not allowed: allowed "
                             f"PriorityClasses are {_listed(priority_classes)}"))
    return found
