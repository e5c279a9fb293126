"""`ovat prepare` on a real Ray instance: the decode runs as Ray tasks and gives the same shards
as the in-process path. The sweep on the prepared tree is in test_resume.py."""

import numpy as np
import pytest

from data import prepare as preparing
from data.config import DataConfig
from data.registry import prepare, prepared_folder
from data.shards import read_manifest, read_split

pytestmark = pytest.mark.integration


def test_prepare_decodes_on_ray_with_progress_and_matches_the_in_process_path(
    prepared_tree, data_dir, tmp_path, monkeypatch
):
    root, stdout, stderr = prepared_tree
    cfg = DataConfig(dataset="imagefolder", root=str(root))
    folder = prepared_folder(cfg, data_dir)
    manifest = read_manifest(folder)
    assert manifest["decode"]["engine"] == "ray"
    assert "ovat: prepare imagefolder 32px: 115/115 images (" in stderr  # 94 + 12 + 9
    assert "img/s, 1 skipped" in stderr
    assert f"ovat: prepared: {folder} (train 93, val 12, test 9 images at 32 px)" in stdout
    assert [s["path"] for s in manifest["skipped"]] == ["train/cat/truncated.JPEG"]
    monkeypatch.setattr(preparing, "ray_is_up", lambda: False)  # Ray is up here too
    local = prepare(cfg, tmp_path)
    assert read_manifest(local)["decode"]["engine"] == "in-process"
    for split in ("train", "val", "test"):
        assert np.array_equal(read_split(folder, split), read_split(local, split))
