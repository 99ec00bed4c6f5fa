"""Discovery, nnU-Net reading and resampling, intensity schemes, the cache, two-view crops, bad input."""
import json

import numpy as np
import pytest
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.pretraining.data import (IntensityScheme, RankBatches, TwoViewCrops, build_cache, discover_images,
                                          preprocess_volume)
from nnunet_swin.pretraining.masking import random_block_mask
from nnunet_swin.pretraining.trainer import loss_targets

from pretraining_fixtures import write_volume


def test_ct_window_and_mr_percentile_map_to_unit_range():
    ct = IntensityScheme("CT")
    out, values = ct.apply(np.array([-1000.0, -175.0, 37.5, 250.0, 3000.0]))
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    mr = IntensityScheme("MR", mr_percentile=99.0)
    img = np.arange(1000, dtype=np.float32)
    out, values = mr.apply(img)
    assert values["low"] == 0.0 and values["high"] == pytest.approx(np.percentile(img, 99))
    assert out.min() == 0.0 and out.max() == 1.0 and (out == 1.0).sum() == 10
    with pytest.raises(UserError, match="modality"):
        IntensityScheme("PET")


def test_preprocess_resamples_with_nnunet_to_the_target_spacing(ct_folder):
    image, info = preprocess_volume(ct_folder / "c.nii.gz", (1.0, 1.0, 1.0), IntensityScheme("CT"), 16)
    assert image.shape == (40, 40, 40) and info["source_spacing"] == [2.0, 2.0, 2.0]
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    image, _ = preprocess_volume(ct_folder / "b.nii.gz", (1.0, 1.0, 2.0), IntensityScheme("CT"), 16)
    assert image.shape == (24, 48, 20)          # (z, y, x): x halved


def test_cache_is_built_once_and_reused(ct_folder, tmp_path):
    files, _ = discover_images(str(ct_folder))
    assert [f.name for f in files] == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]
    cache = tmp_path / "out" / "cache"
    entries = build_cache(files, cache, (1.0, 1.0, 1.0), IntensityScheme("CT"), 16, progress=False)
    assert len(entries) == 3 and json.loads((cache / "index.json").read_text())["settings"]["spacing"] == [1, 1, 1]
    arr = np.load(entries[0]["file"], mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.float16 and arr.shape == (40, 40, 40)
    mtime = (cache / "index.json").stat().st_mtime_ns
    again = build_cache(files, cache, (1.0, 1.0, 1.0), IntensityScheme("CT"), 16, progress=False)
    assert again == entries and (cache / "index.json").stat().st_mtime_ns == mtime
    with pytest.raises(UserError, match="other images or settings"):
        build_cache(files, cache, (2.0, 2.0, 2.0), IntensityScheme("CT"), 16, progress=False)


def test_crops_are_deterministic_per_index_and_padding_is_invalid(ct_folder, tmp_path):
    files, _ = discover_images(str(ct_folder))
    entries = build_cache(files, tmp_path / "cache", (1.0, 1.0, 1.0), IntensityScheme("CT"), 16, progress=False)
    ds = TwoViewCrops(entries, 32, samples_per_epoch=6, seed=0)
    k = next(k for k in range(60) if ds.volume_of(k) == 1)          # volume b: z = 24 < 32
    views, valid, vol, index = ds[k]
    assert vol == 1 and index == k and views.shape == (2, 1, 32, 32, 32) and valid.shape == (2, 32, 32, 32)
    assert int(valid[0].sum()) == 24 * 32 * 32
    assert torch.all(views[:, 0][~valid] == 0)
    v2, m2, _, _ = ds[k]
    assert torch.equal(views, v2) and torch.equal(valid, m2)
    # every epoch visits every volume; ranks get disjoint indices
    assert sorted(ds.volume_of(k) for k in range(6, 9)) == [0, 1, 2]
    r0 = [i for b in RankBatches(1, 3, 2, rank=0, world_size=2) for i in b]
    r1 = [i for b in RankBatches(1, 3, 2, rank=1, world_size=2) for i in b]
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(12, 24))
    assert [b for b in RankBatches(0, 3, 1, start_iteration=2)] == [[2]]


