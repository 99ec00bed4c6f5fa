"""The folder `nnUNet_extTrainer` points at. It holds one uniquely named shim module, nothing else.

nnU-Net imports every module in this folder as a top-level module while it looks a trainer up by name; the shim
re-exports our trainers from their real package, so the class it finds is the importable, picklable original.
"""
