"""`python -m nnunet_swin <command> ...` (and `torchrun -m nnunet_swin pretrain ...`): the `nnunet-swin` console script."""
import sys

from nnunet_swin.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
