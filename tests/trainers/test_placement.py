"""The start-up profile's split of a worker's start into its process starting and its imports."""

import subprocess
import sys
import time

from trainers.placement import process_started_at


def test_a_process_knows_when_it_started():
    before = time.time()
    script = "import time; from trainers.placement import process_started_at as p; print(p())"
    started = float(subprocess.check_output([sys.executable, "-c", script], text=True))
    # /proc counts in clock ticks (10 ms): allow for that, not for seconds
    assert before - 0.05 <= started <= time.time()
    assert process_started_at() < before  # this test's own process started earlier
