"""Residual VQ-VAE tactile encoder (CONTRACT.md section 2): torch reference, .ckpt I/O,
JAX port and trainer.  Nothing here imports rclpy; importing this package imports
neither torch nor jax (import the submodule you need).

Modules
- ``config``      hyper_parameters (published names + ``restac_extensions``) -> ``VQVAEHParams``
- ``vqgan``       taming ``Encoder`` (as vendored by UniT)
- ``prophet``     one shared torchvision ResNet18 trunk + action/fusion MLPs -> mu, logvar
- ``event_vq``    event encoder, EMA vector quantiser
- ``model``       ``ResidualVQVAE`` (published state_dict layout), ``expected_shapes``
- ``checkpoint``  strict ``read_checkpoint`` / ``load_model`` / ``save_checkpoint``
- ``inputs``      explicit input conventions (layout HWC/CHW, range uint8/[0,1]/[-1,1])
- ``wrapper``     ``ResidualVQVAEWrapper`` (frozen, CPU/GPU auto-select)
- ``jax_layers``, ``jax_port``  pure-JAX forward for the compiled policy sampler
- ``bag_frames``  rosbag2 -> training frames via the core's BagDataset + ObservationBuilder
- ``train_step``, ``train``     ``restac-train-vqvae``
- ``validate``    contact-detection AUROC on a held-out bag

State-dict names are those of the published fork's classes
(Awilekong/openpi ``pi0_restac.py``; docs/vqvae.md lists them):
- ``prophet_encoder.visual_backbone.{0,1,4,5,6,7}.<resnet18 names>``,
  ``.action_mlp.0``, ``.fusion_body.{4i,4i+1}``, ``.head_mu``, ``.head_logvar``
- ``obs_encoder.<taming Encoder names>``; ``quant_conv`` (z_channels -> 3, 1x1)
- ``event_encoder.head.0``, ``.body.{0,1,2}.norm1/conv1/norm2/conv2``, ``.pre_pool``
- ``residual_vq.embed [n_e, e_dim]``, ``.cluster_size [n_e]``, ``.embed_avg [n_e, e_dim]``

Training-only decoders are *not* in ``state_dict``: ``restac-train-vqvae``
stores them under the checkpoint's top-level ``restac_train_state`` entry,
which every reader ignores, so trained checkpoints load strictly.
"""
