"""The optional native kernel (blpopq._kernel); everything else is in pyproject.toml.

setuptools builds the extension where a C compiler and Python's headers exist and, since it
is ``optional``, installs blpopq without it elsewhere: blpopq then runs on the hashlib kernel
and says so at daemon start. BLPOPQ_NO_NATIVE=1 skips the build on purpose (CI's second pass
tests such an install).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup


def native_extensions() -> list[Extension]:
    if os.environ.get("BLPOPQ_NO_NATIVE", "") not in ("", "0"):
        return []
    # -O3 lets gcc/clang keep the unrolled rounds in registers; MSVC takes its own flags.
    flags = [] if sys.platform == "win32" else ["-O3", "-std=c99", "-Wall", "-Wextra"]
    return [
        Extension("blpopq._kernel", ["blpopq/_kernel.c"], extra_compile_args=flags, optional=True)
    ]


setup(ext_modules=native_extensions())
