"""Pi0_ResTac in JAX/Flax NNX: model, checkpoints, norm stats, tokenizer, policy."""

from restac_ros.model.config import Pi0ResTacConfig
from restac_ros.model.observation import Observation
from restac_ros.model.pi0_restac import Pi0ResTac, TactileDiagnostics

__all__ = ["Observation", "Pi0ResTac", "Pi0ResTacConfig", "TactileDiagnostics"]
