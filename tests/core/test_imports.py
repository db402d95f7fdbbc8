"""core/ is pure maths: it imports nothing from the rest of the package (README → Code map)."""

import ast
from pathlib import Path

import inverse_dvs

PACKAGE = Path(inverse_dvs.__file__).parent


def _imports(path: Path) -> list[str]:
    """Every module a file imports (relative imports as written: leading dots kept)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            out.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_core_imports_nothing_from_the_package():
    files = sorted((PACKAGE / "core").glob("*.py"))
    assert len(files) > 8
    for path in files:
        for module in _imports(path):
            outside = module.startswith("..") or module.startswith("inverse_dvs")
            assert not outside, f"core/{path.name} imports {module}"


def test_layers_import_only_downwards():
    """infra/ and config/ never import models/, pipeline/ or the stage shells; models/ never imports pipeline/."""
    forbidden = {"infra": ("..models", "..pipeline"), "config": ("..models", "..pipeline"), "models": ("..pipeline",)}
    stages = ("depth", "warp", "caption", "invert", "infer", "evaluate", "chain", "preflight")
    for layer, banned in forbidden.items():
        for path in sorted((PACKAGE / layer).glob("*.py")):
            for module in _imports(path):
                assert not module.startswith(banned), f"{layer}/{path.name} imports {module}"
                assert module.lstrip(".") not in stages or not module.startswith(".."), \
                    f"{layer}/{path.name} imports the stage {module}"
