"""What the Ray executor costs against the local one, and how both scale from 1 to 2 workers, in one run.

    python benchmarks/ray_overhead.py [--level 3] [--repeat 3] [--ray-address ADDR]

Needs the ray extra (pip install -e '.[ray]'). Without --ray-address it starts a Ray cluster on this
machine (`ray start --head`, 2 CPUs) for the benchmark and stops it at the end.

The level's mutants of the bundled nanochat run four ways, each `--repeat` times: local with 1 and 2
workers, Ray with 1 and 2 CPU actors. The baseline is measured once and shared by every run (each run
starts from a copy of the store without results), so all select the same tests for each mutant.

- per-mutant overhead: a swapped mutant's wall time, as the driver sees it (task sent to result back),
  minus its tests' own run time; the median over the run's mutants (timings["overhead_median_s"]);
- the mutants phase: from the first task to the last result, start-up included (Ray: joining the
  cluster, shipping the code and starting the actors; local: starting the workers);
- after start-up: the same, less the time until the first worker (or actor) was ready.
Each figure is the median over the repeats.
"""

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutator import catalog, runner
from mutator.ray_executor import RayExecutor

CONFIGS = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]


def start_cluster(workdir: Path):
    """A 2-CPU Ray head on this machine, token authentication off: (its address, the process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ["RAY_AUTH_MODE"] = "disabled"  # for the head, and for this driver joining it
    log_path = workdir / "ray-start.log"
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 characters
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}"]
    command += ["--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats"]
    with open(log_path, "w") as log:
        head = subprocess.Popen([*command, f"--temp-dir={temp_dir}"], stdout=log, stderr=subprocess.STDOUT)
    while "Ray runtime started" not in log_path.read_text():
        if head.poll() is not None:
            raise SystemExit(f"ray start failed: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    return f"127.0.0.1:{port}", head, temp_dir


def fresh_copy(store: Path, destination: Path) -> Path:
    """The store with its baseline and no result: the next run measures every mutant again."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(store, destination, ignore=shutil.ignore_patterns("scratch", "logs"))
    with sqlite3.connect(destination / "session.sqlite") as db:
        db.execute("DELETE FROM results")
        db.execute("DELETE FROM reusable")
    return destination


def one_run(mutants, target: Path, store: Path, executor: str, workers: int, address: str | None) -> dict:
    cluster = RayExecutor(address=address, cpu_actors=workers) if executor == "ray" else None
    report = runner.run(mutants, target=target, devices=["cpu"], workers=workers, store_dir=store, executor=cluster)
    timings = report.timings
    ready = timings["ray_ready_s"] if executor == "ray" else timings["worker_start_s"]
    return {
        "overhead_s": timings["overhead_median_s"],
        "phase_s": timings["mutants_s"],
        "after_start_s": timings["mutants_s"] - ready,
        "mutants": timings["executed"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", default="3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ray-address", help="an existing cluster (default: one started here for the benchmark)")
    args = parser.parse_args()
    target = catalog.default_target()
    mutants = catalog.generate_mutants(args.level, target)
    workdir = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    head = None
    try:
        address = args.ray_address
        if address is None:
            address, head, ray_temp = start_cluster(workdir)
        baseline_store = workdir / "baseline"
        runner.run(mutants[:1], target=target, devices=["cpu"], workers=2, store_dir=baseline_store)
        measured = {config: [] for config in CONFIGS}
        for _ in range(args.repeat):  # interleaved, so a change in the machine's load falls on every config
            for executor, workers in CONFIGS:
                store = fresh_copy(baseline_store, workdir / "run")
                measured[(executor, workers)].append(one_run(mutants, target, store, executor, workers, address))
        load = os.getloadavg()[0]
    finally:
        if head is not None:
            head.terminate()  # `ray start --block` stops every process it started
            head.wait()
            shutil.rmtree(ray_temp, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)

    def median(config, key):
        return statistics.median(run[key] for run in measured[config])

    count = measured[CONFIGS[0]][0]["mutants"]
    print(f"level {args.level}: {count:.0f} mutants of the bundled nanochat, median of {args.repeat} runs per row;")
    print(f"{os.cpu_count()} cores, 1-minute load average {load:.1f} at the end (machine shared with other jobs)")
    print(f"{'executor':<10}{'workers':>8}{'overhead/mutant':>17}{'mutants phase':>15}{'after start-up':>16}")
    for config in CONFIGS:
        overhead, phase, after = (median(config, key) for key in ("overhead_s", "phase_s", "after_start_s"))
        print(f"{config[0]:<10}{config[1]:>8}{overhead * 1000:>15.0f}ms{phase:>14.1f}s{after:>15.1f}s")
    for workers in (1, 2):
        ratio = median(("ray", workers), "overhead_s") / median(("local", workers), "overhead_s")
        extra_ms = (median(("ray", workers), "overhead_s") - median(("local", workers), "overhead_s")) * 1000
        print(f"ray / local per-mutant overhead, {workers} worker(s): {ratio:.2f}x ({extra_ms:+.0f} ms a mutant)")
    for executor in ("local", "ray"):
        for key, what in (("phase_s", "mutants phase"), ("after_start_s", "after start-up")):
            speedup = median((executor, 1), key) / median((executor, 2), key)
            print(f"{executor} speed-up from 1 to 2 workers, {what}: {speedup:.2f}x")


if __name__ == "__main__":
    main()
