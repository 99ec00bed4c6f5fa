"""The nnU-Net raw-dataset contract: where a dataset lives (``folders``), its ``dataset.json``, the
``{case}_{XXXX}{file_ending}`` image naming (``naming``, the one parser), image files that are intact (``files``) and
the whole-dataset checks run before planning and prediction (``checks``).

Ground floor: planners, evaluation, analysis and workflows use it; it imports none of them.
"""
