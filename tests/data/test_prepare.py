"""Preparing each on-disk variant (in-process; the Ray path is in tests/integration/test_prepare.py):
counts, quirky files, the split protocols, reuse, resume after an interruption, and errors."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data import prepare as preparing
from data.config import DataConfig
from data.decode import crop
from data.layouts import LayoutError
from data.registry import images_to_load, prepare, prepared_folder
from data.row_groups import epoch_parts, read_part, split_parts
from data.shards import (
    read_column,
    read_manifest,
    read_split,
    subset_rows,
)
from tests.data import trees
from tests.data.trees import BUILDERS


def prepared(name: str, root, data_dir, res: int = 16, **settings):
    cfg = DataConfig(dataset=name, root=str(root), resolution=res, **settings)
    folder = prepare(cfg, data_dir)
    return folder, read_manifest(folder)


def counts(manifest: dict) -> dict[str, int]:
    return {split: entry["count"] for split, entry in manifest["splits"].items()}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_variant_prepares_all_three_splits(tmp_path, name):
    BUILDERS[name](tmp_path / "src")
    folder, manifest = prepared(name, tmp_path / "src", tmp_path / "data")
    for split, count in counts(manifest).items():
        images = read_split(folder, split)
        assert images.shape == (count, 3, 16, 16) and count > 0
        assert len(read_column(folder, split, "source")) == count
    assert manifest["source"] == str((tmp_path / "src").resolve())
    assert manifest["protocol"] in ("holdout", "official")


def test_official_protocol_counts_follow_the_tree(tmp_path):
    trees.imagefolder_tree(tmp_path / "src", per_class=20)
    _, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    # 3 classes x 20 + 4 quirky files in train/cat, one of them truncated; 3 x 4 val; 3 x 3 test
    assert counts(manifest) == {"train": 63, "val": 12, "test": 9}
    assert manifest["source_images"] == 64 + 12 + 9


def test_holdout_protocol_cuts_train_80_20_and_tests_on_official_val(tmp_path):
    trees.imagenet_tree(tmp_path / "src", per_class=100)
    folder, manifest = prepared("imagenet", tmp_path / "src", tmp_path / "data")
    n = counts(manifest)
    assert n["train"] + n["val"] == 3 * 100 + 4 - 1  # every usable train image, once
    assert 0.14 < n["val"] / (n["train"] + n["val"]) < 0.26
    assert n["test"] == 12  # the flat official val; the official test/ is not used
    train, val = (set(read_column(folder, s, "source")) for s in ("train", "val"))
    assert not train & val and all(s.startswith("train/") for s in train | val)
    assert all(s.startswith("val/") for s in read_column(folder, "test", "source"))


def test_holdout_cut_is_stable_across_preparations_and_changes_with_its_seed(tmp_path):
    trees.imagenet_tree(tmp_path / "src")
    first, _ = prepared("imagenet", tmp_path / "src", tmp_path / "a")
    again, _ = prepared("imagenet", tmp_path / "src", tmp_path / "b")
    other, _ = prepared("imagenet", tmp_path / "src", tmp_path / "c", split_seed=1)
    assert read_column(first, "val", "source") == read_column(again, "val", "source")
    assert read_column(first, "val", "source") != read_column(other, "val", "source")
    assert np.array_equal(read_split(first, "train"), read_split(again, "train"))


def test_official_protocol_without_test_holds_out_a_slice_of_train(tmp_path):
    trees.imagefolder_tree(tmp_path / "src", per_class=40, test=False)
    folder, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    n = counts(manifest)
    assert n["val"] == 12 and n["train"] + n["test"] == 3 * 40 + 3
    assert 0 < n["test"] < 0.2 * (n["train"] + n["test"])
    train, test = (set(read_column(folder, s, "source")) for s in ("train", "test"))
    assert not train & test and all(s.startswith("train/") for s in test)
    assert "held out as test" in manifest["protocol_detail"]


def test_protocol_override_applies_holdout_to_an_imagefolder(tmp_path):
    trees.imagefolder_tree(tmp_path / "src")
    folder, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "d", protocol="holdout")
    assert manifest["protocol"] == "holdout"
    assert all(s.startswith("train/") for s in read_column(folder, "val", "source"))
    assert counts(manifest)["test"] == 12  # official val


def row_of(folder, name: str) -> np.ndarray:
    sources = read_column(folder, "train", "source")
    matches = [i for i, s in enumerate(sources) if s.endswith("/" + name)]
    assert len(matches) == 1, (name, matches)
    return read_split(folder, "train")[matches[0]].transpose(1, 2, 0).astype(int)


def test_quirky_files_come_out_as_rgb_and_the_truncated_one_is_listed(tmp_path):
    originals = trees.imagefolder_tree(tmp_path / "src")
    folder, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "data", res=32)
    expected = {
        name: crop(Image.fromarray(pixels), 32).astype(int) for name, pixels in originals.items()
    }
    # a PNG named .JPEG is read by content, losslessly: exactly the resized original
    assert np.array_equal(row_of(folder, "png-named.JPEG"), expected["png-named.JPEG"])
    # CMYK: the colours survive the conversion (JPEG loss aside)
    cmyk = row_of(folder, "cmyk.JPEG")
    assert np.abs(cmyk - expected["cmyk.JPEG"]).mean() < 8
    assert np.abs(cmyk - cmyk[..., :1]).mean() > 4  # still in colour
    # grayscale: three equal channels, matching the original's luminance
    gray = row_of(folder, "gray.JPEG")
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    luminance = np.asarray(Image.fromarray(originals["gray.JPEG"]).convert("L"))
    assert np.abs(gray[..., 0] - crop(Image.fromarray(luminance), 32)[..., 0]).mean() < 4
    skipped = manifest["skipped"]
    assert [s["path"] for s in skipped] == ["train/cat/truncated.JPEG"]
    assert "truncated" in skipped[0]["reason"]
    assert "train/cat/notes.txt" not in read_column(folder, "train", "source")


def test_resize_is_torchvision_resize_then_centre_crop(tmp_path):
    from torchvision import transforms

    photo = trees.tiles(2, side=96)[0]  # 96 x 72: not square, so the crop matters
    assert photo.shape[:2] == (72, 96)
    reference = transforms.Compose([transforms.Resize(24), transforms.CenterCrop(24)])
    image = Image.fromarray(photo)
    assert np.array_equal(crop(image.copy(), 24), np.asarray(reference(image)))


def test_second_prepare_reuses_the_shards_and_a_changed_tree_prepares_again(tmp_path):
    trees.imagefolder_tree(tmp_path / "src")
    folder, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again, _ = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    assert again == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    trees.save(tmp_path / "src" / "val" / "dog" / "extra.jpg", trees.tiles(1)[0])
    _, changed = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    assert counts(changed)["val"] == counts(manifest)["val"] + 1


def test_prepared_folders_differ_by_root_and_protocol(tmp_path):
    cfg = DataConfig(dataset="imagenet", root=str(tmp_path / "a"), resolution=16)
    folders = {
        prepared_folder(cfg, tmp_path),
        prepared_folder(
            DataConfig(dataset="imagenet", root=str(tmp_path / "b"), resolution=16), tmp_path
        ),
        prepared_folder(
            DataConfig(
                dataset="imagenet", root=str(tmp_path / "a"), resolution=16, protocol="official"
            ),
            tmp_path,
        ),
    }
    assert len(folders) == 3


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, parts: int):
    real, written = preparing.write_part, []

    def write_part(*args):
        if len(written) == parts:
            raise Interrupted
        real(*args)
        written.append(args[1].name)

    monkeypatch.setattr(preparing, "write_part", write_part)
    return written


def test_an_interrupted_preparation_publishes_nothing_and_resumes(tmp_path, monkeypatch, capsys):
    trees.imagefolder_tree(tmp_path / "src")
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path / "src"), resolution=16)
    with monkeypatch.context() as patch:
        written = interrupt_after(patch, 1)
        with pytest.raises(Interrupted):
            prepare(cfg, tmp_path / "data")
    folder = prepared_folder(cfg, tmp_path / "data")
    assert not folder.exists()  # no manifest claims shards that are not there
    staging = folder.with_name(f".{folder.name}.partial")
    assert sorted(p.name for p in staging.glob("part-*.json")) == [f"part-{written[0]}.json"]
    capsys.readouterr()
    resumed = prepare(cfg, tmp_path / "data")
    assert "resuming: 1 of 3 parts already written" in capsys.readouterr().err
    clean, _ = prepared("imagefolder", tmp_path / "src", tmp_path / "clean")
    for split in ("train", "val", "test"):
        assert np.array_equal(read_split(resumed, split), read_split(clean, split))
    assert not staging.exists()


def test_a_partial_preparation_of_other_files_is_discarded(tmp_path, monkeypatch, capsys):
    trees.imagefolder_tree(tmp_path / "src")
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path / "src"), resolution=16)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        with pytest.raises(Interrupted):
            prepare(cfg, tmp_path / "data")
    trees.save(tmp_path / "src" / "train" / "dog" / "extra.jpg", trees.tiles(1)[0])
    capsys.readouterr()
    folder = prepare(cfg, tmp_path / "data")
    assert "resuming" not in capsys.readouterr().err
    assert "train/dog/extra.jpg" in read_column(folder, "train", "source")


def test_downsampled_rows_are_the_batch_pixels_in_rgb_order(tmp_path):
    trees.downsampled_tree(tmp_path / "src", 32, npz=False)
    folder, _ = prepared("imagenet32", tmp_path / "src", tmp_path / "data", res=32)
    photos = [np.asarray(Image.fromarray(t).resize((32, 32))) for t in trees.tiles(30)]
    sources = read_column(folder, "train", "source")
    images = read_split(folder, "train")
    for source, image in zip(sources[:5], images[:5], strict=True):
        row = int(source.split("#")[1])
        assert np.array_equal(image.transpose(1, 2, 0), photos[row])
    labels = read_column(folder, "test", "class_id")
    assert min(labels) >= 0  # 1-based in the files, 0-based in the shards


def test_downsampled_resolution_is_resized_from_the_native_side(tmp_path):
    trees.downsampled_tree(tmp_path / "src", 64, npz=True)
    folder, _ = prepared("imagenet64", tmp_path / "src", tmp_path / "data", res=32)
    assert read_split(folder, "val").shape[1:] == (3, 32, 32)


def test_downsampled_data_of_the_other_size_names_the_right_variant(tmp_path):
    trees.downsampled_tree(tmp_path / "src", 64, npz=False)
    with pytest.raises(LayoutError, match="64x64 images, not 32x32: DATASET=imagenet64"):
        prepared("imagenet32", tmp_path / "src", tmp_path / "data")


def test_a_split_with_no_readable_image_is_an_error_not_an_empty_split(tmp_path):
    trees.imagefolder_tree(tmp_path / "src", test=False)
    for path in (tmp_path / "src" / "val").rglob("*.jpg"):
        path.write_bytes(b"not a jpeg")
    # 12 unreadable val files and the truncated train file
    with pytest.raises(LayoutError, match="no usable images for split val .*13 skipped"):
        prepared("imagefolder", tmp_path / "src", tmp_path / "data")


def test_protocol_must_be_known():
    with pytest.raises(ValueError, match="data.protocol must be one of holdout, official.*'80/20'"):
        DataConfig(protocol="80/20")


def test_many_parts_chunks_and_shards_give_the_same_split_as_one(tmp_path, monkeypatch):
    trees.imagefolder_tree(tmp_path / "src", per_class=20)
    whole, _ = prepared("imagefolder", tmp_path / "src", tmp_path / "whole")
    image_bytes = 16 * 16 * 3
    monkeypatch.setattr(preparing, "CHUNK_FILES", 8)  # tasks of 8 files
    monkeypatch.setattr(preparing, "SHARD_BYTES", 20 * image_bytes)  # parts of 20 files
    monkeypatch.setattr("data.shards.SHARD_BYTES", 6 * image_bytes)  # shards of 6 images
    split_up, manifest = prepared("imagefolder", tmp_path / "src", tmp_path / "split")
    assert manifest["decode"]["parts"] == 4 + 1 + 1  # 64 train files in parts of 20
    assert len(manifest["splits"]["train"]["shards"]) > 10
    for split in ("train", "val", "test"):
        assert np.array_equal(read_split(whole, split), read_split(split_up, split))
        assert read_column(whole, split, "source") == read_column(split_up, split, "source")
    rows = subset_rows(read_manifest(whole)["splits"]["train"]["count"], 25, "train")
    assert np.array_equal(read_split(split_up, "train", limit=25), read_split(whole, "train")[rows])


def test_a_task_that_cannot_see_the_source_fails_instead_of_skipping_its_files(tmp_path):
    from data.decode import decode_files
    from data.splits import Splitter

    with pytest.raises(LayoutError, match=f"{tmp_path / 'elsewhere'} is not visible on node"):
        decode_files(
            str(tmp_path / "elsewhere"), ["a.jpg"], [0], 0, "train", 16, Splitter("official")
        )


def test_squash_is_torchvision_resize_to_a_square_on_jpegs_and_pngs(tmp_path):
    """The group's `Resize((256, 256))`: no crop, no draft decode, pixel for pixel."""
    from torchvision import transforms

    from data.decode import read_image

    photo = trees.tiles(2, side=96)[0]  # 96 x 72: squashing changes the aspect ratio
    reference = transforms.Resize((24, 24))
    for name in ("photo.jpg", "photo.png"):
        Image.fromarray(photo).save(tmp_path / name)
        with Image.open(tmp_path / name) as image:
            expected = np.asarray(reference(image.convert("RGB")))
        assert np.array_equal(read_image(tmp_path / name, 24, "squash"), expected), name


