"""Issue 16: augmentation of IMU windows (labkit.datasets.augment)."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.datasets import Dataset, augment_dataset, make_gestures
from labkit.datasets import augment as aug
from labkit.errors import DatasetError


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return make_gestures(n_per_class=8, n_people=3, seed=0, calibrated=True)


def test_rotation_keeps_the_length_of_both_vectors_in_every_sample(ds: Dataset) -> None:
    rng = np.random.default_rng(0)
    turned = aug.rotate(ds.x, aug.random_rotations(len(ds.x), rng))
    for part in (slice(0, 3), slice(3, 6)):
        before = np.linalg.norm(ds.x[..., part].astype(np.float64), axis=-1)
        after = np.linalg.norm(turned[..., part].astype(np.float64), axis=-1)
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-4)
    assert not np.allclose(turned, ds.x, atol=0.1)  # it did turn them


def test_one_rotation_turns_accelerometer_and_gyroscope_together(ds: Dataset) -> None:
    # A quarter turn about Z: (x, y, z) -> (-y, x, z) for both triads of every sample.
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    turned = aug.rotate(ds.x[:3], quarter)
    for a in (0, 3):
        np.testing.assert_allclose(turned[..., a], -ds.x[:3, :, a + 1], atol=1e-5)
        np.testing.assert_allclose(turned[..., a + 1], ds.x[:3, :, a], atol=1e-5)
        np.testing.assert_allclose(turned[..., a + 2], ds.x[:3, :, a + 2], atol=1e-5)
    # and the angle between a and g (what a rotation cannot change) stays
    dot = lambda w: (w[..., :3].astype(np.float64) * w[..., 3:]).sum(-1)  # noqa: E731
    rots = aug.random_rotations(3, np.random.default_rng(1))
    np.testing.assert_allclose(dot(aug.rotate(ds.x[:3], rots)), dot(ds.x[:3]), rtol=1e-4, atol=1e-2)


def test_identity_rotation_is_a_no_op(ds: Dataset) -> None:
    np.testing.assert_array_equal(aug.rotate(ds.x, np.eye(3)), ds.x)
    assert (aug.random_rotations(4, np.random.default_rng(0), max_degrees=0) == np.eye(3)).all()


def test_random_rotations_are_rotations_and_respect_the_angle_limit() -> None:
    r = aug.random_rotations(500, np.random.default_rng(2), max_degrees=30)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    angle = np.degrees(np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angle.max() <= 30 + 1e-6 and angle.max() > 25
    full = aug.random_rotations(4000, np.random.default_rng(3))
    # uniform over all orientations: where Z ends up is uniform on the sphere (mean ~0, E[z^2] = 1/3)
    z = full[:, :, 2]
    assert np.abs(z.mean(axis=0)).max() < 0.05 and abs((z[:, 2] ** 2).mean() - 1 / 3) < 0.03


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, r: aug.rotate(x, aug.random_rotations(len(x), r)),
        lambda x, r: aug.time_warp(x, r, 0.2),
        lambda x, r: aug.scale_amplitude(x, r, 0.3),
        lambda x, r: aug.add_noise(x, r),
        lambda x, r: aug.time_shift(x, r, 10),
        lambda x, r: aug.augment(x, r),
    ],
    ids=["rotate", "time_warp", "scale_amplitude", "add_noise", "time_shift", "augment"],
)
def test_shapes_dtypes_seeds_and_input_untouched(ds: Dataset, fn) -> None:
    x = ds.x.copy()
    a = fn(x, np.random.default_rng(5))
    b = fn(x, np.random.default_rng(5))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # seeded
    np.testing.assert_array_equal(x, ds.x)  # the input is not changed
    assert not np.array_equal(a, x)


def test_time_warp_and_shift_move_samples_but_not_values(ds: Dataset) -> None:
    x = ds.x[:6]
    warped = aug.time_warp(x, np.random.default_rng(0), 0.2)
    np.testing.assert_array_equal(warped[:, 0], x[:, 0])  # the trigger sample stays first
    # interpolation stays within each channel's range
    assert (warped.max(axis=1) <= x.max(axis=1) + 1e-5).all() and (warped.min(axis=1) >= x.min(axis=1) - 1e-5).all()
    assert np.array_equal(aug.time_warp(x, np.random.default_rng(0), 0.0), x)
    shifted = aug.time_shift(x, np.random.default_rng(1), 10)
    for w, s in zip(x, shifted):
        # each shifted window is the original moved by k samples with its edge repeated
        k = next(k for k in range(-10, 11) if np.array_equal(s, w[np.clip(np.arange(119) - k, 0, 118)]))
        assert -10 <= k <= 10


def test_amplitude_scales_the_movement_and_keeps_gravity(ds: Dataset) -> None:
    x = ds.x[:10]
    scaled = aug.scale_amplitude(x, np.random.default_rng(0), 0.3)
    np.testing.assert_allclose(scaled[..., :3].mean(axis=1), x[..., :3].mean(axis=1), atol=0.05)
    ratio = np.abs(scaled[..., 3:]).sum(axis=(1, 2)) / np.abs(x[..., 3:]).sum(axis=(1, 2))
    assert ((ratio > 0.69) & (ratio < 1.31)).all() and ratio.std() > 0.05


def test_noise_has_the_units_it_says(ds: Dataset) -> None:
    x = np.zeros((200, 119, 6), dtype=np.float32)
    noisy = aug.add_noise(x, np.random.default_rng(0), accel_g=0.05, gyro_dps=3.0)
    assert abs(noisy[..., :3].std() - 0.05) < 0.002 and abs(noisy[..., 3:].std() - 3.0) < 0.1


def test_augment_dataset_copies_labels_and_people(ds: Dataset) -> None:
    more = augment_dataset(ds, copies=3, seed=1)
    assert len(more) == 4 * len(ds) and more.x.dtype == np.float32
    np.testing.assert_array_equal(more.x[: len(ds)], ds.x)  # the originals first
    np.testing.assert_array_equal(more.y, np.tile(ds.y, 4))
    np.testing.assert_array_equal(more.groups, np.tile(ds.groups, 4))
    assert more.info == ds.info
    only = augment_dataset(ds, copies=2, seed=1, keep_original=False, rotation_degrees=None)
    assert len(only) == 2 * len(ds)
    again = augment_dataset(ds, copies=2, seed=1, keep_original=False, rotation_degrees=None)
    np.testing.assert_array_equal(only.x, again.x)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, r: aug.rotate(x[..., :5], np.eye(3)), r"shape \(n, samples, 6\)"),
        (lambda x, r: aug.rotate(x, 2 * np.eye(3)), "proper rotation matrices"),
        (lambda x, r: aug.rotate(x, np.diag([1.0, 1.0, -1.0])), "proper rotation matrices"),
        (lambda x, r: aug.rotate(x, np.zeros((2, 3, 3))), r"one per window"),
        (lambda x, r: aug.random_rotations(3, r, max_degrees=270), r"max_degrees must be a number in \[0, 180\]"),
        (lambda x, r: aug.random_rotations(3, 7), "rng must be a numpy Generator"),
        (lambda x, r: aug.time_warp(x, r, max_stretch=-0.1), r"max_stretch must be a number in \[0, 0.9\]"),
        (lambda x, r: aug.scale_amplitude(x, r, max_change=float("nan")), "max_change must be a number"),
        (lambda x, r: aug.add_noise(x, r, accel_g=-1), "accel_g must be a number"),
        (lambda x, r: aug.time_shift(x, r, max_samples=119), r"max_samples must be an integer in \[0, 118\]"),
        (lambda x, r: aug.time_shift(x, r, max_samples=2.5), "max_samples must be an integer"),
        (lambda x, r: aug.augment(x.astype(str), r), "must be real numbers"),
    ],
)
def test_bad_arguments_raise_a_clear_dataset_error(ds: Dataset, call, message) -> None:
    with pytest.raises(DatasetError, match=message):
        call(ds.x, np.random.default_rng(0))


def test_augment_dataset_refuses_bad_options(ds: Dataset) -> None:
    with pytest.raises(DatasetError, match="unknown augmentation option"):
        augment_dataset(ds, copies=1, rotation=90)
    with pytest.raises(DatasetError, match=r"copies must be an integer in \[0, 1000\]"):
        augment_dataset(ds, copies=-1)
    with pytest.raises(DatasetError, match="leaves no sample"):
        augment_dataset(ds, copies=0, keep_original=False)
    with pytest.raises(DatasetError, match="needs a labkit Dataset"):
        augment_dataset(ds.x)
