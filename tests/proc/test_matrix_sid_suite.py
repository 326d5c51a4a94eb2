"""test_matrix_sid_suite.py — the project built from a copy of the checkout in Debian
sid (GCC 16, glibc 2.43), warning-free, and its own suite run there (all but what
tests/proc/matrix.py's SUITE_EXCLUDES lists, each with its reason).
"""
import sys

import pytest

import matrix

pytestmark = pytest.mark.timeout(1800)


def test_sid_suite(capsys):
    matrix.pytest_run(capsys, matrix.sid_suite, "the sid build and suite")


if __name__ == "__main__":
    sys.exit(matrix.sid_suite())