def test_random_split_is_the_groups_torch_random_split_over_imagefolder_order(tmp_path):
    """torchvision's ImageFolder lists train/; random_split(ds, [int(0.8 n), n - int(0.8 n)],
    generator=torch.Generator().manual_seed(1337)) picks val: the prepared val is that set."""
    import torch
    from torchvision.datasets import ImageFolder

    trees.imagenet_tree(tmp_path / "src", per_class=30, val_flat=False)
    folder, manifest = prepared(
        "imagenet", tmp_path / "src", tmp_path / "data", protocol="random-split", split_seed=1337
    )
    listed = ImageFolder(str(tmp_path / "src" / "train")).samples
    n = len(listed)
    _, theirs = torch.utils.data.random_split(
        range(n), [int(n * 0.8), n - int(n * 0.8)], generator=torch.Generator().manual_seed(1337)
    )
    expected = {
        f"train/{Path(listed[i][0]).relative_to(tmp_path / 'src' / 'train')}"
        for i in theirs.indices
    }
    skipped = {entry["path"] for entry in manifest["skipped"]}
    assert set(read_column(folder, "val", "source")) == expected - skipped
    assert counts(manifest)["val"] + counts(manifest)["train"] == n - len(skipped)
    assert all(s.startswith("val/") for s in read_column(folder, "test", "source"))
    assert "random_split" in manifest["protocol_detail"] and "1337" in manifest["protocol_detail"]


