"""Print the runtime part of requirements.lock: what `pixwave` needs, without the dev extra.

The lock is resolved with ``--extra dev`` (one lock for developers, CI and images), so the
image must not install all of it. Each entry of the lock names the packages that pulled it in
(``# via``); starting from the ``[project] dependencies`` of pyproject.toml, this keeps every
locked package reachable from them and drops the rest (pytest, mypy, moto …). Entries are
copied whole, hashes included, so the image still installs with ``--require-hashes``.

An entry reachable from a runtime package only through an extra requested by a dev package
is kept: the filter can only err towards a package too many, never one too few (the image
build runs ``pip check`` and imports every entry point to prove it).

Usage: python runtime_requirements.py requirements.lock pyproject.toml > runtime.lock
Standard library only: it runs in the bare builder image before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PROJECT = "pixwave"


def normalize(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar` and `foo-bar` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """Each locked package: (its whole entry, the packages it is required by)."""
    entries: dict[str, tuple[str, set[str]]] = {}
    current: str | None = None
    lines: list[str] = []
    parents: set[str] = set()
    in_via = False

    def close() -> None:
        if current is not None:
            entries[current] = ("\n".join(lines) + "\n", set(parents))

    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            close()
            current, lines, parents, in_via = normalize(match.group(1)), [line], set(), False
            continue
        if current is None:
            continue  # the header comment
        lines.append(line)
        stripped = line.strip()
        if stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                parents.add(_via_name(rest))
        elif in_via and stripped.startswith("#"):
            parents.add(_via_name(stripped.lstrip("#").strip()))
        else:
            in_via = False
    close()
    return entries


def _via_name(text: str) -> str:
    # "pixwave (pyproject.toml)", "uvicorn", "-r requirements.in": the first word is the name.
    return normalize(text.split()[0])


def runtime_roots(pyproject: dict[str, object]) -> set[str]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    roots = set()
    for requirement in project["dependencies"]:
        match = _REQUIREMENT_NAME.match(requirement)
        assert match, requirement
        roots.add(normalize(match.group(1)))
    return roots


def runtime_entries(lock_text: str, pyproject: dict[str, object]) -> dict[str, str]:
    """The lock entries the runtime needs, by normalised name."""
    entries = parse_lock(lock_text)
    keep = runtime_roots(pyproject) & entries.keys()
    missing = runtime_roots(pyproject) - entries.keys()
    if missing:
        raise SystemExit(f"not in the lock: {', '.join(sorted(missing))}")
    changed = True
    while changed:
        changed = False
        for name, (_, parents) in entries.items():
            if name not in keep and parents & keep:
                keep.add(name)
                changed = True
    return {name: entries[name][0] for name in sorted(keep)}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    lock_text = Path(argv[1]).read_text(encoding="utf-8")
    pyproject = tomllib.loads(Path(argv[2]).read_text(encoding="utf-8"))
    sys.stdout.write(
        "# runtime part of requirements.lock (deploy/docker/runtime_requirements.py)\n"
    )
    sys.stdout.write("".join(runtime_entries(lock_text, pyproject).values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
