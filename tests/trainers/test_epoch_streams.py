"""The streamed path's look-ahead (trainers.streaming.EpochStreams) without Ray: the next
epoch opens while this one trains, and closing ends the thread however the trial ended."""

import threading

import pytest
import torch

from trainers.streaming import EpochStreams


def look_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ovat-next-epoch")]


def test_epochs_arrive_in_order_and_closing_ends_a_blocked_look_ahead():
    release, opened = threading.Event(), []

    def open_epoch(epoch):
        opened.append(epoch)

        def rows():
            if epoch == 1:
                release.wait(30)  # the next epoch's first batch is slow to come
            yield torch.full((2,), float(epoch))
            yield torch.full((2,), float(epoch) + 0.5)

        return rows()

    streams = EpochStreams(open_epoch, epochs=3)
    assert [b.tolist() for b in streams.batches(0)] == [[0.0, 0.0], [0.5, 0.5]]
    assert opened == [0, 1]  # epoch 1 opened while epoch 0 trained
    streams.close()  # the trial ends here (diverged): the prefetch is still waiting
    with pytest.raises(RuntimeError, match="shutdown"):
        streams.batches(1)
    release.set()
    for thread in look_ahead_threads():
        thread.join(30)
    assert not look_ahead_threads()
