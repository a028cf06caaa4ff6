"""Scale on paper, in code: API-server requests per second caused by N trainings and M pollers.

Ours: pollers read the API's watch-fed index (0 API-server requests each); the API holds one watch per
replica; tokens are reviewed once per cache period per distinct token; trainers patch status about once
per epoch; the operator reacts to Job and Pod events and resyncs unfinished trainings every five minutes.
Naive: the same trainers, but every poll is one GET on the API server (a home-grown Flask handler), and
no operator at all (so with few pollers and many trainings it costs less than ours: it also notices
nothing of unschedulable pods, OOM kills or preemptions).

The per-training constants are counted from the code (see the comments) and can be checked against the
emulator's request records in ``tests/integration/test_full_stack.py``.
"""

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Assumptions:
    """The knobs; defaults are conservative for YOLO training on GPUs."""

    poll_seconds: float = 2.0  # a client polling /task_status
    epoch_seconds: float = 30.0  # one epoch (real datasets on a GPU take minutes)
    training_hours: float = 2.0  # length of a training: lifecycle calls are spread over it
    lifecycle_calls: int = 35  # operator: 4 creates, ~4 status patches, ~8 syncs x 3 reads, ~3 Events
    resync_seconds: float = 300.0  # kopf timer on unfinished trainings: GET training + GET Job + LIST pods
    resync_calls: int = 3
    api_replicas: int = 2
    watch_renew_seconds: float = 300.0
    auth_cache_seconds: float = 60.0
    distinct_tokens: int = 100  # users and service accounts polling (2 reviews each per cache period)


def ours(trainings: int, pollers: int, a: Assumptions) -> float:
    """API-server requests per second of our design."""
    trainer = trainings / a.epoch_seconds
    operator = trainings * (a.lifecycle_calls / (a.training_hours * 3600) + a.resync_calls / a.resync_seconds)
    api = a.api_replicas / a.watch_renew_seconds + 2 * min(pollers, a.distinct_tokens) / a.auth_cache_seconds
    return trainer + operator + api


def naive(trainings: int, pollers: int, a: Assumptions) -> float:
    """API-server requests per second when every poll is a GET."""
    return trainings / a.epoch_seconds + pollers / a.poll_seconds


def main(argv: list[str]) -> None:
    """Print the table."""
    a = Assumptions()
    print(f"\nscale: API-server requests/s (poll every {a.poll_seconds:.0f}s, epoch {a.epoch_seconds:.0f}s, "
          f"{a.distinct_tokens} distinct tokens, {a.api_replicas} API replicas)")
    print(f"{'trainings':>10}{'pollers':>10}{'ours':>10}{'naive':>12}{'naive/ours':>12}")
    for trainings in (10, 100, 1_000, 10_000):
        for pollers in (100, 10_000, 100_000):
            mine, theirs = ours(trainings, pollers, a), naive(trainings, pollers, a)
            print(f"{trainings:>10,}{pollers:>10,}{mine:>10.1f}{theirs:>12,.1f}{theirs / mine:>11.0f}x")
    worst = Assumptions(distinct_tokens=100_000)
    print(f"worst case, every one of 100,000 pollers with its own token: ours "
          f"{ours(1_000, 100_000, worst):,.0f} req/s (TokenReview + SubjectAccessReview per token per "
          f"{worst.auth_cache_seconds:.0f}s; raise YOLO_API_AUTH_CACHE_SECONDS to cut it)")
    print("kube-apiserver defaults: --max-requests-inflight=400, --max-mutating-requests-inflight=200")


if __name__ == "__main__":
    main(sys.argv[1:])
