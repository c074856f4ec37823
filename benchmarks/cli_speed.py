"""Time to first answer: `python -m attnkit --help`, `mode=list` and a config error, against `import torch` alone.

    python benchmarks/cli_speed.py                  # 5 alternating rounds
    python benchmarks/cli_speed.py --rounds 9

Each command runs in a fresh process (warm: the files are in the page cache after the first round, which is not
counted), the commands alternating round by round; prints the median wall time of each and what it takes beyond
`import torch`, the floor of every attnkit command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "import torch": ["-c", "import torch"],
    "--help": ["-m", "attnkit", "--help"],
    "mode=list": ["-m", "attnkit", "mode=list"],
    "config error (model.dimm=3)": ["-m", "attnkit", "model.dimm=3"],
    "unknown choice (attention=sofmax)": ["-m", "attnkit", "attention=sofmax"],
    "mode=info (the main job)": ["-m", "attnkit", "task=vit", "heads=8", "mode=info"],
    "trainer value error (trainer.max_epochs=x)": ["-m", "attnkit", "trainer.max_epochs=x"],
    "out-of-range value (task.lr=-1)": ["-m", "attnkit", "task.lr=-1"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds + 1):
            for name, command in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run([sys.executable, *command], cwd=folder, env=env, capture_output=True, check=False)
                if round_:  # the first round warms the page cache
                    times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["import torch"])
    print(f"\nmedian of {args.rounds} alternating rounds, {os.cpu_count()} CPU cores\n")
    print("| command | wall (s) | beyond import torch (s) |")
    print("|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.2f} | {median - floor:+.2f} |")


if __name__ == "__main__":
    main()
