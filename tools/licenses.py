"""Check the licenses of Pay2Slay's runtime dependencies and write the NOTICE file.

    python tools/licenses.py check            # exit 1 if a dependency's license is not allowed
    python tools/licenses.py notice -o NOTICE # write the third-party notice

Both read the installed environment: the `pay2slay` distribution's requirements, followed
recursively with their environment markers and extras, give the runtime dependencies, the
packages that end up in the container image. Development tools are not distributed, so they
are not checked. `--extra otel` adds an optional extra (it must be installed).

Policy, for a project under MIT distributed as a container image with its dependencies:

- allowed: permissive licenses (MIT, MIT-0, BSD, ISC, Apache-2.0, PSF-2.0, Zlib, 0BSD,
  Unlicense, CC0-1.0, HPND) and MPL-2.0, whose copyleft covers only the MPL files themselves,
  which Pay2Slay ships unmodified;
- rejected: every GPL-family license (GPL, AGPL and LGPL), because shipping the package inside
  the image would put the image under their terms or add relinking and source-offer duties,
  and any license this script cannot identify.

A license is read from the package's `License-Expression` metadata, else its `License` field,
else its trove classifiers. `REVIEWED` records packages whose metadata is missing or wrong,
with the license a person confirmed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT_DISTRIBUTION = "pay2slay"

ALLOWED = frozenset(
    {
        "0BSD",
        "Apache-2.0",
        "BSD",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "HPND",
        "ISC",
        "MIT",
        "MIT-0",
        "MIT-CMU",
        "MPL-2.0",
        "PSF-2.0",
        "Python-2.0",
        "Unlicense",
        "Zlib",
    }
)

# Distribution name -> (SPDX expression, why it is recorded here). Empty while every
# runtime dependency declares its license in its metadata.
REVIEWED: dict[str, tuple[str, str]] = {}

# Free-text License fields and trove classifiers seen in practice, mapped to SPDX ids.
_ALIASES = {
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "bsd license": "BSD",
    "bsd": "BSD",
    "isc license": "ISC",
    "isc license (iscl)": "ISC",
    "mit license": "MIT",
    "the mit license (mit)": "MIT",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "python software foundation license": "PSF-2.0",
    "psf": "PSF-2.0",
    "psfl": "PSF-2.0",
    "the unlicense (unlicense)": "Unlicense",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
}

_SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
_CLASSIFIER_PREFIX = "License :: "


@dataclass(frozen=True)
class Dependency:
    """One installed runtime dependency and the license found for it."""

    name: str
    version: str
    license: str
    source: str
    home_page: str

    @property
    def allowed(self) -> bool:
        """Whether the license expression is acceptable under the policy."""
        return expression_allowed(self.license)


def expression_allowed(expression: str) -> bool:
    """Return whether an SPDX expression is acceptable.

    `A OR B` needs one acceptable side, `A AND B` needs both. Parentheses group as in SPDX.
    An identifier outside `ALLOWED` (`UNKNOWN` included) is not acceptable.
    """
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    if not tokens:
        return False
    position = 0

    def parse_or() -> bool:
        nonlocal position
        result = parse_and()
        while position < len(tokens) and tokens[position].upper() == "OR":
            position += 1
            right = parse_and()
            result = result or right
        return result

    def parse_and() -> bool:
        nonlocal position
        result = parse_term()
        while position < len(tokens) and tokens[position].upper() == "AND":
            position += 1
            right = parse_term()
            result = result and right
        return result

    def parse_term() -> bool:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"incomplete license expression {expression!r}")
        word = tokens[position]
        position += 1
        if word == "(":
            result = parse_or()
            if position >= len(tokens) or tokens[position] != ")":
                raise ValueError(f"unbalanced parentheses in {expression!r}")
            position += 1
            return result
        # "X WITH exception" keeps the base license's terms for this check.
        if position < len(tokens) and tokens[position].upper() == "WITH":
            position += 2
        return word in ALLOWED

    try:
        allowed = parse_or()
    except ValueError:
        return False
    return allowed and position == len(tokens)


def license_of(distribution: metadata.Distribution) -> tuple[str, str]:
    """Return (SPDX expression, where it came from) for an installed distribution."""
    name = canonicalize_name(distribution.metadata["Name"])
    if name in REVIEWED:
        return REVIEWED[name][0], "reviewed"

    meta = distribution.metadata
    expression = _field(meta, "License-Expression")
    if expression:
        return expression, "License-Expression"

    text = _field(meta, "License")
    if text and "\n" not in text and len(text) <= 80:
        alias = _ALIASES.get(text.lower())
        if alias is not None:
            return alias, "License"
        if all(
            _SPDX_ID.fullmatch(part) or part in ("AND", "OR", "WITH")
            for part in text.replace("(", " ").replace(")", " ").split()
        ):
            return text, "License"

    classifiers = [
        value.removeprefix(_CLASSIFIER_PREFIX).split(" :: ")[-1]
        for value in meta.get_all("Classifier") or []
        if value.startswith(_CLASSIFIER_PREFIX)
    ]
    identifiers = sorted({_ALIASES.get(value.lower(), "UNKNOWN") for value in classifiers})
    if identifiers:
        # Several license classifiers mean the user may choose any of them.
        return " OR ".join(identifiers), "classifiers"
    return "UNKNOWN", "none"


def runtime_dependencies(extras: Iterable[str] = ()) -> list[Dependency]:
    """Return the installed runtime dependencies of `pay2slay`, sorted by name.

    Raises `metadata.PackageNotFoundError` when pay2slay or a required package is missing.
    """
    found: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [(ROOT_DISTRIBUTION, frozenset(extras))]
    visited: set[tuple[str, frozenset[str]]] = set()

    while pending:
        name, wanted_extras = pending.pop()
        key = canonicalize_name(name)
        if (key, wanted_extras) in visited:
            continue
        visited.add((key, wanted_extras))

        distribution = metadata.distribution(name)
        found[key] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if _applies(requirement, wanted_extras):
                pending.append((requirement.name, frozenset(requirement.extras)))

    dependencies = []
    for found_name, distribution in sorted(found.items()):
        if found_name == canonicalize_name(ROOT_DISTRIBUTION):
            continue
        expression, source = license_of(distribution)
        dependencies.append(
            Dependency(
                name=str(distribution.metadata["Name"]),
                version=distribution.version,
                license=expression,
                source=source,
                home_page=_home_page(distribution),
            )
        )
    return dependencies


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    for extra in ("", *sorted(extras)):
        try:
            if requirement.marker.evaluate({"extra": extra}):
                return True
        except UndefinedEnvironmentName:
            return False
    return False


def _home_page(distribution: metadata.Distribution) -> str:
    meta = distribution.metadata
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        if label.strip().lower() in ("source", "source code", "repository", "homepage", "home"):
            return url.strip()
    return _field(meta, "Home-page")


def _field(meta: metadata.PackageMetadata, name: str) -> str:
    values = meta.get_all(name) or []
    return str(values[0]).strip() if values else ""


def render_notice(dependencies: Sequence[Dependency]) -> str:
    """Return the NOTICE text: the project's own notice, then one entry per dependency."""
    lines = [
        "Pay2Slay",
        "Copyright (c) 2026 Pay2Slay developers",
        "Licensed under the MIT License; see LICENSE.",
        "",
        "This file is generated by `python tools/licenses.py notice -o NOTICE` (make",
        "supply-chain) from the installed runtime dependencies; do not edit it by hand.",
        "",
        "The Pay2Slay container image and installations of the pay2slay package include the",
        "following third-party packages, each under its own license. Their license texts are",
        "in each package's installed metadata (the .dist-info directory) and at the listed",
        "project pages.",
        "",
    ]
    for dependency in dependencies:
        lines.append(f"{dependency.name} {dependency.version}")
        lines.append(f"  License: {dependency.license}")
        if dependency.home_page:
            lines.append(f"  Project: {dependency.home_page}")
        lines.append("")
    return "\n".join(lines)


