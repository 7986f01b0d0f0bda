"""notebooks/billing_report.ipynb runs top to bottom on a small month (outputs are not committed)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_billing_report_prices_settles_and_plots_a_small_month(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another test's Agg backend would leave the plots out of the outputs.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("VOXPERSONA_NB_CALLS", "3000")
    monkeypatch.setenv("VOXPERSONA_NB_CREATORS", "12")
    monkeypatch.setenv("VOXPERSONA_NB_CALLERS", "40")
    notebook = nbformat.read(NOTEBOOKS / "billing_report.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    text = _text(notebook)
    assert "margin ≥ floor on every call: OK (3,000 calls" in text
    assert "cycles," in text and "payouts" in text
    assert "billing report done" in text
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # revenue per creator + split, and the daily split
