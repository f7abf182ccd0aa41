"""Tables and figures of the ECB audit, for notebooks/01_ecb_audit.py.

Every function reads the audit's dict: `audit.run_audit`'s result or `audit.json` loaded back
(whose keys are sorted; columns are shown in schema order either way). Nothing here measures or
decides: the figures and verdicts are `audit`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmlib.features.audit import AUDITED, GATES, SUBNORMAL_LIMIT, version_key
from mmlib.features.columns import OLD_NUMERIC


def _names(audit: dict) -> list[str]:
    """The audited columns in schema order."""
    return [c.name for c in AUDITED if c.name in audit["columns"]]


def _by_version(audit: dict, name: str, path: str) -> dict[str, dict]:
    """A column's figures per version on one path ("libmelee" or "peppi")."""
    return audit["columns"][name][path]["by_version"]


# --- tables -------------------------------------------------------------------------------------


def verdict_table(audit: dict) -> pd.DataFrame:
    """One line per audited column: verdict, non-zero shares on both paths, the reason."""
    rows = []
    for name in _names(audit):
        col = audit["columns"][name]
        lm, pp = col["libmelee"]["all"], col["peppi"]["all"]
        aliased = sorted({f["aliased_to"] for f in col["libmelee"]["by_version"].values()} - {None})
        rows.append(
            {
                "column": name,
                "verdict": col["verdict"],
                "libmelee_nonzero": lm["nonzero_share"],
                "libmelee_distinct": lm["distinct"],
                "libmelee_subnormal": lm.get("subnormal_share"),
                "aliased_to": ", ".join(aliased),
                "peppi_nonzero": pp["nonzero_share"] if pp else None,
                "reason": col["reason"],
            }
        )
    return pd.DataFrame(rows).set_index("column")


def version_table(audit: dict, name: str, path: str = "libmelee") -> pd.DataFrame:
    """A column's figures per Slippi version on one path (SPEC 2.2's table, measured)."""
    rows = {}
    for v, f in _by_version(audit, name, path).items():
        alias = f.get("alias", {}).get(f.get("aliased_to"), {})
        rows[v] = {k: f.get(k) for k in ("rows", "nonzero_share", "distinct", "min", "max", "nan")}
        rows[v] |= {"subnormal_share": f.get("subnormal_share"), "aliased_to": f.get("aliased_to")}
        rows[v] |= {"alias_equal": alias.get("equal"), "alias_rows": alias.get("rows")}
    return pd.DataFrame.from_dict(rows, orient="index")


def all_versions_table(audit: dict, names: list[str], path: str = "libmelee") -> pd.DataFrame:
    """Some columns' figures on one path, all versions together: one line per column."""
    figures = {name: audit["columns"][name][path]["all"] for name in names}
    return pd.DataFrame(figures).T[["rows", "nonzero_share", "distinct", "min", "max", "nan"]]


def agreement_table(audit: dict) -> pd.DataFrame:
    """Share of aligned rows where libmelee's value equals libmelee's reading of the ingest's
    fields, column x version; columns never cross-checked are left out."""
    table = {
        v: {
            name: _by_version(audit, name, "libmelee").get(v, {}).get("agrees_with_peppi")
            for name in _names(audit)
        }
        for v in audit["version_order"]
    }
    return pd.DataFrame(table).dropna(how="all")


def gate_table(audit: dict) -> pd.DataFrame:
    """Non-zero share of each gated column (audit.GATES) on the libmelee path where its gate
    flag is clear, version x column, with all versions together as the last line."""
    table = {}
    for name in GATES:
        col = audit["columns"][name]["libmelee"]
        table[name] = {v: f.get("nonzero_outside_gate") for v, f in col["by_version"].items()}
        table[name]["all"] = col["all"].get("nonzero_outside_gate")
    return pd.DataFrame(table)


def share_matrix(audit: dict, path: str) -> pd.DataFrame:
    """Non-zero share, audited column x Slippi version, on one path (NaN: not recorded)."""
    table = {
        v: {
            name: _by_version(audit, name, path).get(v, {}).get("nonzero_share")
            for name in _names(audit)
        }
        for v in audit["version_order"]
    }
    return pd.DataFrame(table, dtype=float)


def ingest_field_table(audit: dict) -> pd.DataFrame:
    """Non-zero share of every ingest field per version (NaN where the version does not record
    it), with the version that first records it."""
    fields = audit["ingest_fields"]
    table = pd.DataFrame(
        {
            name: {
                v: f["nonzero_share"] if f["recorded"] else None
                for v, f in field["by_version"].items()
            }
            for name, field in fields.items()
        },
        dtype=float,
    ).T
    table = table[sorted(table.columns, key=version_key)]
    table.insert(0, "since", [f["since"] for f in fields.values()])
    return table


# --- figures ------------------------------------------------------------------------------------

NOT_RECORDED = "#cccccc"  # heat-map cells with no figure: the field is not recorded, or no rows


