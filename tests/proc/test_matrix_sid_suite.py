"""test_matrix_sid_suite.py — the project built from a copy of the checkout in Debian
sid (GCC 16, glibc 2.43), warning-free, and its own suite run there (all but what
tests/proc/matrix.py's SUITE_EXCLUDES lists, each with its reason).
# tests/run: timeout 1800
"""
import sys

import matrix

if __name__ == "__main__":
    sys.exit(matrix.sid_suite())
