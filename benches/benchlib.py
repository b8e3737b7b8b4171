"""Helpers shared by the benchmark scripts."""

import subprocess
import time


def run_timed(cmd, env=None):
    """Runs cmd, returns (seconds, peak RSS in MiB) polling /proc for VmHWM."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0
    status = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0,):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err}")
    return elapsed, peak / 1024


def demo_bench_setup(prefix, extra=None):
    """The arguments every rebuy-vs-DuckDB benchmark takes, DuckDB installed, and a demo store
    of --orders orders as input files and as a warehouse (made once per work directory).
    Returns (args, work, inputs, data). `extra(parser)` adds a script's own arguments."""
    import argparse
    import os
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuy", default=os.environ.get("REBUY_BIN", str(target / "release" / "rebuy")))
    ap.add_argument("--workdir", default=None)
    if extra:
        extra(ap)
    args = ap.parse_args()
    if subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb"], check=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    inputs, data = work / f"inputs-{args.orders}", work / f"data-{args.orders}"
    if not data.exists():
        subprocess.run([args.rebuy, "--data", str(data), "demo", "--orders", str(args.orders),
                        "--inputs", str(inputs)], check=True, stdout=subprocess.DEVNULL)
    return args, work, inputs, data
