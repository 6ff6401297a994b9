"""``python -m trainer`` (and ``torchrun --nproc_per_node N -m trainer ...``) run ``inpaint-train``."""

import sys

from trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
