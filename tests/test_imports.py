"""The import graph of inverse_dvs/: the layers (written once, here and in the README's Code map) import only
downwards, no module imports itself back through others (no circles), core/ and testing/ import nothing from the
package, and the front ends (stage shells, the stage list, chain, studio, scripts, examples) and the tests use
public names only."""

import ast
from pathlib import Path

import pytest

import inverse_dvs

PACKAGE = Path(inverse_dvs.__file__).parent
ROOT = PACKAGE.parent
# bottom → top; a module may import from its own layer's package and from the layers below it
LAYERS = (
    ("core", "testing"),  # pure maths; the tiny checkpoints and the demo scene
    ("infra",),  # plumbing that knows no config
    ("config",),  # pure data and checks (+ the explicit resolve step)
    ("models",),  # model wrappers
    ("pipeline",),  # the method: InverseDVSPipeline
    ("runner",),  # items, records, the stages' command line
    ("depth", "warp", "caption", "invert", "infer", "evaluate", "preflight", "weights"),  # stage shells
    ("stages",),  # the stage list and registry
    ("chain", "launch", "summary", "inspect", "studio", "tiny"),  # front ends
    ("cluster",),  # the Ray backend: a front end over the stages that also prints the summary
)
FRONT_ENDS = {name for layer in LAYERS[6:] for name in layer}


def _unit(module: str) -> str:
    """The layer unit of a module `inverse_dvs.X…`: X (a package or a top-level module); '' for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(unit: str) -> int:
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"inverse_dvs.{unit} is in no layer: add it to LAYERS (and the README's Code map)")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names) of every import of a file, function-level ones included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [a.name for a in node.names]
            if node.level and not node.module:  # `from . import x`: x is a module, or a name of the package
                out += [(f"{module}.{n}", []) if _is_module(f"{module}.{n}") else (module, [n]) for n in names]
            else:
                out.append((module, names))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return [(m, n) for m, n in out if m == "inverse_dvs" or m.startswith("inverse_dvs.")]


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    problems = []
    for path in _files():
        here = _module_name(path)
        if here == "inverse_dvs":
            continue  # the package root re-exports the public names, lazily
        unit = _unit(here)
        for module, _ in _imports(path):
            there = _unit(module)
            if not there or there == unit:
                continue
            if _layer(there) >= _layer(unit):
                problems.append(f"{here} (layer {_layer(unit)}) imports {module} (layer {_layer(there)})")
    assert not problems, "\n".join(problems)


def test_the_import_graph_has_no_circle():
    graph = {}
    modules = {_module_name(p) for p in _files()}
    for path in _files():
        deps = set()
        for module, names in _imports(path):
            for m in (module, *(f"{module}.{n}" for n in names)):
                if m in modules and m != _module_name(path):
                    deps.add(m)
        graph[_module_name(path)] = deps
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d == "inverse_dvs" or d.startswith(m + "."):  # a package importing its own modules, the root's lazy
                continue
            if state.get(d) == 1:
                cycle = trail[trail.index(d):] + [d] if d in trail else [m, d]
                raise AssertionError("import circle: " + " → ".join(cycle))
            if not state.get(d):
                visit(d, [*trail, d])
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m, [m])


def test_core_and_testing_import_nothing_from_the_package():
    for unit in ("core", "testing"):
        files = sorted((PACKAGE / unit).glob("*.py"))
        assert files
        for path in files:
            outside = [m for m, _ in _imports(path) if _unit(m) != unit]
            assert not outside, f"{unit}/{path.name} imports {outside}"


def _private_uses(path: Path) -> list[str]:
    """Private names a file takes from the package: `from inverse_dvs.x import _y`, or `x._y` on a module of it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path) if path.is_relative_to(PACKAGE) else ""
    own = _unit(here) if here else None
    found, aliases = [], {}
    for module, names in _imports(path) if path.is_relative_to(PACKAGE) else []:
        if _unit(module) == own:
            continue
        found += [f"{module}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("inverse_dvs"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                      and not a.name.startswith("__")]
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update({(a.asname or a.name): a.name for a in node.names if a.name.startswith("inverse_dvs")})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                and not node.attr.startswith("__") and node.value.id in aliases:
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return found


def test_front_ends_and_tests_use_public_names_only():
    fronts = [p for p in _files() if _unit(_module_name(p)) in FRONT_ENDS]
    scripts = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "examples").glob("*.py"),
                      *(ROOT / "comfyui").glob("*.py")])  # the ComfyUI node pack too
    tests = sorted(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_imports.py")
    assert len(fronts) > 10 and len(scripts) > 5 and len(tests) > 40
    problems = {str(p.relative_to(ROOT)): u for p in fronts + scripts + tests if (u := _private_uses(p))}
    assert not problems, problems


@pytest.mark.parametrize("source", ['from inverse_dvs import depth\ndepth._body(1, 2)\n',
                                    'from inverse_dvs.warp import _warp_item\n'])
def test_the_private_name_check_can_fail(tmp_path, source):
    bad = tmp_path / "front.py"
    bad.write_text(source)
    assert _private_uses(bad)
