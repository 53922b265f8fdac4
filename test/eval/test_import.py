"""restac-import on checkpoints made here with the package's own writers
(model.policy.save_policy_checkpoint, tactile.checkpoint.save_checkpoint)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from restac_ros.core.action_space import EE_POSE_RPY_NAMES
from restac_ros.eval import params as eval_params
from restac_ros.eval.import_checkpoint import (
    EXIT_CHECKPOINT,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from restac_ros.paths import config_path
from test.nodes.checkpoints import JOINTS, write_tokenizer

torch = pytest.importorskip("torch")
CAMERAS = ["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"]


def _save_policy(directory: Path, *, action_dim: int, meta: dict, stats: dict,
                 vqvae: Path | None = None) -> tuple[Path, int]:
    """A dummy-variant Pi0_ResTac written by save_policy_checkpoint; (path, param count)."""
    import flax.traverse_util as tu
    import jax

    from restac_ros.model.checkpoint import model_params
    from restac_ros.model.config import Pi0ResTacConfig
    from restac_ros.model.policy import save_policy_checkpoint

    cfg = Pi0ResTacConfig(paligemma_variant="dummy", action_expert_variant="dummy",
                          vision_variant="micro", action_dim=action_dim, action_horizon=10,
                          max_token_len=24, vocab_size=64, fusion_dim=32, num_fusion_heads=2,
                          residual_vqvae_checkpoint=str(vqvae) if vqvae else None)
    model = cfg.create(jax.random.key(0))
    count = sum(int(np.prod(np.shape(v)))
                for v in tu.flatten_dict(model_params(model)).values())
    tok = write_tokenizer(directory.parent / f"{directory.name}_tokenizer.model")
    return save_policy_checkpoint(directory, model, cfg, stats, tok, meta), count


def _stats(state_dim: int, action_dim: int):
    from restac_ros.model.norm_stats import NormStats

    def make(d, scale):
        return NormStats(np.zeros(d, np.float32), np.full(d, scale, np.float32),
                         np.full(d, -scale, np.float32), np.full(d, scale, np.float32))
    return {"state": make(state_dim, 1.0), "actions": make(action_dim, 0.1)}


@pytest.fixture(scope="module")
def vqvae(tmp_path_factory):
    from restac_ros.tactile.checkpoint import save_checkpoint
    from restac_ros.tactile.config import default_hparams
    from restac_ros.tactile.model import ResidualVQVAE

    torch.manual_seed(0)
    hp = default_hparams(ch=32, n_e=16, num_res_blocks=1, prophet_input_size=32)
    model = ResidualVQVAE(hp)
    path = tmp_path_factory.mktemp("vq") / "vqvae.ckpt"
    save_checkpoint(path, model, hp)
    return path, hp, sum(v.numel() for v in model.state_dict().values())


@pytest.fixture(scope="module")
def joint_ckpt(tmp_path_factory, vqvae):
    """Our layout: 8 joints, VQ-VAE inside, delta joints / absolute gripper."""
    meta = {"action_space": "joint_position", "joint_names": JOINTS, "action_names": JOINTS,
            "dt_s": 0.1, "camera_slots": CAMERAS, "asset_id": "sample",
            "delta_action_mask": [True] * 7 + [False]}
    return _save_policy(tmp_path_factory.mktemp("joint") / "ckpt", action_dim=8, meta=meta,
                        stats=_stats(8, 8), vqvae=vqvae[0])


@pytest.fixture(scope="module")
def ee_ckpt(tmp_path_factory):
    """The fork's conventions: 7-D EE state, state stats padded to action_dim 32 (zeros, as
    the fork's compute_norm_stats writes them), an asset id with a slash."""
    stats = _stats(7, 7)
    pad = lambda v: np.concatenate([v, np.zeros(25, np.float32)])
    s = stats["state"]
    stats["state"] = type(s)(pad(s.mean), pad(s.std), pad(s.q01), pad(s.q99))
    meta = {"action_space": "ee_pose_rpy", "joint_names": list(EE_POSE_RPY_NAMES),
            "dt_s": 1 / 15, "camera_slots": CAMERAS, "asset_id": "lerobot/peg_hole_tac",
            "delta_action_mask": [True] * 6 + [False]}
    return _save_policy(tmp_path_factory.mktemp("ee") / "ckpt", action_dim=32, meta=meta,
                        stats=stats)[0]


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_import_reports_and_writes_a_config_restac_eval_runs(capsys, tmp_path, joint_ckpt,
                                                              vqvae, sqlite_bag):
    ckpt, n_params = joint_ckpt
    vq_path, hp, vq_params = vqvae
    cfg_file = tmp_path / "robot.yaml"
    rc, out, err = _run(capsys, ckpt, "--out", cfg_file, "--check-inference", "--json")
    assert rc == EXIT_OK, err
    found = json.loads(out)
    assert found["layout"] == "restac_ros" and found["pipeline"] == "default"
    assert found["param_count"] == n_params
    assert found["kind"] == "restac_ros" and not found["fork_tree"]
    assert found["tree_fields"]["backbone"] == "pi0" and found["tree_fields"]["action_dim"] == 8
    assert found["checkpoint_dir"] == str(ckpt)  # its own VQ-VAE: no view needed
    assert found["vqvae"]["hyper_parameters"] == json.loads(json.dumps(hp.to_dict()))
    assert found["vqvae"]["param_count"] == vq_params
    assert found["norm_stats"]["state"] == {"shape": [8], "quantiles": True}
    assert found["implied_faults"] == []
    first = found["inference_check"]["first_action"]
    assert len(first) == 8 and np.all(np.isfinite(first))

    p = eval_params.load_params(cfg_file)
    assert p["checkpoint_dir"] == str(ckpt) and p["pipeline"] == "default"
    assert p["joint_names"] == JOINTS and p["action_dt_s"] == 0.1
    from restac_ros.nodes.policy_params import PARAMETERS, validate

    node = yaml.safe_load(cfg_file.read_text())["policy_node"]["ros__parameters"]
    base = yaml.safe_load(config_path("policy.yaml").read_text())["policy_node"]
    assert set(node) == set(base["ros__parameters"]) and set(node) <= set(PARAMETERS)
    validate({name: default for name, (default, _) in PARAMETERS.items()} | node)

    from restac_ros.eval.cli import main as eval_main

    rc = eval_main([str(sqlite_bag), "--out", str(tmp_path / "eval"), "--params", str(cfg_file),
                    "--max-steps", "2", "-q"])
    assert rc == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["steps"] >= 1


