"""End-to-end workflows built from the other subpackages: the CPU demo and its helpers."""
