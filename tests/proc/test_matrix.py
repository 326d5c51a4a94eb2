"""test_matrix.py — the PyTorch matrix (tests/proc/matrix.py says how): test_torch.py
against trixie's PyTorch (2.6) and sid's (2.14), each in its cached chroot, and the
project built warning-free in sid with its own suite run there; the three at once.
The host's PyTorch (bookworm's 1.13) is test_torch.py's own run.

    python3 tests/proc/test_matrix.py [torch-trixie] [torch-sid] [sid-suite]
"""
import sys

import pytest

import matrix

pytestmark = pytest.mark.timeout(1800)


def test_matrix(capsys):
    matrix.pytest_run(capsys, "the PyTorch matrix")


if __name__ == "__main__":
    sys.exit(matrix.main(sys.argv[1:]))
