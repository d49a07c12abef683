"""The documentation against itself and the code.

Every relative link names a file of the repo and its ``#anchor`` a heading of that file
(as GitHub renders it); every repo path the code, the docs or the deploy files mention
exists. Every setting, log event and metric is documented, and what the docs state twice
cannot disagree: a setting's default wherever a page restates it and in
``boot/settings.py``, a benchmark target's verdict in docs/benchmarks.md and in the page
the script saved. A renamed heading or a contradiction fails here, not in a reader's head.
"""

import functools
import re
from pathlib import Path

import pytest
from configurations.values import Value

from boot import config
from boot import settings as configurations
from portal.observability import EVENTS

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", "var", ".git", "node_modules"}
MENTIONED_IN = ("README.md", "Makefile", ".ci", "boot", "portal", "deploy", "docs", "bench")
REPO_PATH = re.compile(
    r"(?<![\w/.-])(?:docs|deploy|bench|tests|portal|boot)/[\w./-]+"
    r"\.(?:md|py|conf|cfg|ya?ml|service|sh|txt|example)\b"
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOCS = ROOT / "docs"
COMPARABLE = (config.IntValue, config.FloatValue, config.BoolValue, config.ChoiceValue)
VERDICT_WORDS = re.compile(r"\b(missed|not met|met)\b", re.I)
# `NAME` (V), `NAME` (default V…), `NAME` (V by default): a restated default.
RESTATED_DEFAULT = re.compile(
    r"`([A-Z][A-Z0-9_]+)` \((?:default `?(?P<a>\d[\d.]*(?: ?[KMGT]i?B)?)`?[,;)]"
    r"|`?(?P<b>\d[\d.]*(?: ?[KMGT]i?B)?)`?(?: s| by default)?\))"
)
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


def table_rows(text, first_cell=r"`"):
    """The cells of the markdown table rows whose first cell starts with ``first_cell``."""
    for line in text.splitlines():
        if re.match(rf"^\| {first_cell}", line):
            yield [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def setting_values():
    """``{name: Value}`` of every environment-read setting, the Prod one where it differs."""
    found = {}
    for cls in (configurations.Base, configurations.Dev, configurations.Test, configurations.Prod):
        found.update({k: v for k, v in vars(cls).items() if isinstance(v, Value)})
    return found


def documented_defaults():
    """``{variable: first backticked word of its default}`` from configuration.md's table."""
    defaults = {}
    for cells in table_rows((DOCS / "configuration.md").read_text()):
        first = re.match(r"`([^`]+)`", cells[1])
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            defaults[name] = first.group(1) if first else None
    return defaults


def parsed(value, text):
    try:
        return value.to_python(text.replace(" ", ""))
    except ValueError:
        return None


def test_every_setting_is_in_the_configuration_table():
    assert set(setting_values()) - set(documented_defaults()) == set()


def test_the_table_states_the_defaults_of_boot_settings():
    values, wrong = setting_values(), []
    for name, text in documented_defaults().items():
        value = values.get(name)
        if isinstance(value, COMPARABLE) and text is not None:
            stated = parsed(value, text)
            if stated is not None and stated != value.default:
                wrong.append(f"{name}: table says {text}, boot/settings.py {value.default!r}")
    assert wrong == []


def contradicted_defaults(pages):
    values, table = setting_values(), documented_defaults()
    for page in pages:
        for match in RESTATED_DEFAULT.finditer(FENCE.sub("", page.read_text())):
            name, stated = match.group(1), match.group("a") or match.group("b")
            if name in values and table.get(name):
                ours = parsed(values[name], stated)
                if ours is not None and ours != parsed(values[name], table[name]):
                    yield f"{page.name}: {name} ({stated}), table {table[name]}"


def test_a_default_restated_elsewhere_agrees_with_the_table():
    assert list(contradicted_defaults(markdown_files())) == []


def test_the_default_check_sees_a_planted_contradiction(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Drain for `PORTAL_DRAIN_SECONDS` (default 30) and `PORTAL_CHUNK_SIZE` (8 MiB)."
    )
    assert [line.split(":")[1] for line in contradicted_defaults([page])] == [
        " PORTAL_DRAIN_SECONDS (30), table 10"
    ]


def test_every_log_event_is_in_the_vocabulary_table():
    rows = table_rows((DOCS / "logging.md").read_text())
    assert {cells[0].strip("`") for cells in rows if "." in cells[0]} == set(EVENTS)


def test_every_metric_is_documented():
    sources = [*(ROOT / "portal" / "metrics").glob("*.py"), ROOT / "portal" / "health" / "views.py"]
    code = " ".join(path.read_text() for path in sources)
    metrics = set(re.findall(r'(?:Counter|Gauge|Histogram|_gauge)\(\s*"(portal_[a-z_]+)"', code))
    text = (DOCS / "operations.md").read_text()
    assert len(metrics) >= 25
    assert sorted(m for m in metrics if f"`{m}" not in text) == []


def test_every_alert_has_its_runbook_row():
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    alerts = re.findall(r"alert: (\w+)", rules)
    text = (DOCS / "operations.md").read_text()
    assert len(alerts) >= 10
    assert [alert for alert in alerts if f"| `{alert}` |" not in text] == []


def missed_targets(pages):
    """The threshold of every target a saved bench page printed as MISSED."""
    for page in pages:
        for line in (DOCS / page).read_text().splitlines():
            if "MISSED" in line:
                yield float(re.search(r"[<>]=\s*([\d.]+)", line).group(1))


def verdict_contradictions(text):
    for cells in table_rows(text):
        pages = re.findall(r"\]\((benchmarks/[\w.-]+\.md)\)", cells[0])
        verdict = cells[-1]
        stated = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", verdict)}
        missed = set(missed_targets(pages))
        if missed and not verdict.startswith("missed"):
            yield f"{cells[0]}: the saved page says missed, the table '{verdict}'"
        elif not missed and "missed" in verdict.lower():
            yield f"{cells[0]}: the saved page says met, the table '{verdict}'"
        elif missed - stated:
            yield f"{cells[0]}: the verdict does not name the missed {sorted(missed - stated)}"


def test_a_benchmark_verdict_agrees_with_its_saved_page():
    text = (DOCS / "benchmarks.md").read_text()
    assert len(list(table_rows(text))) >= 10
    assert list(verdict_contradictions(text)) == []


def verdicts_outside_the_table(page):
    """Verdict words of ``page`` outside the verdict column (benchmarks.md) and code spans."""
    text = page.read_text()
    if page.name == "benchmarks.md":
        text = "\n".join(line for line in text.splitlines() if not line.startswith("| `"))
    return VERDICT_WORDS.findall(re.sub(r"`[^`]*`", "", text))


def test_verdicts_are_given_in_the_table_of_benchmarks_md_only():
    pages = [ROOT / "README.md", *DOCS.glob("*.md")]
    said = {page.name: verdicts_outside_the_table(page) for page in pages}
    assert {name: words for name, words in said.items() if words} == {}


def test_the_verdict_check_sees_a_planted_contradiction():
    row = "| `upload.py` ([upload-s3](benchmarks/upload-s3.md)) | x | y | z | {} |"
    assert list(verdict_contradictions(row.format("missed: copy ≥ 2.0x"))) == []
    assert len(list(verdict_contradictions(row.format("met")))) == 1
    assert len(list(verdict_contradictions(row.format("missed: copy ≥ 3x")))) == 1
    met = "| `dispatch.py` ([d](benchmarks/dispatch.md)) | x | y | z | missed: 0.5x |"
    assert len(list(verdict_contradictions(met))) == 1


def test_a_saved_bench_page_keeps_the_summary_and_counts_what_it_leaves_out():
    from bench.lib import report

    printed = "round 1 portal 300 MB/s\nround 2 portal 310 MB/s\nupload 305 MB/s 1.2x: ok\n"
    assert report.summary(printed) == ("upload 305 MB/s 1.2x: ok", 2)
    variant = "  floor           n=  10000      5.33 s\n"
    assert report.summary(variant + "| floor | 10000 | 5.3 |") == ("| floor | 10000 | 5.3 |", 1)
    assert report.summary(variant + "S3: 1000 objects per request") == (
        variant + "S3: 1000 objects per request",
        0,
    )
