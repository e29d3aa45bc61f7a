"""Server-side SVG charts: well-formed, labelled in text, readable without colour."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}text") if el.text]


def test_funnel_has_title_desc_and_a_text_label_per_stage():
    """Each stage's name and value is written as text; the desc repeats all the numbers."""
    root = parse(
        charts.funnel_chart(
            [charts.Bar("Asked", 12, href="/x?state=asked"), charts.Bar("Won", 3)],
            title="Deals per state",
        )
    )
    assert root.find(f"{SVG}title").text == "Deals per state"
    assert root.find(f"{SVG}desc").text == "Asked: 12; Won: 3"
    assert root.get("role") == "img"
    assert {"Asked", "12", "Won", "3"} <= set(texts(root))
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/x?state=asked"]


def test_stacked_bars_tell_series_apart_by_pattern_and_show_totals():
    """Each series fills with its own pattern (not only a colour), listed in the legend."""
    root = parse(
        charts.stacked_bar_chart(
            [
                ("Mar 2026", [charts.Segment("Commit", 30), charts.Segment("Pipeline", 10)]),
                ("Apr 2026", [charts.Segment("Pipeline", 5)]),
            ],
            series=["Commit", "Best case", "Pipeline"],
            title="Forecast",
        )
    )
    patterns = root.findall(f"{SVG}defs/{SVG}pattern")
    assert len(patterns) == 3
    # pattern 0 is solid; the others carry marks drawn over the colour
    assert all(len(list(p)) >= 2 for p in patterns[1:])
    fills = {r.get("fill") for r in root.iter(f"{SVG}rect") if "url(" in (r.get("fill") or "")}
    assert len(fills) == 3
    labels = texts(root)
    assert {"Commit", "Best case", "Pipeline", "Mar 2026", "Apr 2026", "40", "5"} <= set(labels)
    assert "Mar 2026: total 40 (Commit 30, Pipeline 10)" in root.find(f"{SVG}desc").text


def test_labels_are_escaped():
    """A rep called <script> is text, never markup."""
    markup = str(charts.bar_chart([charts.Bar("<script>", 1)], title="A & B"))
    assert "<script>" not in markup
    root = parse(markup)
    assert "<script>" in texts(root)
    assert root.find(f"{SVG}title").text == "A & B"


def test_empty_data_says_so():
    for markup in [
        charts.funnel_chart([], title="Empty"),
        charts.bar_chart([charts.Bar("Price", 0)], title="Empty"),
        charts.stacked_bar_chart([], series=["A"], title="Empty"),
    ]:
        root = parse(markup)
        assert "No deals for these filters." in texts(root)
