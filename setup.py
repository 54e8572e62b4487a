"""The wheel's build step (the metadata is in pyproject.toml): an installed quicctl carries
the kernel sources (with the UAPI header) and the test keys as package data, quicctl/_data, so
that `quicctl build`, `load` and `dkms` and the default keys work without a checkout."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TOP = Path(__file__).resolve().parent
DATA_DIRS = ("kernel", "keys")
# Build products of an in-tree kbuild never go into the wheel.
ARTIFACTS = ("*.o", "*.ko", "*.mod", "*.mod.c", "*.cmd", ".*.cmd", "*.o.d", ".*.o.d",
             "modules.order", "Module.symvers", ".tmp_versions", "__pycache__")  # fmt: skip


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        dest = Path(self.build_lib) / "quicctl" / "_data"
        for name in DATA_DIRS:
            if (dest / name).exists():
                shutil.rmtree(dest / name)
            shutil.copytree(TOP / name, dest / name, ignore=shutil.ignore_patterns(*ARTIFACTS))


setup(cmdclass={"build_py": BuildPyWithData})
