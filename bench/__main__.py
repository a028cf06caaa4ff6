"""``make bench``: run every benchmark and print its table."""

import sys

from bench import api_status, operator_reconcile


def main() -> int:
    """Run the benchmarks in turn."""
    api_status.main([])
    operator_reconcile.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
