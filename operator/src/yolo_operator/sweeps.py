"""YoloSweeps: kopf handlers (thin) and the controller that takes one step of a sweep at a time.

A step reads the sweep and its trials from the API server, asks the contract's pure planner
(:func:`yolo_crd.sweep_status.plan`) what to do, does it (annotate trials to cancel or stop them early,
create the next trials) and writes the sweep's status. Steps are requested by the sweep's own changes and by
every change of one of its trials, coalesced and serialized per sweep, and retried until they succeed; an
operator restarted at any moment rebuilds everything from the trials (kopf's resume handler requests a step
for every sweep). No finalizer: deleting a sweep deletes its trials through their owner references.
"""

import asyncio
import json
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from yolo_crd.names import (
    ANNOTATION_CANCEL,
    ANNOTATION_EARLY_STOP,
    ANNOTATION_TRIAL_PARAMETERS,
    API_VERSION,
    GROUP,
    KIND,
    LABEL_SWEEP,
    LABEL_TRIAL,
    PLURAL,
    SWEEP_KIND,
    SWEEP_NAME_MAX,
    SWEEP_PLURAL,
    VERSION,
    trial_name,
)
from yolo_crd.search import TrialRecord
from yolo_crd.status import Reason, utc_now
from yolo_crd.sweep import YoloSweepSpec, trial_spec
from yolo_crd.sweep_status import YoloSweepStatus, plan, summary, trial_record
from yolo_crd.wire import one_line
from yolo_operator import metrics
from yolo_operator.coalesce import Coalescer, Key
from yolo_operator.sweep_gateway import SweepGateway, TrialTaken

log = logging.getLogger(__name__)
FINAL_PHASES = ("Succeeded", "Failed")


def trial_body(sweep: dict[str, Any], number: int, parameters: dict[str, Any], spec: YoloSweepSpec) -> dict[str, Any]:
    """The YoloTraining of trial ``number``: the template with its parameters, owned and labelled by the sweep."""
    meta = sweep["metadata"]
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {
            "name": trial_name(meta["name"], number), "namespace": meta["namespace"],
            "labels": {LABEL_SWEEP: meta["name"], LABEL_TRIAL: str(number)},
            "annotations": {ANNOTATION_TRIAL_PARAMETERS: json.dumps(parameters, sort_keys=True)},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": SWEEP_KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": trial_spec(spec.template, parameters).wire(),
    }


def status_patch(old: dict[str, Any], new: YoloSweepStatus, generation: int | None) -> dict[str, Any]:
    """A merge patch that makes the status ``new`` (fields it no longer has are removed), with the times, the
    observed generation and the ``Succeeded`` condition; empty when nothing would change."""
    wire = new.wire()
    wire["startTime"] = old.get("startTime") or utc_now()
    if generation is not None:
        wire["observedGeneration"] = generation
    state = {"Succeeded": "True", "Failed": "False"}.get(str(new.phase), "Unknown")
    condition: dict[str, Any] = {"type": "Succeeded", "status": state, "reason": new.reason or new.phase or "Pending",
                                 "message": (new.message or "")[:1000]}
    previous: dict[str, Any] = next((c for c in old.get("conditions") or [] if c.get("type") == "Succeeded"), {})
    condition["lastTransitionTime"] = previous.get("lastTransitionTime") if previous.get("status") == state \
        else utc_now()
    wire["conditions"] = [condition]
    if new.phase in FINAL_PHASES:
        wire["completionTime"] = old.get("completionTime") or utc_now()
    if all(old.get(key) == value for key, value in wire.items()) and set(old) <= set(wire):
        return {}
    return {**{key: None for key in old if key not in wire}, **wire}


