"""test_matrix_torch.py — tests/proc/test_torch.py against trixie's PyTorch (2.6) and
sid's (2.14), each in its cached chroot, both at once (tests/proc/matrix.py says how).
The host's PyTorch (bookworm's 1.13) is test_torch.py's own run.
# tests/run: timeout 1500
"""
import sys

import matrix

if __name__ == "__main__":
    sys.exit(matrix.torch_matrix_all())