def _print_table(dependencies: Sequence[Dependency]) -> None:
    width = max(len(f"{d.name} {d.version}") for d in dependencies)
    for dependency in dependencies:
        verdict = "ok" if dependency.allowed else "REJECTED"
        label = f"{dependency.name} {dependency.version}"
        print(f"{label:<{width}}  {verdict:<8}  {dependency.license}  ({dependency.source})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `check` or `notice`; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "notice"])
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        help="also check the packages of this optional extra, which must be installed",
    )
    parser.add_argument("-o", "--output", type=Path, help="file for the notice (default stdout)")
    args = parser.parse_args(argv)

    try:
        dependencies = runtime_dependencies(args.extra)
    except metadata.PackageNotFoundError as error:
        print(f"license check failed: package {error} is not installed", file=sys.stderr)
        return 2

    if args.command == "notice":
        text = render_notice(dependencies)
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.write_text(text, encoding="utf-8")
        return 0

    _print_table(dependencies)
    rejected = [d for d in dependencies if not d.allowed]
    if rejected:
        names = ", ".join(f"{d.name} ({d.license})" for d in rejected)
        print(
            f"license check failed: {len(rejected)} runtime dependencies have a license that "
            f"is not allowed or not identified: {names}. Replace the package, or confirm its "
            "license and add it to REVIEWED in tools/licenses.py.",
            file=sys.stderr,
        )
        return 1
    print(f"license check passed: {len(dependencies)} runtime dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
