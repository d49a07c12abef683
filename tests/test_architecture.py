"""The shape of the code.

The layering rules are import-linter contracts in ``setup.cfg`` (no import cycle, the app
never imports the settings package, commands and views reach storage through a
service); here they are run, and run once more on a small made-up tree that breaks each
of them, so a contract that could never fire fails. No module is over 400 lines: split it
along its seams, as ``services/cleanup/`` is.
"""

import configparser
import subprocess

from tests.conftest import ROOT

LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"
PACKAGES = ("boot", "portal", "tests", "bench")
TOP_FILES = ("manage.py", "gunicorn.conf.py")
MAX_LINES = 400


def lint_imports(cwd, *args):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def project_files(root, packages=PACKAGES, top_files=TOP_FILES):
    """Every Python file of the project (migrations excluded)."""
    files = [root / name for name in top_files if (root / name).exists()]
    for package in packages:
        files += [p for p in sorted((root / package).rglob("*.py")) if "migrations" not in p.parts]
    return files


def long_modules(root, files, limit=MAX_LINES):
    return sorted(
        f"{path.relative_to(root)}: {lines} lines"
        for path in files
        if (lines := len(path.read_text().splitlines())) > limit
    )


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_no_module_is_longer_than_400_lines():
    assert long_modules(ROOT, project_files(ROOT)) == []


def test_the_contracts_fire_on_a_tree_that_breaks_them(tmp_path):
    files = {
        "portal/__init__.py": "",
        "portal/storage.py": "",
        "portal/a.py": "from portal import b\n",
        "portal/b.py": "def f():\n    from portal.a import thing\n",
        "portal/uses_boot.py": "import boot.config\n",
        "portal/views/__init__.py": "",
        "portal/views/api.py": "from portal import storage\n",
        "portal/management/__init__.py": "",
        "portal/management/commands/__init__.py": "",
        "portal/management/commands/job.py": "from portal.storage import x\n",
        "portal/long.py": "x = 1\n" * (MAX_LINES + 1),
        "boot/__init__.py": "",
        "boot/config.py": "",
        "tests/__init__.py": "",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    contracts = configparser.ConfigParser()
    for section in config.sections():
        if section.startswith("importlinter"):
            contracts[section] = dict(config[section])
    with open(tmp_path / ".importlinter", "w") as out:
        contracts.write(out)

    result = lint_imports(tmp_path, "--config", ".importlinter")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 3 broken." in result.stdout
    assert "No cycles are allowed in portal." in result.stdout
    assert "- .b -> .a" in result.stdout or "- .a -> .b" in result.stdout
    assert "portal.uses_boot -> boot.config" in result.stdout
    assert "portal.views.api -> portal.storage" in result.stdout
    assert "portal.management.commands.job -> portal.storage" in result.stdout
    assert long_modules(tmp_path, project_files(tmp_path, ("portal",), ())) == [
        f"portal/long.py: {MAX_LINES + 1} lines"
    ]
