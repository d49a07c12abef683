"""A copy of the repository as a fresh clone would have it (tracked and untracked files
that git does not ignore), for tests and tools that must not touch the working tree."""

import shutil
import subprocess


def copy_tree(root, target):
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
