"""Median start-up time of `provision --help` (target: at most 0.3 s on a 2-core machine).

Prints figures only; timing assertions in tests would be flaky on shared machines.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    provision = str(Path(sys.executable).with_name("provision"))
    timed([provision, "--help"])  # warm the file cache and bytecode
    baseline = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(RUNS))
    help_times = [timed([provision, "--help"]) for _ in range(RUNS)]
    sub_times = [timed([provision, "azure", "--help"]) for _ in range(RUNS)]
    print(f"python -c pass        median {baseline * 1000:6.0f} ms")
    print(f"provision --help      median {statistics.median(help_times) * 1000:6.0f} ms "
          f"(min {min(help_times) * 1000:.0f}, max {max(help_times) * 1000:.0f}; target <= 300 ms)")
    print(f"provision azure --help median {statistics.median(sub_times) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
