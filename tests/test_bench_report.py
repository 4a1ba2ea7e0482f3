"""The table `make bench` prints (bench/report.py): each verdict follows its own row's figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from web.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import report  # noqa: E402

PAGE = {"rps": 8000.0, "p50": 2.0, "cpu_ms": 0.12}
SETTINGS = {"rps": 1000.0, "p50": 16.0, "cpu_ms": 0.9}
FLOW = {"rate": 30.0, "p50": 14.0, "cpu_ms": 31.0, "cores": 0.9}
SIGNIN = {"rate": 28.0, "p50": 6.0, "cpu_ms": 35.0, "cores": 0.95}


def table(without_hash: dict[str, float], tmp_path: Path) -> str:
    results = {
        "page_ceiling": PAGE,
        "settings": SETTINGS,
        "partial": SETTINGS,
        "flow_ceiling": FLOW,
        "signin": SIGNIN,
        "without_hash": without_hash,
    }
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="x" * 32, mfa_keys=())
    args = argparse.Namespace(workers=1, seconds=8)
    return report.render("sqlite://", settings, args, results, {}, 27.0, True)


def row(text: str, start: str) -> list[str]:
    found = next(line for line in text.splitlines() if line.startswith(f"| {start}"))
    return [cell.strip() for cell in found.strip("|").split("|")]


@pytest.mark.parametrize(("ratio", "verdict"), [(2.8, "FAIL"), (1.9, "PASS")])
def test_the_sign_in_verdict_is_the_median_of_the_rounds_ratios(tmp_path: Path, ratio: float, verdict: str) -> None:
    text = table({"app": 9.0, "ceiling": 3.2, "ratio": ratio, "low": 1.5, "high": 3.2, "rounds": 3}, tmp_path)
    cells = row(text, "server CPU per sign-in, without the hash")
    assert cells[1:4] == ["9.0", "3.2", f"{ratio:.1f}×"]
    assert cells[-1] == verdict


def test_the_settings_verdict_is_its_share_of_the_ceiling(tmp_path: Path) -> None:
    text = table({"app": 9.0, "ceiling": 3.2, "ratio": 2.8, "low": 2.8, "high": 3.2, "rounds": 3}, tmp_path)
    cells = row(text, "Settings, MFA expanded")
    assert cells[3] == "12%" and cells[-1] == "FAIL"  # 1,000 of 8,000 req/s against 40%