def test_padding_is_never_a_target():
    valid = torch.zeros(4, 32, 32, 32, dtype=torch.bool)
    valid[:, :20] = True                                             # the far 12 slices are padding
    token_valid = torch.nn.functional.adaptive_avg_pool3d(valid.float().unsqueeze(1), (2, 2, 2))[:, 0] >= 0.5
    for seed in range(5):
        mask = random_block_mask(4, (2, 2, 2), 0.7, generator=torch.Generator().manual_seed(seed))
        voxels, tokens = loss_targets(mask, valid, (2, 2, 2), token_valid.flatten(1))
        assert not voxels[~valid].any()
        assert not tokens[~token_valid.flatten(1)].any()
        assert voxels.sum() > 0


def _expect(folder, match, **kw):
    files, _ = discover_images(str(folder))
    with pytest.raises(UserError, match=match):
        build_cache(files, folder.parent / "out" / "cache", (1.0, 1.0, 1.0), IntensityScheme("CT"), 16,
                    progress=False, **kw)
    assert not (folder.parent / "out" / "cache").exists()


def test_bad_input_is_refused_with_the_file_named_and_nothing_written(tmp_path):
    with pytest.raises(UserError, match="no images found"):
        (tmp_path / "empty").mkdir()
        discover_images(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="does not exist"):
        discover_images(str(tmp_path / "nowhere"))
    bad = tmp_path / "bad"
    write_volume(bad / "good.nii.gz", np.zeros((32, 32, 32), np.float32))
    (bad / "broken.nii.gz").write_bytes(b"not an image")
    _expect(bad, r"broken\.nii\.gz: unreadable.*--skip-bad")
    (bad / "broken.nii.gz").unlink()
    import SimpleITK as sitk
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((64, 64), np.float32)), str(bad / "flat.nii.gz"))
    _expect(bad, r"flat\.nii\.gz: 2D image")
    (bad / "flat.nii.gz").unlink()
    write_volume(bad / "small.nii.gz", np.zeros((10, 40, 40), np.float32))
    _expect(bad, r"small\.nii\.gz: too small")


def test_skip_bad_skips_and_says_so(tmp_path):
    folder = tmp_path / "mixed"
    write_volume(folder / "good.nii.gz", np.zeros((32, 32, 32), np.float32))
    (folder / "broken.nii.gz").write_bytes(b"garbage")
    said = []
    entries = build_cache(discover_images(str(folder))[0], tmp_path / "cache", (1.0, 1.0, 1.0),
                          IntensityScheme("CT"), 16, skip_bad=True, log=said.append, progress=False)
    assert len(entries) == 1 and entries[0]["source"].endswith("good.nii.gz")
    assert len(said) == 1 and "skipped" in said[0] and "broken.nii.gz" in said[0]


def test_an_nnunet_raw_dataset_id_reads_images_and_ignores_labels(tmp_path, monkeypatch):
    root = tmp_path / "raw" / "Dataset777_Scans"
    write_volume(root / "imagesTr" / "case_000_0000.nii.gz", np.zeros((32, 32, 32), np.float32))
    write_volume(root / "imagesTs" / "case_001_0000.nii.gz", np.zeros((32, 32, 32), np.float32))
    write_volume(root / "labelsTr" / "case_000.nii.gz", np.zeros((32, 32, 32), np.uint8))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0},
                                                   "file_ending": ".nii.gz", "numTraining": 1}))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.delenv("nnUNet_preprocessed", raising=False)
    monkeypatch.delenv("nnUNet_results", raising=False)
    files, modality = discover_images(dataset_id="777")
    assert [f.name for f in files] == ["case_000_0000.nii.gz", "case_001_0000.nii.gz"] and modality == "CT"
    with pytest.raises(UserError, match="no nnU-Net raw dataset '778'"):
        discover_images(dataset_id="778")
