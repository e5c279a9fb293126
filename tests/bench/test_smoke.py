"""Each benchmark's measuring code at a tiny size, so `make bench` keeps working. The figures
themselves are not asserted beyond being measurements (positive, shares within 0..1)."""

import pytest

from bench.data_loading import PrepareBench, data_rows
from bench.training import bare_images_per_s, batch_wait_share, steady

TINY = {"train.epochs": 2, "data.limit": 64, "train.batch_size": 32, "model.bottleneck": "vq"}


def test_data_row_decodes_every_jpeg_and_reads_every_shard_row(workspace):
    (row,) = data_rows(count=60)  # it asserts both paths saw all 60 images
    assert row.value > 0 and row.detail["imagefolder_images_per_s"] > 0


def test_prepare_bench_decodes_every_photo_in_process(tmp_path):
    bench = PrepareBench(tmp_path, count=30)
    rate, engine = bench.images_per_s("in-process")  # it asserts all 30 train images arrived
    assert engine == "in-process" and rate > 0


@pytest.mark.parametrize("deterministic", [False, True])
def test_bare_loop_measures_every_epoch(workspace, deterministic):
    rates = bare_images_per_s(TINY, deterministic)
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
    assert steady(rates) == rates[1]


def test_batch_wait_is_a_share_of_the_step(workspace):
    share, step_s = batch_wait_share(TINY, steps=3)
    assert 0 < share < 1 and step_s > 0
