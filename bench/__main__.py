"""``make bench``: run every benchmark and print its table (figures side by side, never asserted)."""

import sys
import time

from bench import (
    api_events,
    api_scale,
    api_status,
    export_time,
    operator_reconcile,
    scale,
    status_size,
    sweep_cost,
    trainer_overhead,
)


def main() -> int:
    """Run the benchmarks in turn, then say how long they took."""
    started = time.monotonic()
    api_status.main([])
    api_scale.main([])
    api_events.main([])
    operator_reconcile.main([])
    sweep_cost.main([])
    trainer_overhead.main([])
    export_time.main([])
    scale.main([])
    status_size.main([])
    print(f"\nmake bench: {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
