"""Pathfinder generator: deterministic, balanced, labels agree with a connected-components check."""

from __future__ import annotations

import numpy as np
import pytest

from pyramid_bert.data.lra import load_lra_task, pathfinder_task
from pyramid_bert.data.lra.pathfinder import GENERATOR_VERSION, INK, generate, markers_joined
from pyramid_bert.errors import ConfigError


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    return generate(200, seed=3)


def _canvas(size: int = 16) -> np.ndarray:
    return np.zeros((size, size), dtype=np.uint8)


def _marker(image: np.ndarray, r: int, c: int) -> None:
    image[r - 1 : r + 2, c - 1 : c + 2] = INK


def test_generate_is_deterministic_by_seed() -> None:
    first_images, first_labels = generate(24, seed=7)
    again_images, again_labels = generate(24, seed=7)
    other_images, _ = generate(24, seed=8)
    assert np.array_equal(first_images, again_images) and np.array_equal(first_labels, again_labels)
    assert not np.array_equal(first_images, other_images)


def test_images_of_a_seed_are_pinned_by_generator_version() -> None:
    # Cached datasets are keyed by GENERATOR_VERSION: a change to the drawing must bump it (and this digest).
    import hashlib

    images, labels = generate(16, seed=0)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert (GENERATOR_VERSION, digest) == (2, "fac9f646b5f0ba6face38bdd56d63e064e78c1a06708249e2f7ff78a16c571fa")


def test_output_does_not_depend_on_the_number_of_workers() -> None:
    serial = generate(12, seed=5, workers=1)
    parallel = generate(12, seed=5, workers=2)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])


