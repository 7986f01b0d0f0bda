"""The platform's layers (docs/architecture.md §1): routes reach the tables and the encoders only through the
core; the core knows no web framework; the store owns every table and depends on no other part; nothing the
product runs imports the dev tooling."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.encoders.test_layering import imported_modules

REPO = Path(__file__).resolve().parents[1]
BENTOS = REPO / "bentos"

RULES = {  # package → module prefixes it must not import
    "bentos/api": ("bentos.store.models", "encoders"),
    "bentos/core": ("bentos.api", "bentoml", "fastapi", "starlette", "bentos.devkit"),
    "bentos/billing": ("bentos.api", "bentoml", "fastapi", "bentos.devkit"),
    "bentos/store": ("bentos.chain", "bentos.core", "bentos.api", "bentos.devkit"),
    "bentos/chain": ("bentos.api", "bentos.core", "bentos.devkit"),
    "bentos/stepfun": ("bentos.api", "bentos.core", "bentos.devkit"),
}
CASES = [(pkg, path) for pkg in RULES for path in sorted((REPO / pkg).rglob("*.py"))]


def _names(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("package", "path"), CASES, ids=[str(p.relative_to(REPO)) for _, p in CASES])
def test_a_layer_imports_only_what_it_may(package: str, path: Path) -> None:
    offending = sorted(m for m in imported_modules(path.read_text()) if _names(m, RULES[package]))
    assert offending == [], f"{path.relative_to(REPO)} imports {offending}"


def test_the_services_and_the_product_never_import_the_dev_tooling() -> None:
    product = [p for p in BENTOS.rglob("*.py") if "devkit" not in p.parts]
    offending = [
        str(p.relative_to(REPO))
        for p in product
        if any(_names(m, ("bentos.devkit",)) for m in imported_modules(p.read_text()))
    ]
    assert offending == []
    assert "bentos/devkit/" in (REPO / "bentofile.yaml").read_text()  # and it stays out of the Bento


def test_the_bento_carries_the_committed_encoder_weights() -> None:
    """The default encoder (fusion) loads encoders/weights/*.pt: a Bento without them cannot start its encoder
    service."""
    import yaml

    include = yaml.safe_load((REPO / "bentofile.yaml").read_text())["include"]
    weights = sorted((REPO / "encoders" / "weights").glob("*.pt"))
    assert weights
    for path in weights:
        relative = path.relative_to(REPO)
        assert any(relative.match(pattern) for pattern in include), f"{relative} is not in the Bento"
