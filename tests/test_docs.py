"""Every link in the documentation leads somewhere: a relative link names a file of the
repo, and its ``#anchor`` a heading of that file (as GitHub renders it); a path that the
code, the docs or the deploy files mention (``docs/operations.md``, ``deploy/nginx/…``)
exists. A page that moves or a heading that is renamed fails here, not in a reader's
browser."""

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", "var", ".git", "node_modules"}
MENTIONED_IN = ("README.md", "Makefile", ".ci", "boot", "portal", "deploy", "docs", "bench")
REPO_PATH = re.compile(
    r"(?<![\w/.-])(?:docs|deploy|bench|tests|portal|boot)/[\w./-]+"
    r"\.(?:md|py|conf|cfg|ya?ml|service|sh|txt|example)\b"
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def markdown_files():
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
    )


@functools.cache
def anchors(path):
    """The anchors GitHub gives the headings of ``path``: lower case, punctuation dropped,
    spaces as hyphens."""
    text = FENCE.sub("", path.read_text())
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def local_links(path):
    text = FENCE.sub("", path.read_text())
    for target in LINK.findall(text):
        if not re.match(r"^[a-z]+:", target):
            yield target


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_and_a_heading_that_exist(page):
    broken = []
    for target in local_links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_checker_sees_a_broken_file_and_a_broken_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top heading\n[a](missing.md) [b](#top-heading) [c](#nowhere)\n")
    targets = list(local_links(page))
    assert targets == ["missing.md", "#top-heading", "#nowhere"]
    assert anchors(page) == {"top-heading"}


def mentioned_paths():
    for top in MENTIONED_IN:
        base = ROOT / top
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        for path in files:
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            for mention in REPO_PATH.findall(text):
                yield path.relative_to(ROOT), mention


def test_every_repo_path_the_code_and_docs_mention_exists():
    missing = sorted(
        f"{where}: {mention}"
        for where, mention in mentioned_paths()
        if not (ROOT / mention).exists()
    )
    assert missing == []


def test_a_mentioned_path_is_found_but_not_a_server_path():
    text = "see docs/operations.md and /srv/portal/deploy/cron/crontab"
    assert REPO_PATH.findall(text) == ["docs/operations.md"]
