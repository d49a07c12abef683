"""The shape of the code, checked with the standard library's ``ast`` (no imports run).

- no import cycle between the project's modules;
- ``portal`` never imports ``boot`` (settings depend on the app, not the other way round);
- commands and views never import ``portal.storage``: they call a service;
- no module over 400 lines (split it along its seams, as ``services/cleanup/`` is).

Each rule also runs on a small made-up tree, so a rule that could never fire fails here.
"""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("boot", "portal", "tests", "bench")
TOP_FILES = ("manage.py", "gunicorn.conf.py")
MAX_LINES = 400
STORAGE = "portal.storage"


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root, packages=PACKAGES, top_files=TOP_FILES):
    """{module name: path} for every Python file of the project (migrations excluded)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.parts:
                modules[module_name(path, root)] = path
    for name in top_files:
        if (root / name).exists():
            modules[Path(name).stem] = root / name
    return modules


def imported_modules(path, name, known):
    """The project modules ``path`` imports, anywhere in the file, outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def import_graph(modules):
    return {name: imported_modules(path, name, modules) for name, path in modules.items()}


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def portal_importing_boot(graph):
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.split(".")[0] == "portal"
        for target in targets
        if target.split(".")[0] == "boot"
    )


def is_command_or_view(name):
    parts = name.split(".")
    return parts[0] == "portal" and (
        "commands" in parts[:-1] or parts[-1] == "views" or "views" in parts[:-1]
    )


def entry_points_importing_storage(graph):
    return sorted(
        f"{name} imports {STORAGE}"
        for name, targets in graph.items()
        if is_command_or_view(name) and STORAGE in targets
    )


def long_modules(modules, limit=MAX_LINES):
    return sorted(
        f"{name}: {lines} lines"
        for name, path in modules.items()
        if (lines := len(path.read_text().splitlines())) > limit
    )


@pytest.fixture(scope="module")
def project():
    modules = project_modules(ROOT)
    return modules, import_graph(modules)


def test_no_import_cycle(project):
    _, graph = project
    assert cycles(graph) == []


def test_portal_never_imports_boot(project):
    _, graph = project
    assert portal_importing_boot(graph) == []


def test_commands_and_views_reach_storage_through_services(project):
    _, graph = project
    assert entry_points_importing_storage(graph) == []


def test_no_module_is_longer_than_400_lines(project):
    modules, _ = project
    assert long_modules(modules) == []


def test_the_rules_fire_on_a_tree_that_breaks_them(tmp_path):
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
        "portal/management/commands/job.py": (
            "from .. import commands\nfrom portal.storage import x\n"
        ),
        "portal/long.py": "x = 1\n" * (MAX_LINES + 1),
        "boot/__init__.py": "",
        "boot/config.py": "from portal import a\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    modules = project_modules(tmp_path, packages=("portal", "boot"), top_files=())
    graph = import_graph(modules)
    assert cycles(graph) == [["portal.a", "portal.b"]]
    assert portal_importing_boot(graph) == ["portal.uses_boot imports boot.config"]
    assert entry_points_importing_storage(graph) == [
        "portal.management.commands.job imports portal.storage",
        "portal.views.api imports portal.storage",
    ]
    assert long_modules(modules) == [f"portal.long: {MAX_LINES + 1} lines"]
