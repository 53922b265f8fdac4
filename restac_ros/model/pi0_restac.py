"""Pi0_ResTac: the openpi pi0 / pi0.5 flow-matching policy plus a gated tactile residual.

v = action_out_proj(suffix_out + correction), correction = fusion(prefix_out,
tactile features) * gate. With gate 0 or no tactile input the correction is an
exact zero and the model is the backbone. The fork's token-in-AE variant
(`fusion="fork_token_in_ae"`) instead prepends a gated tactile token to the
action expert's input and adds no correction.
"""

from __future__ import annotations

import typing

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from restac_ros.model import fusion as _fusion
from restac_ros.model import gemma as _gemma
from restac_ros.model import initializers as _init
from restac_ros.model import siglip as _siglip
from restac_ros.model.config import Pi0ResTacConfig
from restac_ros.model.observation import IMAGE_KEYS, IMAGE_SIZE, Observation
from restac_ros.model.tactile import Gate, TactileEncoder

ENCODE_SCOPE = "tactile_encode"  # named scope the jaxpr test looks for


class TactileDiagnostics(typing.NamedTuple):
    codes: jax.Array  # int32 [B, n_q]; -1 in placeholder mode or without tactile
    q_event: jax.Array  # f32 [B, tactile_encoder_dim]
    logvar: jax.Array  # f32 [B, 1]
    gate: jax.Array  # f32 [B, 1]


def make_attn_mask(input_mask, mask_ar):
    """big_vision prefix-LM mask: token i sees valid token j iff cumsum(ar)[j] <= cumsum(ar)[i].

    input_mask bool [B,N]; mask_ar bool [B,N] or [N] -> bool [B,N,N].
    """
    mask_ar = jnp.broadcast_to(mask_ar, input_mask.shape)
    cumsum = jnp.cumsum(mask_ar, axis=1)
    attn = cumsum[:, None, :] <= cumsum[:, :, None]
    valid = input_mask[:, None, :] & input_mask[:, :, None]
    return attn & valid


