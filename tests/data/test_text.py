import numpy as np
import pytest

from data.config import DataConfig
from data.layouts import LayoutError
from data.registry import images_to_load, is_prepared, prepare
from data.shards import read_manifest, read_split
from data.text import split_of, windows

CONTEXT = 15  # windows of 16 bytes


def corpus(root, files: int = 40, size: int = 400):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        line = f"def f{i}(x):\n    return x * {i}  # é\n"
        (root / f"m{i:02d}.py").write_text((line * (size // len(line) + 1))[:size])
    return root


def config(root, **extra) -> DataConfig:
    return DataConfig(dataset="text", root=str(root), context=CONTEXT, **extra)


def test_binary_and_non_utf8_files_are_listed_and_skipped(tmp_path):
    root = corpus(tmp_path / "src")
    (root / "blob.bin").write_bytes(b"PK\x03\x04\x00\x00binary")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    folder = prepare(config(root), tmp_path / "data")
    skipped = read_manifest(folder)["skipped"]
    assert skipped == [
        {"path": "blob.bin", "reason": "binary (holds a NUL byte)"},
        {"path": "latin1.txt", "reason": "not UTF-8 (byte 3)"},
    ]
    assert read_manifest(folder)["files"] == 40


def test_an_empty_folder_is_one_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="no UTF-8 text file under .*empty: 0 files"):
        prepare(config(tmp_path / "empty"), tmp_path / "data")
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "a.bin").write_bytes(b"\0\1\2")
    with pytest.raises(LayoutError, match="1 files, 1 skipped .a.bin: binary"):
        prepare(config(tmp_path / "binary"), tmp_path / "data")
    with pytest.raises(LayoutError, match="not a folder"):
        prepare(config(tmp_path / "missing"), tmp_path / "data")


def test_a_corpus_too_small_for_a_window_in_every_split_says_so(tmp_path):
    root = corpus(tmp_path / "src", files=2, size=20)
    with pytest.raises(LayoutError, match="too small: its .* split holds less than one window"):
        prepare(config(root), tmp_path / "data")


def test_windows_are_the_joined_files_cut_without_overlap():
    texts = [("a.py", b"0123456789"), ("b.py", b"abcdefghij")]
    split = windows(texts, context=5)
    assert split.images.shape == (3, 6)
    assert bytes(split.images.reshape(-1)) == b"0123456789abcdefgh"  # the tail is dropped
    assert split.sources == ["a.py@0", "a.py@6", "b.py@2"]
    assert split.class_ids.tolist() == [0, 0, 1]


def test_files_go_to_splits_by_a_hash_of_their_path_alone():
    keys = [f"pkg/m{i}.py" for i in range(2000)]
    splits = [split_of(0, key) for key in keys]
    shares = {name: splits.count(name) / len(keys) for name in ("train", "val", "test")}
    assert shares["val"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)
    assert splits == [split_of(0, key) for key in keys]  # the same on every call
    assert splits != [split_of(1, key) for key in keys]  # another split seed, another cut


def test_prepared_windows_read_back_as_the_fixed_evaluation_windows(tmp_path):
    root = corpus(tmp_path / "src")
    cfg = config(root, limit=5)
    folder = prepare(cfg, tmp_path / "data")
    assert is_prepared(cfg, tmp_path / "data")
    test = read_split(folder, "test", limit=5)
    assert test.shape == (5, CONTEXT + 1) and test.dtype == np.uint8
    assert np.array_equal(test, read_split(folder, "test", limit=5))  # every trial, every value
    text = bytes(read_split(folder, "train").reshape(-1)).decode()
    assert "return x *" in text and "é" in text
    counts = {n: e["count"] for n, e in read_manifest(folder)["splits"].items()}
    assert images_to_load(cfg, tmp_path / "data", ("train",)) == min(5, counts["train"])


def test_a_changed_corpus_is_prepared_again(tmp_path, capsys):
    root = corpus(tmp_path / "src")
    cfg = config(root)
    prepare(cfg, tmp_path / "data")
    (root / "m00.py").write_text("print('changed')\n" * 40)
    assert not is_prepared(cfg, tmp_path / "data")
    prepare(cfg, tmp_path / "data")
    assert "changed since it was prepared" in capsys.readouterr().out
    assert is_prepared(cfg, tmp_path / "data")


def test_a_streamed_batch_decodes_to_the_same_windows_as_the_in_memory_split(tmp_path):
    import pyarrow.parquet as pq

    from data.registry import layout
    from data.shards import examples, shard_paths

    cfg = config(corpus(tmp_path / "src"))
    folder = prepare(cfg, tmp_path / "data")
    table = pq.read_table(shard_paths(folder, "train")[0])
    column = table.column("image").combine_chunks()
    tail = column.slice(3)  # a batch that starts inside Arrow's buffer, as a stream's do
    assert np.array_equal(examples(tail, layout(cfg)), read_split(folder, "train")[3:])