@pytest.mark.parametrize("n", [1, 2, 31])
def test_labels_are_balanced(n: int) -> None:
    _, labels = generate(n, seed=1)
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=2).tolist() == [n // 2, n - n // 2]


def test_labels_are_balanced_and_shuffled(sample) -> None:
    _, labels = sample
    assert np.bincount(labels).tolist() == [100, 100]
    assert 0 < labels[:100].sum() < 100


def test_images_have_the_documented_shape_and_grey_levels(sample) -> None:
    images, _ = sample
    assert images.shape == (200, 32, 32) and images.dtype == np.uint8
    assert set(np.unique(images).tolist()) == {0, INK}
    assert not images[:, 0, :].any() and not images[:, :, -1].any()  # 1-pixel empty border


def test_every_label_agrees_with_connected_components(sample) -> None:
    images, labels = sample
    joined = np.array([markers_joined(image) for image in images])
    assert np.array_equal(joined.astype(np.int64), labels)


def test_both_classes_hold_the_same_amount_of_ink(sample) -> None:
    images, labels = sample
    ink = (images > 0).sum(axis=(1, 2))
    positives, negatives = ink[labels == 1].mean(), ink[labels == 0].mean()
    assert abs(positives - negatives) < 0.1 * negatives


def test_marker_distance_does_not_tell_the_label() -> None:
    from scipy import ndimage

    images, labels = generate(800, seed=4, num_distractors=0)
    distances = []
    for image in images:
        centres = np.argwhere(ndimage.binary_erosion(image > 0, structure=np.ones((3, 3), dtype=bool)))
        distances.append(np.abs(centres[0] - centres[1]).max())
    distances = np.array(distances)
    # Standard error of the difference is about 0.45 here; without matching it was about 3.3 pixels.
    assert abs(distances[labels == 1].mean() - distances[labels == 0].mean()) < 1.5
    assert distances.min() >= 5


@pytest.mark.parametrize(("contour_length", "paddle_length"), [(6, 2), (14, 2), (9, 3)])
def test_two_contours_of_the_given_length_and_two_markers(contour_length: int, paddle_length: int) -> None:
    images, _ = generate(20, seed=2, contour_length=contour_length, paddle_length=paddle_length, num_distractors=0)
    ink_per_image = (images > 0).sum(axis=(1, 2))
    assert (ink_per_image == 2 * contour_length * paddle_length + 2 * 9).all()


def test_check_links_dashes_one_empty_pixel_apart() -> None:
    image = _canvas()
    _marker(image, 5, 3)
    image[5, 6:8] = INK  # dash, one empty pixel after the marker's edge (column 4, gap at 5)
    image[5, 9:11] = INK  # next dash, one empty pixel after
    _marker(image, 5, 13)  # edge at 12, gap at 11
    assert markers_joined(image)


def test_check_does_not_link_across_two_empty_pixels() -> None:
    image = _canvas()
    _marker(image, 5, 3)
    image[5, 6:8] = INK
    image[5, 10:12] = INK  # two empty pixels (8, 9) break the contour
    _marker(image, 5, 14)
    assert not markers_joined(image)


def test_check_links_diagonal_gaps() -> None:
    image = _canvas()
    _marker(image, 3, 3)
    image[6, 6] = image[7, 7] = INK  # (4, 4) is the marker corner, (5, 5) the gap
    _marker(image, 10, 10)  # corner (9, 9), gap (8, 8)
    assert markers_joined(image)


def test_check_refuses_images_without_two_markers() -> None:
    image = _canvas()
    _marker(image, 5, 5)
    with pytest.raises(ValueError, match="exactly 2 markers"):
        markers_joined(image)


@pytest.mark.parametrize(
    ("option", "value"),
    [("contour_length", 0), ("paddle_length", 9), ("max_turn", 3.0), ("resolution", 8), ("num_distractors", -1)],
)
def test_bad_parameters_are_named(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        generate(4, seed=0, **{option: value})


def test_contours_too_long_for_the_image_are_named() -> None:
    with pytest.raises(ConfigError, match="contour_length=60 in a 32x32 image"):
        generate(2, seed=0, contour_length=60)


def test_bad_count_is_named() -> None:
    with pytest.raises(ConfigError, match="n=0"):
        generate(0, seed=0)


def test_task_splits_are_disjoint_stratified_and_fixed_test(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    first = load_lra_task("lra-pathfinder32", seed=0, n=60, workers=1)
    other_seed = load_lra_task("lra-pathfinder32", seed=1, n=60, workers=1)
    assert first.seq_len == 1024 and first.vocab_size == 256 and first.num_labels == 2 and first.pad_id is None
    assert {name: len(labels) for name, (_, labels) in first.splits.items()} == {"train": 48, "dev": 6, "test": 6}
    assert first.label_counts()["dev"] == {"disconnected": 3, "connected": 3}
    rows = {name: {bytes(row.astype(np.uint8)) for row in tokens} for name, (tokens, _) in first.splits.items()}
    assert not rows["train"] & rows["dev"] and not rows["train"] & rows["test"] and not rows["dev"] & rows["test"]
    assert np.array_equal(first.tokens("test"), other_seed.tokens("test"))
    assert not np.array_equal(first.tokens("dev"), other_seed.tokens("dev"))
    assert first.attention_mask("train").all()


def test_task_reads_generated_images_from_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    made = load_lra_task("lra-pathfinder32", n=40, workers=1, contour_length=9)
    cached_files = list((tmp_path / "lra" / "pathfinder").glob("*.npz"))
    assert len(cached_files) == 1 and "len9-n40-seed0" in cached_files[0].name
    assert not list((tmp_path / "lra" / "pathfinder").glob("*.tmp"))

    def must_not_generate(*args, **kwargs):
        raise AssertionError("generated again although cached")

    monkeypatch.setattr(pathfinder_task, "generate", must_not_generate)
    again = load_lra_task("lra-pathfinder32", n=40, workers=1, contour_length=9)
    assert np.array_equal(made.tokens("train"), again.tokens("train"))
    with pytest.raises(AssertionError, match="generated again"):
        load_lra_task("lra-pathfinder32", n=40, workers=1, contour_length=10)


def test_corrupted_cache_file_is_generated_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    made = load_lra_task("lra-pathfinder32", n=20, workers=1)
    (cached,) = (tmp_path / "lra" / "pathfinder").glob("*.npz")
    data = bytearray(cached.read_bytes())
    data[len(data) // 3] ^= 0xFF  # flip one byte inside the compressed arrays
    cached.write_bytes(bytes(data))
    calls = []
    monkeypatch.setattr(pathfinder_task, "generate", lambda *a, **k: calls.append(1) or generate(*a, **k))
    again = load_lra_task("lra-pathfinder32", n=20, workers=1)
    assert calls == [1]
    assert np.array_equal(made.tokens("train"), again.tokens("train"))


def test_unknown_pathfinder_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="contour_length"):
        load_lra_task("lra-pathfinder32", contour_lenght=14)