def posemb_sincos(pos, dim: int, min_period: float = 4e-3, max_period: float = 4.0):
    """pos [B] -> [B, dim] sin/cos embedding with periods min..max.

    openpi's order of operations, (1/period)*2*pi then the outer product: the angle
    reaches ~1.6e3 rad, so its last-bit rounding shows in the actions at ~1e-5.
    """
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    x = jnp.einsum("i,j->ij", pos.astype(jnp.float32), 1.0 / period * 2 * jnp.pi,
                   precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([jnp.sin(x), jnp.cos(x)], axis=-1)


class Pi0ResTac(nnx.Module):
    def __init__(self, config: Pi0ResTacConfig, rngs: nnx.Rngs, *, vqvae=None):
        """vqvae: optional pre-loaded (params, hparams) of the frozen Residual VQ-VAE."""
        self.config = config
        pg = _gemma.get_config(config.paligemma_variant)
        ae = _gemma.get_config(config.action_expert_variant)
        self.PaliGemma = nnx.Dict(
            llm=_gemma.Gemma([pg, ae], adarms=[False, config.pi05], vocab_size=config.vocab_size,
                             dtype=config.dtype, rngs=rngs),
            img=_siglip.Siglip(_siglip.get_config(config.vision_variant), out_dim=pg.width,
                               image_size=IMAGE_SIZE, dtype=config.dtype, rngs=rngs),
        )
        a, w = config.action_dim, ae.width
        kw = dict(rngs=rngs, kernel_init=_init.lecun_normal())
        self.action_in_proj = nnx.Linear(a, w, **kw)
        if config.pi05:
            self.time_mlp_in = nnx.Linear(w, w, **kw)
            self.time_mlp_out = nnx.Linear(w, w, **kw)
        else:
            self.state_proj = nnx.Linear(a, w, **kw)
            self.action_time_mlp_in = nnx.Linear(2 * w, w, **kw)
            self.action_time_mlp_out = nnx.Linear(w, w, **kw)
        self.action_out_proj = nnx.Linear(w, a, **kw)
        if config.use_tactile:
            token_in_ae = config.fusion == "fork_token_in_ae"
            e = config.q_event_dim if token_in_ae else config.tactile_encoder_dim
            self.tactile_encoder = TactileEncoder(
                None if token_in_ae else e, mode=config.tactile_mode, rngs=rngs, vqvae=vqvae,
                vqvae_checkpoint=config.residual_vqvae_checkpoint,
                q_event_dim=config.q_event_dim)
            self.gate = Gate(config.gate, e, rngs=rngs)
            kw = dict(feature_dim=e, llm_width=pg.width, expert_width=w,
                      heads=config.num_fusion_heads, rngs=rngs)
            if config.fusion == "two_stage":
                _fusion.init_two_stage(self, horizon=config.action_horizon,
                                       num_tokens=config.num_tactile_tokens,
                                       fusion_dim=config.fusion_dim, **kw)
            elif config.fusion == "prefix_self_attn":
                _fusion.init_prefix_self_attn(self, fusion_dim=config.fusion_dim, **kw)
            elif config.fusion == "fork_prefix_self_attn":
                _fusion.init_fork_prefix_self_attn(self, **kw)
            else:
                _fusion.init_token_in_ae(self, q_event_dim=e, expert_width=w, rngs=rngs)

    # -- prefix / tactile / suffix -------------------------------------------------
    def embed_prefix(self, obs: Observation):
        """-> tokens [B,P,Dv], input mask bool [B,P], ar mask bool [P] (all False)."""
        tokens, masks = [], []
        for key in IMAGE_KEYS:
            t = self.PaliGemma["img"](jnp.asarray(obs.images[key]))
            tokens.append(t)
            masks.append(jnp.broadcast_to(jnp.asarray(obs.image_masks[key])[:, None], t.shape[:2]))
        tokens.append(self.PaliGemma["llm"].embed(jnp.asarray(obs.tokenized_prompt)))
        masks.append(jnp.asarray(obs.tokenized_prompt_mask, bool))
        tokens = jnp.concatenate(tokens, axis=1)
        return tokens, jnp.concatenate(masks, axis=1), jnp.zeros(tokens.shape[1], bool)

    def encode_tactile(self, tactile, visual=None, action_prev=None):
        """tactile [B,128,160,3]; visual [B,3,224,224,3]; action_prev [B,A] -> features [B,E],
        gate [B,1] in [0,1], logvar [B,1]."""
        enc = self.tactile_encoder(tactile, visual, action_prev)
        return enc.features, self.gate(enc.features, enc.logvar), enc.logvar

    def _tactile(self, obs: Observation, tactile_event=None):
        """Encodes the observation's tactile input once; zeros where tactile_mask is False.

        tactile_event: optional (q_event [B,q], logvar [B,1]) computed outside (e.g. by
        the torch VQ-VAE) in place of this model's VQ-VAE (vqvae mode only)."""
        b = obs.batch_size
        if not self.config.use_tactile:
            e = self.config.tactile_encoder_dim
            zeros = jnp.zeros((b, 1))
            return (jnp.zeros((b, e)), zeros, zeros), TactileDiagnostics(
                jnp.full((b, 1), -1, jnp.int32), jnp.zeros((b, e)), zeros, zeros)
        with jax.named_scope(ENCODE_SCOPE):
            if tactile_event is not None:
                if self.tactile_encoder.mode != "vqvae":
                    raise ValueError("tactile_event needs the VQ-VAE tactile encoder mode")
                enc = self.tactile_encoder.from_q_event(*tactile_event)
            else:
                visual = jnp.stack([jnp.asarray(obs.images[k]) for k in IMAGE_KEYS], axis=1)
                enc = self.tactile_encoder(jnp.asarray(obs.tactile_image), visual,
                                           jnp.asarray(obs.action_prev))
            gate = self.gate(enc.features, enc.logvar)
        m = jnp.asarray(obs.tactile_mask, bool)[:, None]
        zero = lambda x: jnp.where(m, x, jnp.zeros_like(x))
        feats, gate, logvar = zero(enc.features), zero(gate), zero(enc.logvar)
        codes = jnp.where(m, enc.codes, -1)
        return (feats, gate, logvar), TactileDiagnostics(codes, zero(enc.q_event), logvar, gate)

    def embed_suffix(self, obs: Observation, noisy_actions, timestep, tactile=None):
        """noisy_actions [B,H,A]; timestep [B]; tactile: precomputed (features, gate, logvar)
        or None to encode it here. Returns tokens [B,S,De], input mask [B,S], ar mask [S],
        adarms_cond [B,De] or None (pi0), features [B,E], gate [B,1], logvar [B,1]."""
        feats, gate, logvar = tactile if tactile is not None else self._tactile(obs)[0]
        h = self.config.action_horizon
        w = self.action_in_proj.out_features
        action_tokens = self.action_in_proj(noisy_actions)
        time_emb = posemb_sincos(timestep, w)
        tokens, ar = [], []
        if self.config.pi05:
            cond = nnx.swish(self.time_mlp_out(nnx.swish(self.time_mlp_in(time_emb))))
        else:
            cond = None
            tokens.append(self.state_proj(jnp.asarray(obs.state))[:, None, :])
            ar.append(True)  # the state token is its own block
            t = jnp.broadcast_to(time_emb[:, None, :], action_tokens.shape)
            x = self.action_time_mlp_in(jnp.concatenate([action_tokens, t], axis=-1))
            action_tokens = self.action_time_mlp_out(nnx.swish(x))
        if self.config.use_tactile and self.config.fusion == "fork_token_in_ae":
            # The fork marks this token ar=False, which in compute_loss lets the prefix
            # attend to it (never at inference, where the prefix is cached first); ar=True
            # gives the fork's inference masks and keeps training the same as inference.
            tokens.append(_fusion.surprise_token(self, feats, gate))
            ar.append(True)
        tokens.append(action_tokens)
        ar += [True] + [False] * (h - 1)  # prefix/state cannot see the actions
        tokens = jnp.concatenate(tokens, axis=1)
        mask = jnp.ones(tokens.shape[:2], bool)
        return tokens, mask, jnp.asarray(ar), cond, feats, gate, logvar

    def tactile_correction(self, prefix_out, prefix_mask, features, gate):
        """-> [B,H,De] correction (exactly zero where gate is zero), or None without tactile."""
        cfg = self.config
        if not cfg.use_tactile or cfg.fusion == "fork_token_in_ae":
            return None
        with jax.named_scope(_fusion.SCOPE):
            if cfg.fusion == "two_stage":
                return _fusion.two_stage(self, prefix_out, prefix_mask, features, gate,
                                         num_tokens=cfg.num_tactile_tokens)
            if cfg.fusion == "fork_prefix_self_attn":
                return _fusion.fork_prefix_self_attn(self, prefix_out, features, gate,
                                                     horizon=cfg.action_horizon,
                                                     use_gate=cfg.use_gate)
            return _fusion.prefix_self_attn(self, prefix_out, prefix_mask, features, gate,
                                            horizon=cfg.action_horizon)

    def _velocity(self, suffix_out, correction):
        out = suffix_out[:, -self.config.action_horizon :].astype(jnp.float32)
        if correction is not None:
            out = out + correction
        return self.action_out_proj(out)

    # -- training ------------------------------------------------------------------
    def loss_terms(self, rng, obs: Observation, actions, tactile_event=None):
        """actions [B,H,A] -> dict(flow [B,H], sparse scalar, gate [B,1], logvar [B,1]).

        tactile_event: the frozen VQ-VAE's (q_event, logvar[, codes]) for these
        observations, precomputed once per training frame (see `_tactile`)."""
        noise_rng, time_rng = jax.random.split(rng)
        actions = jnp.asarray(actions, jnp.float32)
        b = actions.shape[0]
        noise = jax.random.normal(noise_rng, actions.shape)
        # Beta(1.5, 1) by inverse CDF (U^(1/1.5)): same law as jax.random.beta, whose
        # gamma rejection sampler costs seconds of compile time.
        time = jax.random.uniform(time_rng, (b,)) ** (1 / 1.5) * 0.999 + 0.001
        t = time[:, None, None]
        x_t = t * noise + (1 - t) * actions
        u_t = noise - actions
        prefix, prefix_mask, prefix_ar = self.embed_prefix(obs)
        suffix, suffix_mask, suffix_ar, cond, feats, gate, logvar = self.embed_suffix(
            obs, x_t, time, tactile=self._tactile(obs, tactile_event)[0])
        mask = jnp.concatenate([prefix_mask, suffix_mask], axis=1)
        ar = jnp.concatenate([prefix_ar, suffix_ar])
        positions = jnp.cumsum(mask, axis=1) - 1
        (prefix_out, suffix_out), _ = self.PaliGemma["llm"](
            [prefix, suffix], mask=make_attn_mask(mask, ar), positions=positions,
            adarms_cond=[None, cond])
        corr = self.tactile_correction(prefix_out, prefix_mask, feats, gate)
        flow = jnp.mean(jnp.square(self._velocity(suffix_out, corr) - u_t), axis=-1)
        sparse = jnp.zeros(())
        if self.config.use_tactile and self.config.use_sparse_loss:
            # High uncertainty (logvar) -> stronger pressure to keep the gate closed. The
            # weight exp(mean(logvar)) is a coefficient, not a target: without the
            # stop_gradient a trainable (placeholder) logvar head minimises this term by
            # driving logvar down, which also shuts the logvar-driven gates for good.
            weight = jax.lax.stop_gradient(jnp.exp(jnp.mean(logvar)))
            if self.config.fusion.startswith("fork_"):
                weight = 1.0  # the fork's sparse loss: weight * mean(gate)
            sparse = self.config.sparse_loss_weight * jnp.mean(gate) * weight
        return dict(flow=flow, sparse=sparse, gate=gate, logvar=logvar)

    def compute_loss(self, rng, obs: Observation, actions, tactile_event=None):
        """-> [B,H]: per-step flow loss plus the (scalar) sparse term."""
        terms = self.loss_terms(rng, obs, actions, tactile_event)
        return terms["flow"] + terms["sparse"]

    # -- inference -----------------------------------------------------------------
    def sample_actions(self, rng, obs: Observation, num_steps: int = 10, noise=None,
                       tactile_event=None):
        """Euler-integrates the flow from t=1 (noise) to t=0 -> (actions [B,H,A], diagnostics).

        The prefix goes through the VLM once into a KV cache; the tactile encoder, gate
        and fusion run once before the loop; each step runs only the action expert.
        tactile_event: optional (q_event, logvar) from outside (see `_tactile`).
        """
        cfg = self.config
        b = obs.batch_size
        dt = -1.0 / num_steps
        if noise is None:
            noise = jax.random.normal(rng, (b, cfg.action_horizon, cfg.action_dim))
        prefix, prefix_mask, prefix_ar = self.embed_prefix(obs)
        positions = jnp.cumsum(prefix_mask, axis=1) - 1
        (prefix_out, _), kv_cache = self.PaliGemma["llm"](
            [prefix, None], mask=make_attn_mask(prefix_mask, prefix_ar), positions=positions)
        tactile, diag = self._tactile(obs, tactile_event)
        corr = self.tactile_correction(prefix_out, prefix_mask, tactile[0], tactile[1])

        def step(carry):
            x_t, time = carry
            suffix, suffix_mask, suffix_ar, cond, *_ = self.embed_suffix(
                obs, x_t, jnp.broadcast_to(time, (b,)), tactile=tactile)
            s = suffix.shape[1]
            full_mask = jnp.concatenate([
                jnp.broadcast_to(prefix_mask[:, None, :], (b, s, prefix_mask.shape[1])),
                make_attn_mask(suffix_mask, suffix_ar)], axis=-1)
            pos = jnp.sum(prefix_mask, axis=-1)[:, None] + jnp.cumsum(suffix_mask, axis=-1) - 1
            (_, suffix_out), _ = self.PaliGemma["llm"](
                [None, suffix], mask=full_mask, positions=pos, kv_cache=kv_cache,
                adarms_cond=[None, cond])
            return x_t + dt * self._velocity(suffix_out, corr), time + dt

        # Stop at t ~ 0; the half-step margin absorbs float error in time.
        x_0, _ = jax.lax.while_loop(lambda c: c[1] >= -dt / 2, step,
                                    (noise.astype(jnp.float32), jnp.float32(1.0)))
        return x_0, diag
