#!/usr/bin/env python3
"""Runs the real Helm v4 engine (PyPI package helm-python-sdk) on charts/curve-operator.

Used by tests/helm.rs, which does the checking; this script only lints and renders.

    chart.py lint [VALUES_JSON]     lint report as JSON
    chart.py render [VALUES_JSON]   {"template path": "rendered text"} as JSON
    chart.py crds                   the chart's CRD files as JSON [{"name", "data"}]
    chart.py manifest               deploy/operator.yaml: the default render as one YAML stream

A failing render prints Helm's message on stderr and exits 1. A missing helm-python-sdk exits 3.
"""

import json
import sys
from pathlib import Path

try:
    import helm_python as helm
except ImportError:
    sys.stderr.write("helm-python-sdk is not installed: pip install helm-python-sdk\n")
    sys.exit(3)

CHART = Path(__file__).resolve().parents[2] / "charts" / "curve-operator"
RELEASE = "curve-operator"
NAMESPACE = "curve-system"


def lint(values):
    return helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)


def render(values):
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def crds():
    with helm.Chart.load(str(CHART)) as chart:
        return [{"name": c["name"], "data": c["data"]} for c in chart.crds]


# kubectl applies in file order: identities and permissions before the pods that use them.
APPLY_ORDER = [
    "serviceaccount.yaml",
    "rbac.yaml",
    "service.yaml",
    "deployment.yaml",
    "poddisruptionbudget.yaml",
    "servicemonitor.yaml",
    "dashboards.yaml",
]


def apply_rank(path):
    name = path.rsplit("/", 1)[-1]
    return (APPLY_ORDER.index(name) if name in APPLY_ORDER else len(APPLY_ORDER), path)


def manifest():
    """What `helm template` prints, less NOTES.txt and empty templates, in apply order."""
    header = (
        "# curve-operator with the chart's default values, for `kubectl apply` without Helm.\n"
        "# Apply crds/ first and create the namespace curve-system.\n"
        "# Generated: python3 tests/helm/chart.py manifest > deploy/operator.yaml\n"
    )
    parts = [
        f"---\n# Source: {path}\n{text.strip()}\n"
        for path, text in sorted(render(None).items(), key=lambda item: apply_rank(item[0]))
        if not path.endswith("NOTES.txt") and text.strip()
    ]
    return header + "".join(parts)


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    values = json.loads(argv[2]) if len(argv) > 2 else None
    try:
        if command == "lint":
            print(json.dumps(lint(values)))
        elif command == "render":
            print(json.dumps(render(values)))
        elif command == "crds":
            print(json.dumps(crds()))
        elif command == "manifest":
            sys.stdout.write(manifest())
        else:
            sys.stderr.write(__doc__)
            return 2
    except helm.HelmError as err:
        sys.stderr.write(f"{type(err).__name__}: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
