"""Residual VQ-VAE tactile encoder (CONTRACT.md section 2): torch reference, .ckpt I/O,
JAX port and trainer.  Nothing here imports rclpy; importing this package imports
neither torch nor jax (import the submodule you need).

Modules
- ``config``      hyper_parameters -> frozen, hashable ``VQVAEHParams``
- ``vqgan``       taming-style observation Encoder
- ``prophet``     per-view torchvision ResNet18 trunks + action/fusion MLPs -> mu, logvar
- ``event_vq``    event encoder, residual VQ with EMA codebooks
- ``model``       ``ResidualVQVAE`` (published state_dict layout), ``expected_shapes``
- ``checkpoint``  strict ``read_checkpoint`` / ``load_model`` / ``save_checkpoint``
- ``inputs``      explicit input conventions (layout HWC/CHW, range uint8/[0,1]/[-1,1])
- ``wrapper``     ``ResidualVQVAEWrapper`` (frozen, CPU/GPU auto-select)
- ``jax_layers``, ``jax_port``  pure-JAX forward for the compiled policy sampler
- ``bag_frames``  rosbag2 -> training frames via the core's BagDataset + ObservationBuilder
- ``train_step``, ``train``     ``restac-train-vqvae``
- ``validate``    contact-detection AUROC on a held-out bag

State-dict names below each contract prefix (the contract fixes prefixes, not
sub-names; these follow the named upstream conventions):
- ``prophet_encoder.view_encoders.{0,1,2}.<torchvision resnet18 names, fc removed>``,
  ``.action_mlp.0``, ``.fusion.{0,1,3,4,6,7}`` (Linear, LayerNorm per depth),
  ``.head_mu``, ``.head_logvar``
- ``obs_encoder.<taming Encoder names>``; ``quant_conv`` (z -> z, 1x1)
- ``event_encoder.conv_in``, ``.blocks.{i}.norm1/conv1/norm2/conv2``, ``.conv_out``
- ``residual_vq.layers.{i}._codebook.embed [K, D] / cluster_size [K] / embed_avg [K, D]``

Training-only decoders are *not* in ``state_dict``: ``restac-train-vqvae``
stores them under the checkpoint's top-level ``restac_train_state`` entry,
which every reader ignores, so trained checkpoints load strictly.
"""
