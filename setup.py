"""Packaging: the source folder `engine/` is installed as the package `ratecard`.

The shipped rule sets, schemas and templates travel inside the wheel as `ratecard/_shipped/...`,
copied at build time, so an installed `ratecard` finds them without a source checkout. An editable
install finds them beside the source folder instead (see engine/resources.py).
"""

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

SHIPPED = ("rules", "schemas", "reports")
SHIPPED_FILES = ("ratecard.toml",)


class BuildWithShipped(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            shutil.copytree(name, Path(self.build_lib, "ratecard", "_shipped", name), dirs_exist_ok=True)
        for name in SHIPPED_FILES:
            shutil.copy2(name, Path(self.build_lib, "ratecard", "_shipped", name))


setup(
    packages=["ratecard"] + [f"ratecard.{p}" for p in find_namespace_packages("engine", exclude=["_shipped*", "__pycache__*", "locale*"]) if "__pycache__" not in p],
    package_dir={"ratecard": "engine"},
    cmdclass={"build_py": BuildWithShipped},
)
