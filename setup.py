"""The one build step pyproject.toml cannot express: ship the start-up hook.

``momento_botocore.pth`` must sit at the top of site-packages (Python only reads
``.pth`` files there), both for ``pip install .`` and for ``pip install -e .``.
"""

from __future__ import annotations

import os
from typing import ClassVar

from setuptools import Command, setup
from setuptools.command.build import build

PTH = "momento_botocore.pth"


class build_pth(Command):
    """Put the .pth file beside the top-level packages of the wheel."""

    description = "copy momento_botocore.pth to the top level of the wheel"
    user_options: ClassVar[list[tuple[str, str | None, str]]] = []
    editable_mode = False  # set by setuptools for `pip install -e`

    def initialize_options(self) -> None:
        self.build_lib: str | None = None

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def run(self) -> None:
        if self.editable_mode:
            # An editable wheel takes its top-level files from the directory that
            # setuptools prepares as the install target, not from build_lib.
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        assert target is not None
        self.copy_file(PTH, os.path.join(target, PTH))

    def get_outputs(self) -> list[str]:
        if self.editable_mode or self.build_lib is None:
            return []
        return [os.path.join(self.build_lib, PTH)]

    def get_source_files(self) -> list[str]:
        return [PTH]

    def get_output_mapping(self) -> dict[str, str]:
        return {}


class build_with_pth(build):
    sub_commands: ClassVar[list[tuple[str, object]]] = [*build.sub_commands, ("build_pth", None)]


setup(cmdclass={"build": build_with_pth, "build_pth": build_pth})