def test_another_vqvae_gets_a_checkpoint_view(capsys, tmp_path, joint_ckpt, vqvae):
    """policy_node takes the VQ-VAE from restac_config.json: a different file means a view
    (symlinks to the checkpoint's files), never an edit of the checkpoint."""
    ckpt = joint_ckpt[0]
    other = tmp_path / "retrained.ckpt"
    shutil.copy2(vqvae[0], other)
    before = (ckpt / "restac_config.json").read_text()
    rc, out, err = _run(capsys, ckpt, "--vqvae", other, "--out", tmp_path / "r.yaml")
    assert rc == EXIT_OK, err
    view = tmp_path / "r.checkpoint"
    assert f"checkpoint_dir {view}" in out
    assert json.loads((view / "restac_config.json").read_text())[
        "residual_vqvae_checkpoint"] == str(other)
    meta = json.loads((view / "policy_meta.json").read_text())
    assert meta["imported_from"] == str(ckpt)
    assert meta["delta_action_mask"] == [True] * 7 + [False]
    assert (view / "assets" / "tokenizer.model").resolve() == (
        ckpt / "assets" / "tokenizer.model").resolve()
    assert (ckpt / "restac_config.json").read_text() == before


def test_restac_preset_for_fork_conventions(capsys, tmp_path, ee_ckpt):
    cfg_file = tmp_path / "fork.yaml"
    rc, out, err = _run(capsys, ee_ckpt, "--preset", "restac", "--out", cfg_file,
                        "--check-inference")
    assert rc == EXIT_OK, err
    assert "pipeline     restac" in out and "wrote" in out
    assert "lerobot/peg_hole_tac" in out
    p = eval_params.load_params(cfg_file)
    assert p["pipeline"] == "restac" and p["action_space"] == "ee_pose_rpy"
    assert p["joint_states_topic"] == "/restac/ee_state"
    assert p["camera_slots"] == CAMERAS
    ex = yaml.safe_load(cfg_file.read_text())["chunk_executor"]["ros__parameters"]
    assert ex["command_type"] == "pose_stamped" and ex["joint_names"] == list(EE_POSE_RPY_NAMES)
    assert len(ex["position_min"]) == len(ex["max_velocity"]) == 7

    from restac_ros.model.policy import RestacPolicy

    policy = RestacPolicy.from_checkpoint(ee_ckpt)
    builder = eval_params.builder_for(p, policy.config, policy.norm_stats, policy.tokenizer,
                                      (True,) * 6 + (False,))
    assert builder.spec.pipeline == "restac" and not builder.spec.state_in_prompt
    assert builder.spec.delta_action_mask == (True,) * 6 + (False,)


