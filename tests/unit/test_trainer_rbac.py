"""The trainer's per-training Role, evaluated the way the RBAC authorizer does: its own status only."""

from typing import Any

import pytest

from yolo_operator.builders import build_role

META = {"name": "mine", "namespace": "team-a", "uid": "00000000-0000-4000-8000-000000000001"}


def allowed(rules: list[dict[str, Any]], verb: str, group: str, resource: str, name: str) -> bool:
    """Kubernetes RBAC: some rule must match group, resource (with subresource), verb and, if set, name."""
    return any(group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
               and (not rule.get("resourceNames") or name in rule["resourceNames"]) for rule in rules)


@pytest.mark.parametrize(("verb", "resource", "name", "expected"), [
    ("patch", "yolotrainings/status", "mine", True),
    ("get", "yolotrainings/status", "mine", True),
    ("patch", "yolotrainings/status", "theirs", False),  # another user's training
    ("get", "yolotrainings/status", "theirs", False),
    ("patch", "yolotrainings", "mine", False),  # not even its own spec
    ("delete", "yolotrainings", "mine", False),
    ("list", "yolotrainings", "", False),
    ("create", "jobs", "", False),
    ("get", "secrets", "anything", False),
])
def test_a_trainer_can_only_write_its_own_status(verb: str, resource: str, name: str, expected: bool) -> None:
    group = "batch" if resource == "jobs" else "" if resource == "secrets" else "yolo-operator.io"
    assert allowed(build_role(META)["rules"], verb, group, resource, name) is expected
