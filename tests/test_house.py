"""The house: every check in the room it guards, layers that read downward with no import cycle, one
name per idea, and no comment or doc that points at something that does not exist.

These read the source tree (no kernel runs): they fail on a change that breaks the layout, not on a
change of behaviour, which the other tests guard.
"""
import ast
import importlib
import re
import subprocess
from pathlib import Path

import pytest

from fastmix.backends import checks as py_checks

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fastmix"


# -- csrc/checks.h and fastmix/backends/checks.py, name for name -----------------------------------


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def cpp_parameter_names(parameters: str) -> list:
    """The names in a C++ parameter list: the last identifier of each, before any default value."""
    names = []
    for parameter in filter(None, (p.strip() for p in parameters.split(","))):
        names.append(re.findall(r"\w+", parameter.split("=")[0])[-1])
    return names


def cpp_checks() -> dict:
    """csrc/checks.h's inline functions (name -> parameter names) and printer structs (snake_case
    of the struct -> field names)."""
    source = (ROOT / "csrc" / "checks.h").read_text()
    found = {}
    for match in re.finditer(r"^inline\s+[\w:<>&*,\s]+?\b(\w+)\(([^)]*)\)\s*\{", source, re.M):
        found[match.group(1)] = cpp_parameter_names(match.group(2))
    for match in re.finditer(r"^struct (\w+) \{([^}]*)\};", source, re.M):
        fields = [re.findall(r"\w+", line)[-1] for line in match.group(2).split(";") if line.strip()]
        found[match.group(1) if match.group(1) in py_checks.CPP_ONLY else snake_case(match.group(1))] = fields
    return found


def python_checks() -> dict:
    """fastmix/backends/checks.py's public functions (name -> parameter names)."""
    tree = ast.parse((PACKAGE / "backends" / "checks.py").read_text())
    return {node.name: [a.arg for a in node.args.args] for node in tree.body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def test_the_python_checks_of_the_ops_mirror_csrc_checks_h_name_for_name():
    cpp, python = cpp_checks(), python_checks()
    assert set(cpp) - set(python) == set(py_checks.CPP_ONLY), "in csrc/checks.h only"
    assert set(python) - set(cpp) == set(py_checks.PYTHON_ONLY), "in fastmix/backends/checks.py only"
    assert len(cpp) > 25, "the parser found csrc/checks.h's functions"


def test_each_mirrored_check_takes_the_same_arguments_in_the_same_order():
    """C++'s parameters, in order, begin Python's; Python may add trailing ones with defaults
    (``prefix``, ``name``) for the public API's messages."""
    cpp, python = cpp_checks(), python_checks()
    for name in set(cpp) & set(python):
        assert python[name][: len(cpp[name])] == cpp[name], name


def test_every_op_calls_its_one_check_on_every_backend():
    """Each op's check, by name, in the C++ kernels (CPU and CUDA) and the Python backends."""
    kernels = {
        "check_mix_args": ["csrc/cpu/mix_cpu.cpp", "csrc/cuda/mix_cuda.cu", "fastmix/backends/numba/mix_numba.py",
                           "fastmix/backends/reference.py", "fastmix/backends/negative_bit.py"],
        "check_mix_into_args": ["csrc/cpu/mix_into_cpu.cpp", "csrc/cuda/mix_into_cuda.cu",
                                "fastmix/backends/numba/mix_into_numba.py", "fastmix/backends/reference.py",
                                "fastmix/backends/negative_bit.py"],
        "check_collate_mix_args": ["csrc/cpu/mix_into_cpu.cpp", "fastmix/backends/numba/mix_into_numba.py",
                                   "fastmix/backends/reference.py", "fastmix/backends/negative_bit.py"],
        "check_mix_targets_args": ["csrc/cpu/mix_targets_cpu.cpp", "csrc/cuda/mix_targets_cuda.cu",
                                   "fastmix/backends/numba/mix_targets_numba.py", "fastmix/backends/reference.py"],
    }
    for check, files in kernels.items():
        for file in files:
            assert re.search(rf"\b{check}\(", (ROOT / file).read_text()), f"{file} calls {check}"


# -- the import graph ------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
COMPILED = {"fastmix._C"}  # the extension: a module with no imports of fastmix (built or not)


def imports_of(name: str) -> set:
    """The fastmix modules that module ``name`` imports anywhere: at the top, inside functions and
    under TYPE_CHECKING (``from .x import y`` imports the module x.y when y is one, else x)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES or submodule in COMPILED else target)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_import_graph_of_the_package_has_no_cycle():
    """Tarjan's strongly connected components: any of more than one module is a cycle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []
    assert len(GRAPH) > 40 and sum(map(len, GRAPH.values())) > 80, "the walk found the package's imports"


def layer(name: str) -> int:
    """0: the ops' checks and kinds; 1: the backends; 2: what the front ends build on; 3: front ends."""
    if name in ("fastmix.backends.checks", "fastmix.backends.mix_kind"):
        return 0
    if name.startswith("fastmix.backends"):
        return 1
    if name.startswith("fastmix.sampling") or name in ("fastmix.targets", "fastmix.masks", "fastmix.process_local",
                                                       "fastmix.shared_settings", "fastmix.huge_pages",
                                                       "fastmix.shared_pool"):
        return 2
    return 3


def test_the_layers_read_downward():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets if layer(b) > layer(a))
    assert upward == []
    assert GRAPH["fastmix.backends.checks"] == set(), "the ops' checks import nothing of fastmix"


