"""restac-eval on damaged input: a bag a killed recording left (no metadata.yaml, no MCAP
footer), a truncated MCAP, truncated CDR messages, all-NaN joint states, a refused
checkpoint. Each: one error line naming the file and the problem, the documented exit
code, and the readable part evaluated and written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from restac_ros.core.bag_info import _custom_data
from restac_ros.core.bag_salvage import open_bag
from restac_ros.eval.cli import (
    EXIT_BAG,
    EXIT_BAG_DAMAGED,
    EXIT_CHECKPOINT,
    EXIT_NO_OBSERVATION,
    EXIT_OK,
    main,
)
from restac_ros.sample_bag.writer import write_sample_bag

STORE = get_typestore(Stores.ROS2_KILTED)
CAMERA = "/camera/base/image_raw"
TEACHER = "/teacher/joint_command"


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    """3 s, MCAP: 15 ticks at 5 Hz."""
    return write_sample_bag(tmp_path_factory.mktemp("damaged") / "intact", storage="mcap",
                            seconds=3.0, seed=5).path


@pytest.fixture(scope="module")
def intact(bag, demo_checkpoint, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("intact") / "o"
    assert main([str(bag), "--out", str(out), "--checkpoint", str(demo_checkpoint), "-q"]) == 0
    return json.loads((out / "metrics.json").read_text())


def _run(capsys, bag: Path, out: Path, checkpoint: Path) -> tuple[int, str]:
    rc = main([str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "-q"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("restac-eval")]
    assert len(lines) <= 1, lines  # one line per problem, never a traceback
    return rc, lines[0] if lines else ""


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copies a bag message by message; edit(topic, index on topic, raw) -> raw."""
    with Reader(src) as r, Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {c.id: w.add_connection(c.topic, c.msgtype, typestore=STORE)
                 for c in r.connections}
        seen: dict[str, int] = {}
        for c, t, raw in r.messages():
            seen[c.topic] = seen.get(c.topic, -1) + 1
            w.write(conns[c.id], t, edit(c.topic, seen[c.topic], bytes(raw)))
    return dst


def _cut(bag: Path, dst: Path, fraction: float, drop_metadata: bool) -> Path:
    shutil.copytree(bag, dst)
    if drop_metadata:
        (dst / "metadata.yaml").unlink()
    (mcap,) = dst.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_intact_bag_is_ok(intact):
    assert intact["steps"] > 8 and intact["run"]["damage"] == []


def test_bag_without_metadata_is_read_whole(bag, intact, demo_checkpoint, tmp_path, capsys):
    damaged = tmp_path / "no_metadata"
    shutil.copytree(bag, damaged)
    (damaged / "metadata.yaml").unlink()
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG_DAMAGED, err
    assert str(damaged) in err and "no metadata.yaml" in err
    m = _metrics(tmp_path / "o")
    assert m["steps"] == intact["steps"]  # the MCAP itself is complete
    assert (tmp_path / "o" / "report.html").is_file()


def test_sqlite_bag_without_metadata(sqlite_bag, demo_checkpoint, tmp_path, capsys):
    damaged = Path(shutil.copytree(sqlite_bag, tmp_path / "no_metadata_db3"))
    (damaged / "metadata.yaml").unlink()
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG_DAMAGED and "no metadata.yaml" in err and ".db3" in err, err
    assert _metrics(tmp_path / "o")["steps"] > 0


def test_killed_recording_evaluates_the_readable_part(bag, intact, demo_checkpoint, tmp_path,
                                                      capsys):
    """What `ros2 bag record` leaves when killed: no metadata.yaml, the MCAP cut mid-chunk."""
    damaged = _cut(bag, tmp_path / "killed", 0.7, drop_metadata=True)
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG_DAMAGED, err
    assert "no metadata.yaml" in err
    assert f"{damaged / 'intact.mcap'}: truncated (ends inside a record" in err
    m = _metrics(tmp_path / "o")
    assert 0 < m["steps"] < intact["steps"]
    assert m["run"]["interrupted"] is False and len(m["run"]["damage"]) == 2
    assert (tmp_path / "o" / "predictions").is_dir()


def test_truncated_mcap_keeps_metadata(bag, intact, demo_checkpoint, tmp_path, capsys):
    damaged = _cut(bag, tmp_path / "truncated", 0.6, drop_metadata=False)
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG_DAMAGED, err
    assert f"{damaged}: damaged bag" in err and "cannot open" not in err
    m = _metrics(tmp_path / "o")
    assert 0 < m["steps"] < intact["steps"]
    # metadata.yaml is intact: its custom data (prompt, contact intervals) is still used
    salvaged, notes = open_bag(damaged)
    whole, _ = open_bag(bag)
    try:
        assert _custom_data(salvaged) == _custom_data(whole)
        assert "restac.prompt" in _custom_data(whole) and len(notes) == 1
    finally:
        salvaged.close()
        whole.close()


