"""`make bench-gpu`'s script end to end on CPU at a tiny size (its figures mean nothing here;
there is no GPU on these machines): every code path it takes on a GPU, bar CUDA itself and the
streaming section, which needs Ray (tests/integration/test_bench_anchors.py)."""

from bench import gpu


def test_bench_gpu_runs_every_section_on_cpu(capsys):
    gpu.main(["--device", "cpu", "--smoke", "--seconds", "0.3", "--packs", "1", "--stream", "0"])
    out = capsys.readouterr().out
    assert "fp32 eager" in out and "bf16+channels_last+compile" in out
    assert "speed-up of the fast path" in out
    assert "batch wait" in out and "1 packed trial(s)" in out
