import numpy as np
import pytest

from data import sample
from data.config import DataConfig
from data.registry import UnknownDataset, prepare
from data.shards import read_manifest, read_split


@pytest.fixture(scope="module")
def built():
    return sample.build(32)


def test_sample_has_thousands_of_real_tiles(built):
    splits, source = built
    assert len(splits["train"].images) > 2000
    assert len(splits["val"].images) > 250 and len(splits["test"].images) > 250
    assert len(source["photos"]) >= 15
    assert splits["train"].images.dtype == np.uint8
    assert splits["train"].images.shape[1:] == (32, 32, 3)


def test_splits_do_not_overlap(built):
    splits, _ = built
    labels = {name: set(split.sources) for name, split in splits.items()}
    assert not labels["train"] & labels["val"]
    assert not labels["train"] & labels["test"]
    assert not labels["val"] & labels["test"]
    # tiles sit on a grid of the tile size, so distinct labels never share a pixel
    for label in list(labels["test"])[:50]:
        y, x = map(int, label.split("@")[1].split(","))
        assert y % 32 == 0 and x % 32 == 0


def test_prepared_shards_round_trip_and_are_reused(built, tmp_path):
    folder = prepare(DataConfig(), tmp_path)
    manifest = read_manifest(folder)
    splits, _ = built
    assert manifest["splits"]["test"]["count"] == len(splits["test"].images)
    assert manifest["resolution"] == 32 and manifest["checksum"]
    test = read_split(folder, "test")
    assert test.shape == (len(splits["test"].images), 3, 32, 32)
    assert np.array_equal(test, splits["test"].images.transpose(0, 3, 1, 2))
    assert read_split(folder, "val", limit=10).shape[0] == 10
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert prepare(DataConfig(), tmp_path) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging left behind


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(
        UnknownDataset,
        match="valid: imagefolder, imagenet, .*pysource, sample, text, tiny-imagenet",
    ):
        prepare(DataConfig(dataset="imagenot"), tmp_path)


def test_missing_split_names_what_is_prepared(tmp_path):
    folder = prepare(DataConfig(), tmp_path)
    with pytest.raises(FileNotFoundError, match="prepared: \\['test', 'train', 'val'\\]"):
        read_split(folder, "holdout")


@pytest.mark.parametrize(
    ("bad", "match"),
    [({"mask_ratio": 1.5}, "mask_ratio"), ({"resolution": 36, "mask_patch": 5}, "multiple")],
)
def test_bad_data_values_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**bad)


def test_prepared_data_is_named_and_digested_for_mlflow(tmp_path):
    from data.registry import identity

    prepare(DataConfig(), tmp_path)
    prepare(DataConfig(resolution=16), tmp_path)
    first = identity(DataConfig(), tmp_path)
    assert first["name"] == "sample-32px" and len(first["digest"]) == 16
    assert identity(DataConfig(), tmp_path) == first  # the same data: the same identity
    other = identity(DataConfig(resolution=16), tmp_path)
    assert other["digest"] != first["digest"] and other["name"] == "sample-16px"
    assert identity(DataConfig(limit=8), tmp_path)["name"] == "sample-32px-limit8"
