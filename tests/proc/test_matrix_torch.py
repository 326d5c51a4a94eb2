"""test_matrix_torch.py — tests/proc/test_torch.py against trixie's PyTorch (2.6) and
sid's (2.14), each in its cached chroot, both at once (tests/proc/matrix.py says how).
The host's PyTorch (bookworm's 1.13) is test_torch.py's own run.
"""
import sys

import pytest

import matrix

pytestmark = pytest.mark.timeout(1500)


def test_torch_matrix(capsys):
    matrix.pytest_run(capsys, matrix.torch_matrix_all, "the PyTorch matrix")


if __name__ == "__main__":
    sys.exit(matrix.torch_matrix_all())
