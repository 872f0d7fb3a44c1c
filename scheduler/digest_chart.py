"""The digest's chart: twelve weeks of completed visits, new and returning clients stacked,
and the returning share as a line on its own axis. PNG bytes, drawn with matplotlib's Agg
canvas on a Figure of its own (no pyplot, no global state, nothing set up at import)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from domain.digest import WeekPoint
from domain.text import Translator

NEW_COLOUR = "#9ecae1"
RETURNING_COLOUR = "#3182bd"
SHARE_COLOUR = "#e6550d"


def weekly_chart(weeks: Sequence[WeekPoint], tr: Translator) -> bytes:
    """The chart of `weeks` (oldest first) with labels in the reader's language."""
    # Imported here: matplotlib takes a noticeable time to load, and only the digest draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=(8, 4.5), dpi=100)
    # Fixed margins: a layout engine would cost more than everything else in the digest.
    figure.subplots_adjust(left=0.08, right=0.92, top=0.92, bottom=0.27)
    FigureCanvasAgg(figure)
    bars = figure.subplots()
    positions = list(range(len(weeks)))
    new = [week.new for week in weeks]
    returning = [week.returning for week in weeks]
    bars.bar(positions, returning, color=RETURNING_COLOUR, label=tr._("Returning clients"))
    bars.bar(positions, new, bottom=returning, color=NEW_COLOUR, label=tr._("New clients"))
    bars.set_ylabel(tr._("Completed visits"))
    bars.set_xticks(positions, [tr.short_date(week.start) for week in weeks], rotation=45)
    bars.set_title(tr._("Visits per week and the share of returning clients"))
    share = bars.twinx()
    points = [
        (i, float(w.returning_share)) for i, w in enumerate(weeks) if w.returning_share is not None
    ]
    share.plot(
        [i for i, _ in points],
        [value for _, value in points],
        color=SHARE_COLOUR,
        marker="o",
        label=tr._("Returning share"),
    )
    share.set_ylim(0, 1.05)
    share.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bars.set_ylim(0, max([n + r for n, r in zip(new, returning, strict=True)] + [1]) * 1.1)
    handles, labels = bars.get_legend_handles_labels()
    more_handles, more_labels = share.get_legend_handles_labels()
    # Below the plot, not over the bars.
    figure.legend(handles + more_handles, labels + more_labels, loc="lower center", ncols=3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