class SweepController:
    """Runs sweep steps in the background (see the module docstring)."""

    def __init__(self, gateway: SweepGateway) -> None:
        self.gateway = gateway
        self.queue = Coalescer(self._step, "sweep step")

    def request(self, namespace: str, name: str) -> None:
        """Take a step of this sweep soon (coalesced with one already queued)."""
        self.queue.request(namespace, name)

    async def _step(self, key: Key) -> None:
        with metrics.timed("sweep"):
            await asyncio.to_thread(self.step, *key)

    def step(self, namespace: str, name: str) -> YoloSweepStatus | None:
        """One step of a sweep; returns the status written (None when the sweep is gone or finished)."""
        sweep = self.gateway.get_sweep(namespace, name)
        if sweep is None or (sweep.get("metadata") or {}).get("deletionTimestamp"):
            metrics.SWEEPS.forget(namespace, name)
            return None
        meta, old = sweep["metadata"], dict(sweep.get("status") or {})
        if old.get("phase") in FINAL_PHASES:
            metrics.SWEEPS.observe(namespace, name, old, _metric(sweep))
            return None
        try:
            spec = YoloSweepSpec.model_validate(sweep.get("spec") or {})
        except ValidationError as exc:
            return self._fail(sweep, one_line(exc))
        if len(name) > SWEEP_NAME_MAX:
            return self._fail(sweep, f"metadata.name: a sweep's name has at most {SWEEP_NAME_MAX} characters "
                                     "(its trials are named <sweep>-<nnn>)")
        trials = self.gateway.list_trials(namespace, name, meta["uid"])
        records = [record for trial in trials if (record := trial_record(trial, spec)) is not None]
        cancelled = (meta.get("annotations") or {}).get(ANNOTATION_CANCEL) == "true"
        step = plan(spec, records, cancelled=cancelled)
        for trial in step.cancel:
            self.gateway.stop_trial(namespace, trial.name, {ANNOTATION_CANCEL: "true"})
        for trial, why in step.stop:
            self.gateway.stop_trial(namespace, trial.name, {ANNOTATION_EARLY_STOP: why})
        made: list[TrialRecord] = []
        for number, parameters in step.create:
            try:
                self.gateway.create_trial(trial_body(sweep, number, parameters, spec))
            except TrialTaken as exc:
                return self._fail(sweep, str(exc))
            except Exception as exc:
                refused = _refusal(exc)
                if refused is None:
                    raise
                return self._fail(sweep, f"trial {trial_name(name, number)} was refused: {refused}")
            made.append(TrialRecord(number, trial_name(name, number), parameters, "pending"))
        status = summary(spec, [*records, *made], cancelled=cancelled) if made else step.status
        patch = status_patch(old, status, meta.get("generation"))
        if patch:
            self.gateway.patch_sweep_status(namespace, name, patch)
        metrics.SWEEPS.observe(namespace, name, status.wire(), spec.objective.metric)
        return status

    def _fail(self, sweep: dict[str, Any], message: str) -> YoloSweepStatus:
        meta = sweep["metadata"]
        status = YoloSweepStatus(phase="Failed", reason=Reason.INVALID_SPEC.value, message=message[:1000])
        patch = status_patch(dict(sweep.get("status") or {}), status, meta.get("generation"))
        if patch:
            self.gateway.patch_sweep_status(meta["namespace"], meta["name"], patch)
        metrics.SWEEPS.observe(meta["namespace"], meta["name"], status.wire(), _metric(sweep))
        log.error("sweep %s/%s failed: %s", meta["namespace"], meta["name"], message)
        return status


def _metric(sweep: dict[str, Any]) -> str:
    """The objective's metric as the spec names it (read without validating: for the metrics' label only)."""
    return str(((sweep.get("spec") or {}).get("objective") or {}).get("metric") or "")


def _refusal(exc: Exception) -> str | None:
    """The API server's message when it refused a trial for good (422 invalid, 403 an admission policy), else None."""
    status = getattr(exc, "status", None)
    if status not in (403, 422):
        return None
    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message") or exc)
    except ValueError:
        return str(exc)


@kopf.on.create(GROUP, VERSION, SWEEP_PLURAL)
@kopf.on.resume(GROUP, VERSION, SWEEP_PLURAL)
@kopf.on.update(GROUP, VERSION, SWEEP_PLURAL)
async def sweep_changed(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A sweep was made, changed (suspend, parallelism, a cancel) or found at start: take a step."""
    if namespace:
        memo.sweeps.request(namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL, labels={LABEL_SWEEP: kopf.PRESENT})
async def trial_changed(namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    """A trial changed (an epoch, its end, its deletion): its sweep takes a step."""
    if namespace and hasattr(memo, "sweeps"):
        memo.sweeps.request(namespace, labels[LABEL_SWEEP])
