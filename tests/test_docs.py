"""The README and docs/ are tested: every command names real flags and real paths, the README's
Python snippets run, and no text points outside the repository or reads like a lab notebook."""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOCS = ["README.md", *sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))]

# absl's own flags, accepted by every tool, and the shared --debug of keras_wideresnet/cli/_app.py.
_ABSL_FLAGS = {"help", "helpfull", "helpshort", "helpxml", "verbosity", "v", "logtostderr",
               "alsologtostderr", "log_dir", "stderrthreshold", "showprefixforinfo", "flagfile",
               "undefok", "only_check_args", "pdb", "pdb_post_mortem", "run_with_pdb",
               "run_with_profiling", "profile_file", "use_cprofile_for_profiling", "debug"}
_TOOL = re.compile(r"^(?:python3? (?:tools/(\w+)\.py|-m keras_wideresnet\.cli\.(\w+))|keras-wideresnet-([\w-]+))$")
_PATH_ROOTS = ("gin_configs/", "docs/", "tools/", "keras_wideresnet/", "tests/", ".ci/")


def _code_blocks(path: str, languages: tuple[str, ...]) -> list[str]:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        text = f.read()
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if m.group(1) in languages]


def _commands(block: str) -> list[list[str]]:
    """Shell commands of a block as word lists: continuation lines joined, comments dropped,
    split at ``&&``, ``|`` and ``;`` outside quotes."""
    out = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in lexer:
            if token in ("&&", "|", ";", "||", "&"):
                out.append(words)
                words = []
            else:
                words.append(token)
        out.append(words)
    return [w for w in out if w]


def _tool_source(tool: str) -> str:
    """The module that defines a tool's flags: the package's CLIs, and the checkout-only
    benchmark harness."""
    if tool == "benchmark":
        return os.path.join(REPO, "tools", "benchmarking", "cli.py")
    return os.path.join(REPO, "keras_wideresnet", "cli", f"{tool}.py")


def _tool_flags(tool: str) -> dict[str, bool]:
    """The flags a CLI module defines (name -> is boolean), read from its source: the modules
    define clashing absl flags, so they cannot all be imported into one process."""
    with open(_tool_source(tool), encoding="utf-8") as f:
        source = f.read()
    found = {m.group(2): m.group(1) == "bool"
             for m in re.finditer(r'flags\.DEFINE_(\w+)\(\s*"(\w+)"', source)}
    return {**{name: name == "debug" for name in _ABSL_FLAGS}, **found}


def _tool_invocations() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in _code_blocks(doc, ("bash", "sh", "shell", "")):
            try:
                commands = _commands(block)
            except ValueError as e:
                raise AssertionError(f"{doc}: cannot parse a shell block: {e}\n{block}") from e
            for words in commands:
                for i in range(len(words)):
                    m = _TOOL.match(" ".join(words[:i + 1]))
                    if m:
                        tool = m.group(1) or m.group(2) or m.group(3).replace("-", "_")
                        found.append((doc, tool, words[i + 1:]))
                        break
    return found


def test_docs_name_tools_at_all():
    tools = {tool for _, tool, _ in _tool_invocations()}
    assert {"train", "evaluate", "predict", "export", "convert_weights", "create_tfrecords",
            "analyze_paths", "benchmark"} <= tools, tools


@pytest.mark.parametrize("doc,tool,args", _tool_invocations(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_documented_flag_exists(doc, tool, args):
    assert os.path.exists(_tool_source(tool)), (doc, tool)
    defined = _tool_flags(tool)
    for arg in args:
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name in defined:
            continue
        assert name.startswith("no") and defined.get(name[2:]), \
            f"{doc}: `{tool}` has no flag --{name} (in {' '.join(args)!r})"


def _mentioned_paths(doc: str) -> set[str]:
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
        text = f.read()
    paths = set()
    for m in re.finditer(r"(?<![\w/.:-])((?:%s)[\w./-]*\w)" % "|".join(map(re.escape, _PATH_ROOTS)), text):
        paths.add(m.group(1))
    for m in re.finditer(r"--gin_file=([\w./-]+\.gin)", text):
        gin = m.group(1)
        paths.add(gin if gin.startswith("gin_configs/") or os.path.isabs(gin) else f"gin_configs/{gin}")
    for m in re.finditer(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):  # relative markdown links
        paths.add(os.path.normpath(os.path.join(os.path.dirname(doc), m.group(1))))
    return {p for p in paths if not os.path.isabs(p)}


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_in_the_docs_exists(doc):
    missing = sorted(p for p in _mentioned_paths(doc)
                     if not glob.glob(os.path.join(REPO, p.replace("<", "*").replace(">", "*"))))
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def _readme_snippets() -> list[str]:
    return [b for b in _code_blocks("README.md", ("python",))]


def test_readme_python_snippets_run(tmp_path):
    """Every README snippet runs as written, with the family's constructors shrunk to 1/32 width
    (the same layers and names; full-size models are built and checked elsewhere). A snippet
    whose first line is ``# needs: ...`` uses the user's own files: it is compiled only."""
    snippets = _readme_snippets()
    assert snippets
    prelude = (
        "import functools\n"
        "from keras_wideresnet import applications as _a\n"
        "for _name in ('ResNet38', 'ResNet20', 'ResNet16', 'ResNet38Segmenter'):\n"
        "    setattr(_a, _name, functools.partial(getattr(_a, _name), width_multiplier=1 / 32))\n"
    )
    for snippet in snippets:
        compile(snippet, "README.md", "exec")
        if snippet.startswith("# needs:"):
            continue
        proc = subprocess.run([sys.executable, "-c", prelude + snippet], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert proc.returncode == 0, f"README snippet failed:\n{snippet}\n{proc.stderr[-3000:]}"


# Lab-notebook history and pointers to files that are not in the repository.
_FORBIDDEN = [
    (r"\b[Ss]ession \d", "session history"),
    (r"\bissues? #\d", "tracker numbers"),
    (r"\bruns? [A-M]\d?\b(?![-\w])", "run letters"),
    (r"\bsince last time\b", "history"),
    # Notes kept beside the checkout, which do not ship: a citation must resolve in the repository.
    (r"\bspec\s\u00a7|\b(?:environment|paper|ecosystem)\.md\b|\.\./" + "shared", "a file outside the repository"),
]
_SCANNED = ("README.md", "docs", "keras_wideresnet", "tools", "gin_configs")


def _scanned_files() -> list[str]:
    files = []
    for root in _SCANNED:
        path = os.path.join(REPO, root)
        if os.path.isfile(path):
            files.append(path)
            continue
        for dirpath, _, names in os.walk(path):
            files += [os.path.join(dirpath, n) for n in names
                      if n.endswith((".py", ".md", ".gin", ".txt", ".json")) and "__pycache__" not in dirpath]
    return files


def test_no_history_or_private_references():
    hits = []
    for path in _scanned_files():
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                for pattern, what in _FORBIDDEN:
                    if re.search(pattern, line):
                        hits.append(f"{os.path.relpath(path, REPO)}:{number}: {what}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits[:60])
