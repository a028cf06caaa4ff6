"""``make bench``: run every benchmark and print its table."""

import sys

from bench import api_status


def main() -> int:
    """Run the benchmarks in turn."""
    api_status.main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
