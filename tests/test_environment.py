"""The conda environment file must not drift from the dependencies in pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

_REQ = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$")


def _parse(req: str) -> tuple[str, tuple[str, ...], str]:
    m = _REQ.match(req)
    assert m, f"cannot parse requirement {req!r}"
    name = m.group(1).lower().replace("_", "-")
    extras = tuple(e.strip() for e in (m.group(2) or "[]")[1:-1].split(",") if e.strip())
    return name, extras, m.group(3).replace(" ", "")


def _declared(project_root) -> dict[str, str]:
    meta = tomllib.loads((project_root / "pyproject.toml").read_text())["project"]
    out: dict[str, str] = {}
    for req in meta["dependencies"] + meta["optional-dependencies"]["test"]:
        name, extras, spec = _parse(req)
        out[name] = spec
        # conda splits extras into packages of their own (dask[distributed] -> distributed)
        for extra in extras:
            out[extra] = spec
    return out


def _conda(project_root) -> tuple[dict[str, str], dict]:
    env = yaml.safe_load((project_root / "environment.yml").read_text())
    out: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, _, spec = _parse(dep.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", dep) else dep)
            out[name] = spec
    return out, env


def test_environment_yml_is_a_conda_file(project_root):
    _, env = _conda(project_root)
    assert env["name"] == "salesplan"
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert "pip" in deps


def test_environment_yml_matches_pyproject(project_root):
    declared = _declared(project_root)
    conda, _ = _conda(project_root)
    conda.pop("python")
    conda.pop("pip")
    assert set(conda) == set(declared), (
        f"environment.yml and pyproject.toml list different packages: "
        f"only in environment.yml {sorted(set(conda) - set(declared))}, "
        f"only in pyproject.toml {sorted(set(declared) - set(conda))}"
    )
    for name, spec in declared.items():
        assert conda[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml says {conda[name]!r}"


def test_lock_pins_every_declared_package(project_root):
    pinned = {}
    for lock in ("requirements.lock", "requirements-test.lock"):
        for line in (project_root / lock).read_text().splitlines():
            if "==" in line:
                name, version = line.split("==", 1)
                pinned[name.lower().replace("_", "-")] = version
    missing = sorted(set(_declared(project_root)) - set(pinned))
    assert not missing, f"requirements locks do not pin {missing}; run `make lock`"