def test_unreadable_bag_is_an_error(bag, demo_checkpoint, tmp_path, capsys):
    damaged = _cut(bag, tmp_path / "stub", 0.00001, drop_metadata=True)
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG and str(damaged) in err and "no message is readable" in err
    assert not (tmp_path / "o").exists()


def test_truncated_cdr_messages_are_not_used(bag, intact, demo_checkpoint, tmp_path, capsys):
    def edit(topic, i, raw):
        if (topic == TEACHER and i == 10) or (topic == CAMERA and 20 <= i < 26):
            return raw[: len(raw) // 2]
        return raw

    damaged = _rewrite(bag, tmp_path / "cut_messages", edit)
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_BAG_DAMAGED, err
    assert f"1 message(s) on {TEACHER} do not deserialize" in err
    assert f"on {CAMERA} do not deserialize" in err
    m = _metrics(tmp_path / "o")
    assert m["run"]["invalid_ticks"].get("corrupt_message", 0) >= 1  # ticks that needed one
    assert 0 < m["steps"] < intact["steps"]
    assert m["run"]["ticks"] == intact["run"]["ticks"]


def test_all_nan_joints_write_an_empty_report(bag, demo_checkpoint, tmp_path, capsys):
    def edit(topic, i, raw):
        if topic != "/joint_states":
            return raw
        msg = STORE.deserialize_cdr(raw, "sensor_msgs/msg/JointState")
        msg.position = np.full(len(msg.position), np.nan)
        return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/JointState"))

    damaged = _rewrite(bag, tmp_path / "nan_joints", edit)
    rc, err = _run(capsys, damaged, tmp_path / "o", demo_checkpoint)
    assert rc == EXIT_NO_OBSERVATION, err
    assert str(damaged) in err and "no valid observation in 15 ticks" in err
    assert "nonfinite_joints" in err
    m = _metrics(tmp_path / "o")
    assert m["steps"] == 0 and m["policy_vs_hold"] == {}
    assert m["run"]["ticks"] == 15 and sum(m["run"]["invalid_ticks"].values()) == 15
    assert "Nothing evaluated" in (tmp_path / "o" / "report.html").read_text()
    assert (tmp_path / "o" / "steps.csv").read_text().count("\n") == 1


def test_one_unusable_bag_among_several(bag, demo_checkpoint, tmp_path, capsys):
    missing = tmp_path / "nope"
    rc = main([str(missing), str(bag), "--out", str(tmp_path / "o"), "--checkpoint",
               str(demo_checkpoint), "-q"])
    err = capsys.readouterr().err
    assert rc == EXIT_BAG and f"bag not found: {missing}" in err
    assert _metrics(tmp_path / "o" / bag.name)["steps"] > 0  # the other bag is evaluated
    assert set(_metrics(tmp_path / "o")["bags"]) == {bag.name}


@pytest.mark.parametrize("damage", ["nan_std", "truncated_metadata", "nan_weight"])
def test_refused_checkpoint(bag, demo_checkpoint, tmp_path, capsys, damage):
    ckpt = Path(shutil.copytree(demo_checkpoint, tmp_path / "ckpt"))
    if damage == "nan_std":
        (stats,) = ckpt.glob("assets/*/norm_stats.json")
        data = json.loads(stats.read_text())
        data["norm_stats"]["state"]["std"][4] = float("nan")
        stats.write_text(json.dumps(data))
        expect = f"{stats}: state.std[4] is nan"
    elif damage == "truncated_metadata":
        meta = ckpt / "params" / "_METADATA"
        meta.write_text(meta.read_text()[:300])
        expect = f"{meta}: invalid JSON"
    else:
        from restac_ros.model import checkpoint as params_io

        params = params_io.restore_params(ckpt / "params")
        params["action_out_proj"]["bias"][2] = np.inf
        shutil.rmtree(ckpt / "params")
        params_io.save_params(ckpt / "params", params)
        expect = f"{ckpt / 'params'}: param action_out_proj/bias[2] is inf"
    rc, err = _run(capsys, bag, tmp_path / "o", ckpt)
    assert rc == EXIT_CHECKPOINT and err.startswith("restac-eval: error: checkpoint refused: ")
    assert expect in err, err
    assert not (tmp_path / "o").exists()


def test_exit_codes_are_documented(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in (EXIT_OK, EXIT_BAG, EXIT_CHECKPOINT, EXIT_BAG_DAMAGED, EXIT_NO_OBSERVATION, 130):
        assert f"\n  {code} " in text
