"""The read side of the close: pipeline selectors, charts, dashboards, coaching, CSV figures."""
