"""Every layout is recognised from its folder structure, and a wrong root says what it expected."""

import pytest

from data.layouts import LAYOUTS, LayoutError, matching, scan
from tests.data import trees
from tests.data.trees import BUILDERS


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_layout_is_detected_and_lists_its_splits(tmp_path, name):
    BUILDERS[name](tmp_path)
    listing = scan(name, tmp_path)
    assert name in matching(tmp_path)
    assert {"train", "val"} <= set(listing.splits)
    assert all(listing.splits[s].paths for s in listing.splits)
    if listing.decoder == "files":
        split = listing.splits["train"]
        assert len(split.paths) == len(split.class_ids)
        assert all(not p.endswith(".txt") for p in split.paths)  # non-images are not listed


def test_layouts_that_differ_in_structure_do_not_match_each_other(tmp_path):
    trees.tiny_imagenet_tree(tmp_path / "tiny")
    trees.imagefolder_tree(tmp_path / "folder")
    assert matching(tmp_path / "tiny") == ["tiny-imagenet"]
    assert "imagenet" not in matching(tmp_path / "folder")  # class names are not wnids
    assert "tiny-imagenet" not in matching(tmp_path / "folder")


def test_imagenet_reads_flat_val_and_class_folder_val(tmp_path):
    trees.imagenet_tree(tmp_path / "flat", val_flat=True)
    trees.imagenet_tree(tmp_path / "folders", val_flat=False)
    flat, folders = scan("imagenet", tmp_path / "flat"), scan("imagenet", tmp_path / "folders")
    assert flat.notes["val"] == "flat" and set(flat.splits["val"].class_ids) == {-1}
    assert folders.notes["val"] == "class folders"
    assert set(folders.splits["val"].class_ids) == {0, 1, 2}
    assert len(flat.splits["test"].paths) == 5


def test_kaggle_val_solution_labels_flat_val(tmp_path):
    trees.imagenet_tree(tmp_path, val_flat=True)
    rows = [f"ILSVRC2012_val_{i + 1:08d},{trees.WNIDS[i % 3]} 1 2 3 4" for i in range(12)]
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n" + "\n".join(rows) + "\n"
    )
    listing = scan("imagenet", tmp_path)
    assert listing.splits["val"].class_ids == tuple(i % 3 for i in range(12))


def test_tiny_imagenet_val_labels_come_from_its_annotations(tmp_path):
    trees.tiny_imagenet_tree(tmp_path)
    listing = scan("tiny-imagenet", tmp_path)
    assert listing.splits["val"].class_ids == tuple(i % 3 for i in range(9))


def test_file_list_checksum_changes_when_a_file_is_added(tmp_path):
    trees.imagefolder_tree(tmp_path)
    before = scan("imagefolder", tmp_path).checksum
    assert scan("imagefolder", tmp_path).checksum == before
    trees.save(tmp_path / "val" / "dog" / "extra.jpg", trees.tiles(1)[0])
    assert scan("imagefolder", tmp_path).checksum != before


def test_missing_empty_and_unset_roots_name_the_path_and_the_layout(tmp_path):
    with pytest.raises(LayoutError, match=f"no folder {tmp_path / 'absent'}.*train/<wnid>"):
        scan("imagenet", tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match=f"{tmp_path / 'empty'} is empty; imagefolder expects"):
        scan("imagefolder", tmp_path / "empty")
    with pytest.raises(LayoutError, match=r"needs data.root \(ROOT=<path>\): a folder with train"):
        scan("tiny-imagenet", "")


def test_a_root_in_another_layout_says_which_one_it_looks_like(tmp_path):
    trees.tiny_imagenet_tree(tmp_path)
    with pytest.raises(LayoutError) as error:
        scan("imagenet", tmp_path)
    message = str(error.value)
    assert f"{tmp_path} does not have the imagenet layout: no images in train/<wnid>/" in message
    assert LAYOUTS["imagenet"].expects in message
    assert "it looks like tiny-imagenet" in message
