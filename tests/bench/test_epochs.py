"""`make bench-epochs`: the ranking's movement between epochs and a real (tiny) training curve."""

import io

import pytest
from PIL import Image

from bench import epochs
from trainers.presets import PRESETS


def curves(losses: dict[str, list[float]]) -> list[epochs.Curve]:
    return [epochs.Curve(v, val_loss=x, seconds=[1.0] * len(x)) for v, x in losses.items()]


@pytest.mark.parametrize(
    ("before", "after", "flips"),
    [
        (["a", "b", "c"], ["a", "b", "c"], 0),
        (["a", "b", "c"], ["b", "a", "c"], 1),
        (["a", "b", "c"], ["c", "b", "a"], 3),  # every pair
        (["a", "b", "c", "d"], ["b", "c", "d", "a"], 3),  # a passed by each of the others
    ],
)
def test_moved_counts_the_pairs_whose_order_flipped(before, after, flips):
    assert epochs.moved(before, after) == flips


def test_the_table_ranks_each_epoch_and_says_how_far_it_moved():
    found = curves({"vq": [0.3, 0.2, 0.1], "ffn": [0.2, 0.25, 0.15], "id": [0.1, 0.3, 0.2]})
    lines = epochs.table(found, 3).splitlines()
    assert lines[0].startswith("| epoch | s / epoch | vq | ffn | id | best three |")
    first, second, third = (line.split(" | ") for line in lines[2:])
    assert first[5] == "id > ffn > vq" and first[6] == "" and first[7] == "3 |"
    assert second[5] == "vq > ffn > id" and second[6] == "3" and second[7] == "0 |"
    assert third[5] == "vq > ffn > id" and third[6] == "0"


def test_a_value_trains_and_keeps_its_val_curve_and_pictures(tmp_path):
    overrides = {**PRESETS["tiny"], "data.limit": 64}
    curve = epochs.train_value(("softvq", overrides, 2))
    assert curve.value == "softvq" and len(curve.val_loss) == len(curve.seconds) == 2
    assert all(0 < x < 1 for x in curve.val_loss) and all(s > 0 for s in curve.seconds)
    assert sorted(curve.pictures) == [1, 2]
    grid = Image.open(io.BytesIO(curve.pictures[2]))
    path = epochs.picture(curve, tmp_path / "epochs.png")
    made = Image.open(path)
    assert made.width > grid.width and made.height == grid.height // 3 * 4  # 2 + 2 epochs


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--procs", "0"]])
def test_no_epochs_or_no_processes_is_refused_with_the_values_given(args, capsys):
    with pytest.raises(SystemExit) as ended:
        epochs.main(args)
    assert ended.value.code == 2
    assert "--epochs and --procs must be >= 1, got" in capsys.readouterr().err
