"""How long `ratecard validate` takes, next to the bare cost of starting Python with its libraries.

Run by hand from anywhere: `python bench/validate.py [RUNS]`. Both commands run as fresh processes
(that is what an analyst and a pre-commit hook pay), in the same run, so the ratio holds on any
machine even when the absolute figures do not. Not a test: timings never gate CI.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(argv: list[str], runs: int) -> float:
    """Median wall time of `runs` runs, in seconds, after one untimed warm-up (disk cache, .pyc)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    validate = wall([sys.executable, "-m", "ratecard", "validate"], runs)
    bare = wall([sys.executable, "-c", "import yaml, jsonschema"], runs)
    print(f"median of {runs} runs, {sys.executable}")
    print(f"ratecard validate (shipped rules):   {validate * 1000:7.1f} ms")
    print(f'python -c "import yaml, jsonschema": {bare * 1000:7.1f} ms')
    print(f"ratio validate / bare import:        {validate / bare:7.2f}")


if __name__ == "__main__":
    main()
