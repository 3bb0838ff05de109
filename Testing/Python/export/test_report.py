"""The HTML report: its table against results.json, rounding, not-assessed reasons, methods that ran."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from VertebralFractureLib.export.report import cell_text, render_report
from VertebralFractureLib.io.csv_tables import DECIMALS
from VertebralFractureLib.schema import SpineResult, Vertebra


class _Table(HTMLParser):
    """Header names and body cells of the table ``id="genant"``."""

    def __init__(self):
        super().__init__()
        self.inside, self.section, self.header, self.rows, self.cell = False, None, [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == "genant":
            self.inside = True
        elif self.inside and tag in ("thead", "tbody"):
            self.section = tag
        elif self.inside and tag == "tr" and self.section == "tbody":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            if self.section == "tbody":
                self.rows[-1].append(self.cell.strip())
            elif len(self.header) < 100:
                self.header.append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _table(html: str):
    parser = _Table()
    parser.feed(html)
    names = [h for h in parser.header if h and not h.startswith("0-") and h != "mm"]
    return names, [dict(zip(names, row)) for row in parser.rows]


def body(ha, hm, hp, z):
    return np.array([[0, -10, z], [0, -10, z - ha], [0, 0, z], [0, 0, z - hm], [0, 12, z], [0, 12, z - hp]], float)


@pytest.fixture
def result():
    vertebrae = [
        Vertebra("T12", [0, 0, 60], body(25, 25, 25, 60), status="not_assessed",
                 status_reason="cut by the edge of the field of view (superior edge)", confidence=0.9),
        Vertebra("L1", [0, 0, 20], body(16.04, 24.0, 25.0, 30), confidence=0.99971, fracture_probability=0.97),
        Vertebra("L2", [0, 0, -10], body(25, 25, 25, 0), confidence=0.8),
    ]
    return SpineResult(vertebrae, input={"path": "case-1.nii.gz"},
                       models={"keypoints": "keypoints.pt", "fracture_classifier": "grading_full.pt"})


def test_report_table_matches_results_json(tmp_path, result):
    html = render_report(result, tmp_path / "report.html").read_text()
    document = json.loads(result.to_json())
    names, rows = _table(html)
    assert names[:4] == ["level", "verdict", "status", "ha_mm"]  # the CSV's names, once
    assert html.count('id="genant"') == 1
    assert [r["level"] for r in rows] == [v["label"] for v in document["vertebrae"]]
    for row, entry in zip(rows, document["vertebrae"]):
        assert row["verdict"] == entry["verdict"] and row["status"] == entry["status"]
        heights = entry.get("heights_mm")
        if heights is None:
            assert row["ha_mm"] == row["G"] == row["grade"] == ""
            continue
        assert float(row["ha_mm"]) == pytest.approx(heights["anterior"], abs=0.05)
        assert float(row["hp_mm"]) == pytest.approx(heights["posterior"], abs=0.05)
        assert float(row["G"]) == pytest.approx(entry["genant"]["G"], abs=0.005)
        assert int(row["grade"]) == entry["genant"]["grade"]
        assert row["confidence"] == f"{entry['confidence']:.2f}"
    assert rows[1]["confidence"] == "1.00" and rows[1]["G"] == "0.64" and rows[1]["verdict"] == "fracture"
    assert document["patient"]["verdict"] == "fracture"
    assert "Verdict: <b>fracture</b>" in html and "grade 2-3" in html


def test_report_shows_not_assessed_reasons_methods_that_ran_and_the_notice(tmp_path, result):
    html = render_report(result, tmp_path / "report.html").read_text()
    assert "<b>T12</b>: cut by the edge of the field of view (superior edge)" in html
    assert "Research software, not a medical device" in html
    assert "Pisov M." in html and "Husseini M." in html
    assert "Nicolaes" not in html and "Botros" not in html and "Gartland" not in html  # did not run
    assert "No patient name or identifier is included" in html
    # the rule says when a withheld loss asks for a look on its own (verdict.UNCONFIRMED_RESOLVED_KEY)
    assert "asks for a <b>review</b> on its own where the CT's\nslices resolve the endplates" in html


def test_report_thumbnails_one_per_vertebra_with_points(tmp_path, result):
    image = np.zeros((200, 80))
    points = {v.label: np.array([[20, 30 + 50 * i], [20, 55 + 50 * i], [40, 30 + 50 * i], [40, 55 + 50 * i],
                                 [60, 30 + 50 * i], [60, 55 + 50 * i]], float) for i, v in enumerate(result.vertebrae)}
    html = render_report(result, tmp_path / "r.html", sagittal=(image, points, (1.0, 1.0))).read_text()
    assert html.count('<figure class="') == 3
    assert '<figure class="na"><img alt="T12"' in html and '<figure class="fracture"><img alt="L1"' in html


def test_cell_text_keeps_two_digits():
    assert cell_text("confidence", 0.9997) == "1.00"
    assert cell_text("ha_mm", 24.04) == "24.0"
    assert cell_text("G", None) == "" and cell_text("level", "L1") == "L1"
    assert set(DECIMALS) >= {"ha_mm", "G", "fracture_probability"}


def test_report_says_when_the_levels_are_a_guess(tmp_path, result):
    """Without an anatomical anchor the overview and the CLI marked every level "?", the report named them plainly and
    said so only among the warnings at its end."""
    image = np.zeros((120, 60), np.float32)
    points = {v.label: np.c_[np.full(6, 30.0), np.linspace(10, 100, 6)] for v in result.vertebrae}
    anchored = render_report(result, tmp_path / "a.html", sagittal=(image, points, (1.0, 1.0))).read_text()
    assert "the level names are a guess" not in anchored and "L1?" not in anchored
    from VertebralFractureLib.keypoints.level_anchors import uncertain_report

    result.patient["levels"] = uncertain_report()
    guessed = render_report(result, tmp_path / "g.html", sagittal=(image, points, (1.0, 1.0))).read_text()
    start = guessed.index('<div class="verdict')
    verdict_box = guessed[start:guessed.index("</div>", start)]
    assert "levels uncertain: neither the 12th rib nor the iliac crests" in verdict_box
    assert "the level names are a guess" in verdict_box
    assert all(f"<b>{label}?</b>" in guessed for label in ("T12", "L1", "L2"))  # each thumbnail's caption
