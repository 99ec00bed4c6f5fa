"""Self-supervised pretraining of the Swin encoders (SMIT, SMART) on the user's own unlabeled scans.

Modules: ``data`` (discovery, nnU-Net reading/resampling, intensity scaling, cache, two-view crops), ``masking``
(block masks, attention-guided masks), ``heads`` (projection heads, MIP decoder, class attention), ``losses`` (MIP,
MPD, ITD/CTD, centres), ``schedules``, ``teacher`` (EMA, noisy teacher), ``model`` (encoder + heads), ``trainer``
(the loop, checkpoints, resume), ``distributed`` (the process group: torchrun or SLURM), ``job`` (a run here, or as
one SLURM job across the allocation); what a checkpoint says about itself is the ground floor's schema (``nnunet_swin.networks.weights.metadata``).
The networks never import this package; its checkpoints reach the fine-tuning trainers as files.
"""
