"""Mechanistic analyses of the paper (sections 2.4, 2.6, 2.7; appendices A, B).

Pure numerics (no files): ``attention_dilution`` (ADI reducer fed by probe events; the token kinds it reads come
from ``networks.token_kinds``), ``crop_placement`` (how a scan lands in a crop, pf), ``cka`` (minibatch
linear CKA, unbiased HSIC), ``subtypes`` (appearance features, k-means subtypes).
I/O and commands: ``model_loading`` (our nnU-Net model folders, predictor preprocessing), ``dilution_report``
(`nnunet-swin adi`), ``feature_reuse`` (`nnunet-swin cka`), ``subtype_report`` (`nnunet-swin subtypes`),
``figures`` (matplotlib, Agg).

Import the submodule you need; this package imports nothing on its own.
"""