def plot_nonzero_share(audit: dict, axes) -> None:
    """Heat maps of the non-zero share, column x version, libmelee beside peppi, coloured and
    written in percent, with a key below. Grey: not recorded (peppi) or no rows; red text: mostly
    subnormal (integer bits), `=`: aliased. Draws the key with `fig.legend(loc="outside ...")`,
    so the figure wants `layout="constrained"`."""
    import matplotlib as mpl
    from matplotlib.ticker import PercentFormatter

    cmap = mpl.colormaps["viridis"].with_extremes(bad=NOT_RECORDED)
    for ax, path in zip(axes, ("libmelee", "peppi"), strict=True):
        m = share_matrix(audit, path)
        im = ax.imshow(m.values, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(m.shape[1]), m.columns, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(m.shape[0]), m.index, fontsize=8)
        for i, name in enumerate(m.index):
            for j, v in enumerate(m.columns):
                f = _by_version(audit, name, path).get(v, {})
                if f.get("nonzero_share") is not None:
                    text, color = _share_label(f)
                    ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
        ax.set_title(f"{path}: % of leader rows non-zero")
        ax.set_xlabel("Slippi version")
    fig = axes[-1].figure
    bar = fig.colorbar(im, ax=list(axes), label="leader rows non-zero (%)", shrink=0.6)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))

    full = cmap(1.0)
    key = {
        "not recorded by this Slippi version (peppi), or no rows": _Cell(NOT_RECORDED),
        "% of rows non-zero (NaN counts as non-zero)": _Cell(cmap(0.37), "37", "white"),
        "non-zero on under 1 % of rows (0: on none)": _Cell(cmap(0.0), "<1", "white"),
        f"red: {SUBNORMAL_LIMIT:.0%} or more of the finite non-zero values are subnormal "
        "float32 (integer bits read as a float, no signal)": _Cell(full, "100", "red"),
        "=: the bits equal an integer field of the ingest (aliased)": _Cell(full, "100="),
    }
    fig.legend(list(key.values()), list(key), handler_map={_Cell: _Cell}, fontsize=8, ncol=2,
               loc="outside lower center", title="how to read a cell")  # fmt: skip


@dataclass(frozen=True)
class _Cell:
    """A legend key drawn as a small heat-map cell: its colour and the text written on it. The
    class is its own legend handler (`handler_map={_Cell: _Cell}`)."""

    color: tuple | str
    text: str = ""
    text_color: str = "black"

    @staticmethod
    def legend_artist(legend, handle: _Cell, fontsize: float, box):
        """matplotlib's legend-handler call: draw `handle` into the key's box."""
        from matplotlib.patches import Rectangle
        from matplotlib.text import Text

        x, y, w, h = -box.xdescent, -box.ydescent, box.width, box.height
        cell = Rectangle((x, y - 0.2 * h), w, 1.4 * h, facecolor=handle.color)
        box.add_artist(cell)
        box.add_artist(Text(x + w / 2, y + h / 2, handle.text, color=handle.text_color,
                            fontsize=6, ha="center", va="center"))  # fmt: skip
        return cell


def _share_label(fig: dict) -> tuple[str, str]:
    """A heat-map cell's text (percent non-zero, `<1` under 1 %, `=` if aliased) and its colour
    (red: mostly subnormal; else black or white, whichever reads on the cell)."""
    share = fig["nonzero_share"]
    text = "<1" if 0 < share < 0.01 else f"{100 * share:.0f}"
    text += "=" if fig.get("aliased_to") else ""
    if (fig.get("subnormal_share") or 0) >= SUBNORMAL_LIMIT:
        return text, "red"
    return text, "black" if share > 0.6 else "white"


def plot_bit_patterns(audit: dict, ax, path: str = "libmelee") -> None:
    """Stacked bars: how each numeric column's non-zero values split into subnormal / normal /
    NaN-inf float32 bit patterns (all versions together; empty bar: never non-zero)."""
    names = [c.name for c in OLD_NUMERIC]
    counts = pd.DataFrame(
        {n: audit["columns"][n][path]["all"]["bits"] for n in names}, dtype=float
    ).T
    nonzero = counts.drop(columns="zero").sum(axis=1)
    shares = counts.div(nonzero.where(nonzero > 0), axis=0).fillna(0.0)
    colors = {"subnormal": "#d62728", "normal": "#1f77b4", "nan_inf": "#000000"}
    left = np.zeros(len(names))
    for kind, color in colors.items():
        ax.barh(names, shares[kind], left=left, color=color, label=kind)
        left += shares[kind].to_numpy()
    for i, n in enumerate(nonzero):
        ax.text(1.01, i, f"{int(n):,}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="share of the non-zero rows (count at right)", xlim=(0, 1))
    ax.set_title(f"float32 bit classes of the non-zero values, {path} path")
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1), fontsize=8)
