"""The player columns the features use, read from the ECB audit's verdicts (never hard-coded).

notebooks/01_ecb_audit measures every column of the old 22-column schema and the 5 flags on both
parse paths and writes the kept names to `reports/audit/audit.json` under `schema`; everything
downstream builds its features from `load_schema`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mmlib.errors import UsageError
from mmlib.features.columns import BY_NAME, FLAGS, OLD_NUMERIC

DEFAULT_AUDIT = Path("reports/audit/audit.json")  # written by notebooks/01_ecb_audit.py


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]  # kept numeric columns, in OLD_NUMERIC order
    flags: tuple[str, ...]  # kept flags, in FLAGS order


def _names(schema: dict, key: str, order: list[str], path: Path) -> tuple[str, ...]:
    names = schema.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{path}: `schema.{key}` must be a list of column names")
    unknown = [n for n in names if n not in BY_NAME or n not in order]
    if unknown:
        raise UsageError(f"{path}: `schema.{key}` names unknown columns {unknown}; known: {order}")
    if names != sorted(names, key=order.index) or len(set(names)) != len(names):
        raise UsageError(f"{path}: `schema.{key}` must list each column once, in the order {order}")
    return tuple(names)


def load_schema(audit_json: Path = DEFAULT_AUDIT) -> FeatureSchema:
    """The kept columns from an audit.json; one-line UsageError if it is missing or malformed."""
    path = Path(audit_json)
    try:
        audit = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no audit at {path}: run notebooks/01_ecb_audit.py first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read the audit {path}: {' '.join(str(e).split())}") from None
    schema = audit.get("schema") if isinstance(audit, dict) else None
    if not isinstance(schema, dict):
        raise UsageError(f"{path} has no `schema` object: is it an audit.json of 01_ecb_audit?")
    return FeatureSchema(
        numeric=_names(schema, "numeric", [c.name for c in OLD_NUMERIC], path),
        flags=_names(schema, "flags", [c.name for c in FLAGS], path),
    )