def test_random_split_refuses_array_batches(tmp_path):
    BUILDERS["imagenet32"](tmp_path / "src")
    with pytest.raises(LayoutError, match="random-split needs one file per image"):
        prepared("imagenet32", tmp_path / "src", tmp_path / "data", protocol="random-split")


def test_a_limited_split_is_a_seeded_subset_spread_over_every_class(tmp_path):
    trees.imagefolder_tree(tmp_path / "src", per_class=20)  # train: cat, dog, fish in order
    folder, _ = prepared("imagefolder", tmp_path / "src", tmp_path / "data")
    classes = read_column(folder, "train", "class_id")
    rows = subset_rows(len(classes), 12, "train", seed=0)
    assert len(rows) == 12 and list(rows) == sorted(set(rows))
    assert {classes[i] for i in rows} == {0, 1, 2}  # the first 12 rows would all be cats
    assert {classes[i] for i in range(12)} == {0}
    again = subset_rows(len(classes), 12, "train", seed=0)
    assert np.array_equal(rows, again) and not np.array_equal(
        rows, subset_rows(len(classes), 12, "train", seed=1)
    )
    assert np.array_equal(read_split(folder, "train", limit=12), read_split(folder, "train")[rows])


def streamed_sources(folder: Path, limit: int, seed: int) -> list[str]:
    """The sources a one-worker stream of the train split reads in an epoch with `data.limit`
    (the row groups and the rows of each that a streamed trial reads)."""
    parts = epoch_parts(split_parts(folder, "train", limit, seed), order_seed=5, rank=0, world=1)
    return [s for part in parts for s in read_part(part, ["source"])["source"].to_pylist()]


