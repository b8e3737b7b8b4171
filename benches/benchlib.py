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