def test_a_cycle_hidden_in_a_function_body_would_be_found(tmp_path):
    """The walk reads imports inside functions (the cycles the old fastmix/checks.py hid there)."""
    source = "def f():\n    from ..mixup import Mixup\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "mixup" and n.level == 2 for n in ast.walk(tree))
    assert "fastmix.mixup" in GRAPH["fastmix.collate"], "a top-level import is an edge"
    assert "fastmix.backends.reference" in GRAPH["fastmix.backends.registry"], "an import inside a function is too"


# -- references in comments and docs ---------------------------------------------------------------

TRACKED = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
TEXT_SUFFIXES = (".py", ".h", ".cpp", ".cu", ".cuh", ".md", ".sh", ".toml", ".txt", ".cfg")
PATH_REFERENCE = re.compile(r"(?<![\w./-])((?:fastmix|csrc|tests|benchmarks|docs|\.ci)/[\w/.-]*\w\.(?:py|h|cpp|cu|cuh|md|sh|json|png|toml))\b")


def text_files():
    """Every tracked text file but this one (which names stale paths on purpose)."""
    for name in TRACKED:
        path = ROOT / name
        if path.suffix in TEXT_SUFFIXES and path.is_file() and path != Path(__file__).resolve():
            yield name, path.read_text(errors="replace")


def test_every_file_a_comment_or_doc_names_exists():
    missing = []
    for name, text in text_files():
        for match in PATH_REFERENCE.finditer(text):
            reference = match.group(1)
            if "<" in reference or "*" in reference:
                continue
            if not (ROOT / reference).exists():
                missing.append(f"{name}: {reference}")
    assert missing == []


DOTTED_REFERENCE = re.compile(r"(?<![\w.])fastmix(?:\.[A-Za-z_]\w*)+")


def resolves(reference: str) -> bool:
    """Whether a dotted name is a module, or an attribute of the longest module prefix."""
    parts = reference.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(value, attribute):
                return False
            value = getattr(value, attribute)
        return True
    return False


def comments_and_docs(name: str, text: str) -> str:
    """The prose of a file: a markdown file whole, the comments and docstrings of code."""
    if name.endswith(".md"):
        return text
    if name.endswith(".py"):
        tree = ast.parse(text)
        docs = [ast.get_docstring(n) or "" for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        return "\n".join(docs + re.findall(r"#.*", text))
    return "\n".join(re.findall(r"//.*", text))


def test_every_module_function_or_class_a_comment_or_doc_names_exists():
    missing = []
    for name, text in text_files():
        for match in DOTTED_REFERENCE.finditer(comments_and_docs(name, text)):
            reference = match.group(0).rstrip(".")
            if reference.endswith(("_py", "_numba")) or not resolves(reference):
                missing.append(f"{name}: {reference}")
    assert missing == []


@pytest.mark.parametrize("stale", ["fastmix/reference.py", "fastmix/checks.py", "csrc/check_params.h"])
def test_the_reference_check_catches_a_stale_path(stale):
    assert PATH_REFERENCE.search(f"// as {stale} does").group(1) == stale
    assert not (ROOT / stale).exists()