def _one_line_error(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and err.startswith("restac-import: error: "), err
    for n in needles:
        assert n in err, (n, err)


def test_checkpoint_errors_name_the_file_and_parameter(capsys, tmp_path, joint_ckpt, vqvae):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(joint_ckpt[0], ckpt)
    stats_file = ckpt / "assets" / "sample" / "norm_stats.json"
    good_stats = stats_file.read_text()

    data = json.loads(good_stats)
    data["norm_stats"]["state"]["mean"][2] = float("nan")
    stats_file.write_text(json.dumps(data))
    rc, _, err = _run(capsys, ckpt)
    assert rc == EXIT_CHECKPOINT
    _one_line_error(err, str(stats_file), "state.mean[2]")
    stats_file.write_text(good_stats)

    config_file = ckpt / "restac_config.json"
    good_config = config_file.read_text()
    config = json.loads(good_config)
    config["action_dim"] = 9
    config_file.write_text(json.dumps(config))
    rc, _, err = _run(capsys, ckpt)
    assert rc == EXIT_CHECKPOINT
    _one_line_error(err, "action_in_proj/kernel")
    config_file.write_text(good_config)

    bad_vq = tmp_path / "bad_vqvae.ckpt"
    raw = torch.load(vqvae[0], weights_only=True)
    del raw["hyper_parameters"]["residual_vq_config"]["n_e"]
    torch.save(raw, bad_vq)
    rc, _, err = _run(capsys, ckpt, "--vqvae", bad_vq)
    assert rc == EXIT_CHECKPOINT
    _one_line_error(err, str(bad_vq), "n_e")

    shutil.rmtree(ckpt / "params")
    rc, _, err = _run(capsys, ckpt)
    assert rc == EXIT_CHECKPOINT
    _one_line_error(err, str(ckpt / "params"))


def test_params_errors(capsys, tmp_path, joint_ckpt, ee_ckpt):
    ckpt = joint_ckpt[0]
    out = tmp_path / "exists.yaml"
    out.write_text("keep me\n")
    rc, _, err = _run(capsys, ckpt, "--out", out)
    assert rc == EXIT_CONFIG and out.read_text() == "keep me\n"
    _one_line_error(err, str(out), "--force")

    # The fork's pipeline needs state stats as wide as action_dim; ours are 8 of 8 here,
    # but its delta mask (6 relative) contradicts the checkpoint's (7 relative).
    rc, _, err = _run(capsys, ckpt, "--preset", "restac", "--out", tmp_path / "x.yaml")
    assert rc == EXIT_CONFIG and not (tmp_path / "x.yaml").exists()
    _one_line_error(err, str(tmp_path / "x.yaml"), "delta_action_mask")

    rc, _, err = _run(capsys, ee_ckpt, "--preset", "default", "--out", tmp_path / "ee.yaml")
    assert rc == EXIT_CONFIG and not (tmp_path / "ee.yaml").exists()
    _one_line_error(err, "chunk_executor.position_min has 8 values")

    base = tmp_path / "base.yaml"
    base.write_text("chunk_executor: {}\n")
    rc, _, err = _run(capsys, ckpt, "--params", base)
    assert rc == EXIT_CONFIG
    _one_line_error(err, str(base), "policy_node")

    with pytest.raises(SystemExit) as exc:
        main(["--preset", "nonsense", str(ckpt)])
    assert exc.value.code == EXIT_USAGE


FORK_FIXTURES = Path(__file__).resolve().parents[1] / "model" / "fixtures" / "openpi_parity"


@pytest.mark.skipif(not (FORK_FIXTURES / "fork_restac").is_dir(),
                    reason="the fork's Pi0_ResTac checkpoint fixture (test/model) is absent")
def test_fork_checkpoint_gets_the_preset_and_a_checkpoint_view(capsys, tmp_path, vqvae):
    """An openpi step directory written by the fork's own Pi0_ResTac (test/model's parity
    fixture): no restac_config.json, asset id with a slash, no tokenizer."""
    ckpt = FORK_FIXTURES / "fork_restac"
    tok = write_tokenizer(tmp_path / "paligemma_stand_in.model")
    rc, _, err = _run(capsys, ckpt, "--tokenizer", tok, "--out", tmp_path / "x.yaml")
    assert rc == EXIT_USAGE
    _one_line_error(err, str(ckpt / "params"), "--vqvae")
    rc, _, err = _run(capsys, ckpt, "--vqvae", vqvae[0], "--out", tmp_path / "x.yaml")
    assert rc == EXIT_USAGE
    _one_line_error(err, "--tokenizer")

    out = tmp_path / "fork.yaml"
    rc, stdout, err = _run(capsys, ckpt, "--vqvae", vqvae[0], "--tokenizer", tok, "--out", out,
                           "--action-horizon", "10", "--max-token-len", "20", "--json")
    assert rc == EXIT_OK, err
    found = json.loads(stdout)
    assert found["layout"] == "openpi" and found["kind"] == "fork_restac" and found["fork_tree"]
    assert found["pipeline"] == "restac" and found["asset_id"] == "lerobot/peg_hole_tac"
    assert found["model_config"]["fusion"] == "fork_prefix_self_attn"
    assert found["model_config"]["gate"] == "fork_necessity"
    assert any("tactile_0" in n for n in found["implied_faults"])

    view = Path(found["checkpoint_dir"])
    assert view == tmp_path / "fork.checkpoint"
    assert not (tmp_path / "fork.checkpoint.tmp").exists()  # moved into place once valid
    assert (view / "params").resolve() == (ckpt / "params").resolve()
    assert json.loads((view / "restac_config.json").read_text())[
        "residual_vqvae_checkpoint"] == str(vqvae[0])
    meta = json.loads((view / "policy_meta.json").read_text())
    assert meta["delta_action_mask"] == [True] * 6 + [False]
    p = eval_params.load_params(out)
    assert p["checkpoint_dir"] == str(view) and p["pipeline"] == "restac"
    # a view restac-import did not write is never replaced, not even with --force
    out.unlink()
    (view / "policy_meta.json").write_text("{}")
    rc, _, err = _run(capsys, ckpt, "--vqvae", vqvae[0], "--tokenizer", tok, "--out", out,
                      "--force")
    assert rc == EXIT_CONFIG and not out.exists()
    _one_line_error(err, str(view), "not written by restac-import")


@pytest.mark.skipif(not (FORK_FIXTURES / "fork_restac").is_dir(),
                    reason="the fork's Pi0_ResTac checkpoint fixture (test/model) is absent")
def test_lora_fine_tune_is_merged_into_the_view(capsys, tmp_path, vqvae):
    """A pi05_restac_lora-style tree (lora_a/lora_b next to q_einsum/w): the view holds
    the merged weights, since policy_node loads restac_ros-layout params strictly."""
    import flax.traverse_util as tu

    from restac_ros.model.checkpoint import restore_params, save_params

    src = FORK_FIXTURES / "fork_restac"
    flat = tu.flatten_dict(restore_params(src / "params"), sep="/")
    w_key = "PaliGemma/llm/layers/attn/q_einsum/w"
    d, n, width, h = flat[w_key].shape
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (d, n, width, 2)).astype(np.float32)
    b = rng.normal(0, 0.1, (d, n, 2, h)).astype(np.float32)
    flat["PaliGemma/llm/layers/attn/q_einsum/lora_a"] = a
    flat["PaliGemma/llm/layers/attn/q_einsum/lora_b"] = b
    ckpt = tmp_path / "lora_step"
    save_params(ckpt / "params", tu.unflatten_dict(flat, sep="/"))
    shutil.copytree(src / "assets", ckpt / "assets")
    tok = write_tokenizer(tmp_path / "tok.model")

    rc, stdout, err = _run(capsys, ckpt, "--vqvae", vqvae[0], "--tokenizer", tok,
                           "--out", tmp_path / "lora.yaml", "--json")
    assert rc == EXIT_OK, err
    found = json.loads(stdout)
    assert found["lora"] and found["pipeline"] == "restac"
    view = tmp_path / "lora.checkpoint"
    assert not (view / "params").is_symlink()
    merged = tu.flatten_dict(restore_params(view / "params"), sep="/")
    assert not [k for k in merged if "lora" in k]
    np.testing.assert_allclose(merged[w_key], flat[w_key] + a @ b, rtol=1e-6, atol=1e-6)
