"""Images converted ahead of the tick (core/prepared.py): same observation, fewer conversions."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from restac_ros.core.images import RawImage
from restac_ros.core.prepared import PreparedImages
from test.core.bagtools import CAMERAS, TACTILE
from test.core.test_observation import _img, make_builder, make_sample


def _raw(h: int, w: int, seed: int) -> RawImage:
    data = np.random.default_rng(seed).integers(0, 256, h * w * 3, dtype=np.uint8)
    return RawImage(data, "rgb8", h, w, w * 3, False)


def test_prepared_images_give_the_same_observation(norm_stats_path, spm_model_path):
    sample = make_sample(images={slot: _raw(48, 64, i) for i, slot in enumerate(CAMERAS)},
                         tactile=_raw(240, 320, 9))
    cold = make_builder(norm_stats_path, spm_model_path)
    warm = make_builder(norm_stats_path, spm_model_path)
    for slot, stream in CAMERAS.items():
        assert warm.prepare_image(stream, sample.images[slot])
    assert warm.prepare_image(TACTILE, sample.tactile)
    a, b = cold.build(sample), warm.build(sample)
    for slot in CAMERAS:
        np.testing.assert_array_equal(a.images[slot], b.images[slot])
    np.testing.assert_array_equal(a.tactile_image, b.tactile_image)
    assert (warm.prepared.hits, warm.prepared.misses) == (len(CAMERAS) + 1, 0)
    assert cold.prepared.misses == len(CAMERAS) + 1 and cold.prepared.hits == 0


def test_lookup_is_by_message_identity_not_equality(norm_stats_path, spm_model_path):
    """An equal but different message is converted again, never served a stale array."""
    builder = make_builder(norm_stats_path, spm_model_path)
    slot, stream = next(iter(CAMERAS.items()))
    first = _raw(48, 64, 1)
    builder.prepare_image(stream, first)
    twin = dataclasses.replace(first, data=first.data.copy())
    sample = make_sample(images={**make_sample().images, slot: twin})
    builder.build(sample)
    assert builder.prepared.get(stream, twin) is None
    assert builder.prepared.get(stream, first) is not None


def test_bad_images_are_left_for_build_to_report(norm_stats_path, spm_model_path):
    builder = make_builder(norm_stats_path, spm_model_path)
    stream = next(iter(CAMERAS.values()))
    bad = RawImage(np.zeros(10, np.uint8), "rgb8", 48, 64, 192, False)
    assert not builder.prepare_image(stream, bad)
    assert builder.prepared.get(stream, bad) is None


def test_store_keeps_the_newest_per_stream_and_is_thread_safe():
    store = PreparedImages(keep_per_stream=2)
    msgs = [object() for _ in range(3)]
    for i, m in enumerate(msgs):
        store.put("cam", m, np.full((1,), i))
    assert store.get("cam", msgs[0]) is None
    assert store.get("cam", msgs[2])[0] == 2
    keep = [object() for _ in range(400)]

    def writer(stream):
        for i, m in enumerate(keep):
            store.put(stream, m, np.full((1,), i))
            store.get(stream, m)

    threads = [threading.Thread(target=writer, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.get(f"s{i}", keep[-1])[0] == 399 for i in range(4))


def test_plain_arrays_are_prepared_too(norm_stats_path, spm_model_path):
    builder = make_builder(norm_stats_path, spm_model_path)
    img = _img(24, 32)
    assert builder.prepare_image(TACTILE, img)
    assert builder.prepared.get(TACTILE, img).shape == (1, 128, 160, 3)
