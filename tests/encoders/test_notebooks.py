"""The notebooks run top to bottom on small generated data (outputs are not committed)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture()
def isolated_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("VOXPERSONA_NB_THREADS", "1")
    return tmp_path


@pytest.mark.slow
def test_encoder_comparison_notebook_reports_every_encoder(
    isolated_mlflow: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXPERSONA_NB_SPEAKERS", "6")
    monkeypatch.setenv("VOXPERSONA_NB_UTTERANCES", "3")
    monkeypatch.delenv("VOXPERSONA_NB_WRITE_THRESHOLD", raising=False)
    text = _text(_execute("encoder_comparison.ipynb"))
    assert "impersonation threshold at 1 % false alarms" in text
    assert "Generated speech: these EERs rank encoders" in text
    for name in ("seeded", "ge2e", "ecapa", "encodec", "fusion"):
        assert name in text
    assert "logged run" in text
    assert "registered models:/speaker-encoder-fusion/1" in text  # both members' weights logged with it
    assert "platform default (configs/config.yaml): fusion" in text


@pytest.mark.slow  # trains a tiny ECAPA (~12 s): in the slow pass, which CI runs
def test_ecapa_training_notebook_trains_and_registers(
    isolated_mlflow: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXPERSONA_NB_TINY", "1")
    monkeypatch.setenv("VOXPERSONA_NB_OUT", str(isolated_mlflow / "ecapa.pt"))
    text = _text(_execute("ecapa_training.ipynb"))
    assert "registered: models:/speaker-encoder-ecapa/1" in text
    assert "final held-out EER" in text
    assert (isolated_mlflow / "ecapa.pt").exists()
