from setuptools import find_packages, setup

setup(
    name="nnunet-swin",
    version="0.1.0",
    description=(
        "nnU-Net v2 extension for fine-tuning CT-pretrained 3D Swin transformers (SMIT, Swin UNETR) on MRI: "
        "padding-aware anisotropic planning, tumour-aware augmentation, attention-dilution and CKA diagnostics, "
        "surface-Dice evaluation"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["nnunet_swin", "nnunet_swin.*"]),
    include_package_data=True,
    install_requires=[
        "nnunetv2>=2.8.1,<2.9",
        "torch>=2.6",  # get_unsafe_globals_in_checkpoint (2.6), get_autocast_dtype (2.4)
        "numpy>=1.24",
        "scipy>=1.10",
        "statsmodels>=0.14",
        "scikit-learn>=1.3",
        "scikit-image>=0.19.3",
        "pandas>=2.0",
        "matplotlib>=3.7",
        "tqdm",
        "SimpleITK>=2.2.1",
        "batchgeneratorsv2>=0.3.2",
        "submitit>=1.5",  # the study's SLURM executor (job arrays, requeue)
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "monai==1.6.1"],
    },
    entry_points={"console_scripts": ["nnunet-swin=nnunet_swin.cli.main:main"]},
)