@pytest.mark.parametrize("name", ["imagenet32", "imagefolder"])
def test_streamed_and_in_memory_limits_keep_the_same_rows(tmp_path, name):
    # imagenet32's tree has two batch files of 30 rows: before format 3 each row's index was its
    # row in its file, so the stream kept every row of either file whose row was chosen
    BUILDERS[name](tmp_path / "src")
    folder, _ = prepared(name, tmp_path / "src", tmp_path / "data")
    sources = read_column(folder, "train", "source")
    in_memory = [sources[row] for row in subset_rows(len(sources), 10, "train", 3)]
    assert sorted(streamed_sources(folder, 10, 3)) == sorted(in_memory)


def test_a_batch_layout_of_an_older_format_is_prepared_again_and_never_streamed(tmp_path, capsys):
    trees.downsampled_tree(tmp_path / "src", 32, npz=False)
    folder, manifest = prepared("imagenet32", tmp_path / "src", tmp_path / "data")
    # format 2 as it was: the index restarting at 0 in every batch file
    old = {**manifest, "format": 2}
    (folder / "manifest.json").write_text(json.dumps(old))
    for path in sorted(folder.glob("train-*.parquet")):
        table = pq.read_table(path)
        rows = [int(s.split("#")[1]) for s in table["source"].to_pylist()]
        table = table.set_column(0, "index", pa.array(rows, pa.int64()))
        pq.write_table(table, path)
    # the stream chooses rows by position, as the in-memory path does: the old index is not read
    sources = read_column(folder, "train", "source")
    in_memory = [sources[row] for row in subset_rows(len(sources), 10, "train", 0)]
    assert sorted(streamed_sources(folder, 10, 0)) == sorted(in_memory)
    again, manifest = prepared("imagenet32", tmp_path / "src", tmp_path / "data")
    assert "prepared by an older ovat (format 2); preparing again" in capsys.readouterr().out
    assert again == folder and manifest["format"] == 3
    assert len(streamed_sources(folder, 10, 0)) == 10


@pytest.mark.parametrize("name, npz", [("imagenet32", False), ("imagenet64", True)])
def test_an_unprepared_batch_layout_is_counted_from_its_files(tmp_path, name, npz):
    # Before, 0 until prepared: `data.stream=auto` chose memory and the object-store guard
    # passed, then the whole train split went into the object store.
    trees.downsampled_tree(tmp_path / "src", int(name[-2:]), npz=npz)  # 2 batches of 30 + val
    cfg = DataConfig(dataset=name, root=str(tmp_path / "src"), resolution=16)
    counted = images_to_load(cfg, tmp_path / "data", ("train",))
    assert not (tmp_path / "data").exists()  # counted without preparing
    assert counted == 60 if npz else 60 <= counted <= 62  # a pickle's labels: an upper bound
    assert images_to_load(cfg, tmp_path / "data") == counted + 30  # and the val batch
    prepare(cfg, tmp_path / "data")
    assert 0 < images_to_load(cfg, tmp_path / "data", ("train",)) < counted  # holdout cut val
