"""The report's charts as PNG images for mail clients (matplotlib, Agg backend).

Each chart is drawn at twice its display size (sharp on high-density screens) and carries its
display width and height, which the template writes on the ``<img>`` tag.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator

from touchpoint.delivery.message import InlineImage
from touchpoint.report.content import WeeklyContent
from touchpoint.report.signals import Signal
from touchpoint.report.wording import Wording

WIDTH = 552  # px, the content width of the 600 px card minus its padding
SCALE = 2
CURRENT = "#2563eb"
PREVIOUS = "#cbd5e1"
TEXT = "#374151"
BAND = "#e5e7eb"
WORSE = "#b91c1c"
BETTER = "#047857"

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.edgecolor": "#e5e7eb",
        "axes.labelcolor": TEXT,
        "xtick.color": TEXT,
        "ytick.color": TEXT,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def _png(fig, cid: str, height: int) -> InlineImage:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100 * SCALE, metadata={"Software": None})
    plt.close(fig)
    return InlineImage(
        cid=cid,
        filename=f"{cid.split('@')[0]}.png",
        data=buffer.getvalue(),
        width=WIDTH,
        height=height,
    )


def _figure(height: int):
    return plt.subplots(figsize=(WIDTH / 100, height / 100), dpi=100, layout="constrained")


def trend_chart(content: WeeklyContent, cid: str, words: Wording) -> InlineImage:
    """Touchpoints per week over the last weeks, the report's week highlighted."""
    height = 190
    fig, ax = _figure(height)
    weeks = [w for w, *_ in content.history]
    values = [t for _, t, *_ in content.history]
    colors = [CURRENT if w == content.week_start else PREVIOUS for w in weeks]
    ax.bar(range(len(weeks)), values, color=colors, width=0.65)
    ax.set_xticks(range(len(weeks)), [words.short_day(w) for w in weeks])
    ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: words.number(v)))
    ax.set_title(words._("Touchpoints per week"), loc="left", fontsize=10, color=TEXT)
    for x, v in enumerate(values):
        ax.annotate(
            words.number(v),
            (x, v),
            ha="center",
            va="bottom",
            fontsize=8,
            color=TEXT,
            xytext=(0, 2),
            textcoords="offset points",
        )
    return _png(fig, cid, height)


def channel_chart(content: WeeklyContent, cid: str, words: Wording, top: int = 8) -> InlineImage:
    """Touchpoints per channel, this week against the week before."""
    rows = content.channels[:top]
    height = 60 + 26 * max(len(rows), 1)
    fig, ax = _figure(height)
    names = [_plain_text(words.term(r.channel)) for r in rows][::-1]
    current = [r.touchpoints for r in rows][::-1]
    previous = [r.previous_touchpoints or 0 for r in rows][::-1]
    positions = range(len(rows))
    ax.barh(
        [p - 0.2 for p in positions],
        previous,
        height=0.38,
        color=PREVIOUS,
        label=words._("week before"),
    )
    ax.barh(
        [p + 0.2 for p in positions],
        current,
        height=0.38,
        color=CURRENT,
        label=words._("this week"),
    )
    ax.set_yticks(list(positions), names)
    ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: words.number(v)))
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.set_title(words._("Touchpoints by channel"), loc="left", fontsize=10, color=TEXT)
    return _png(fig, cid, height)


def funnel_chart(content: WeeklyContent, cid: str, words: Wording) -> InlineImage:
    """Customers entering each journey stage this week."""
    stages = content.funnel
    height = 60 + 24 * max(len(stages), 1)
    fig, ax = _figure(height)
    names = [_plain_text(words.term(s.stage)) for s in stages][::-1]
    values = [s.entered for s in stages][::-1]
    ax.barh(range(len(stages)), values, color=CURRENT, height=0.6)
    ax.set_yticks(range(len(stages)), names)
    ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: words.number(v)))
    for y, v in enumerate(values):
        ax.annotate(
            words.number(v),
            (v, y),
            ha="left",
            va="center",
            fontsize=8,
            color=TEXT,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_title(
        words._("Customers entering each journey stage"), loc="left", fontsize=10, color=TEXT
    )
    return _png(fig, cid, height)


def _plain_text(text: str) -> str:
    """Names go into matplotlib as text, never as mathtext (a '$' pair would start a formula)."""
    return text.replace("$", r"\$")


def signal_chart(signal: Signal, cid: str, words: Wording) -> InlineImage:
    """A signal's metric over its last weeks: the baseline band (minimum to maximum of the weeks
    it was judged against) with its median dashed, the report's week highlighted."""
    height = 150
    fig, ax = _figure(height)

    def number(value: float) -> str:
        return words.signal_number(value, signal.metric)

    points = [(w, v) for w, v in signal.history if v is not None]
    if not any(w == signal.week_start for w, _ in points):
        points.append((signal.week_start, signal.value))
    weeks = [w for w, _ in points]
    values = [v for _, v in points]
    xs = range(len(weeks))
    ax.axhspan(
        signal.baseline_low,
        signal.baseline_high,
        color=BAND,
        alpha=0.8,
        lw=0,
        label=words._("usual range (weeks before)"),
    )
    ax.axhline(signal.baseline_value, color="#9ca3af", lw=1, ls="--", label=words._("median"))
    ax.plot(xs, values, color=PREVIOUS, lw=1.5, marker="o", ms=4, mfc=CURRENT, mec=CURRENT)
    bad = signal.status == "needs_attention"
    current = weeks.index(signal.week_start)
    ax.plot(
        [current],
        [values[current]],
        marker="o",
        ms=8,
        color=WORSE if bad else BETTER,
        ls="none",
        label=words._("this week"),
    )
    ax.annotate(
        number(values[current]),
        (current, values[current]),
        ha="center",
        va="bottom",
        fontsize=8,
        color=TEXT,
        xytext=(0, 5),
        textcoords="offset points",
    )
    ax.set_xticks(list(xs), [words.short_day(w) for w in weeks])
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
    low = min([*values, signal.baseline_low])
    high = max([*values, signal.baseline_high])
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 1
    ax.set_ylim(low - pad, high + 2 * pad)
    ax.legend(loc="best", frameon=False, fontsize=7, ncol=3)
    ax.set_title(
        _plain_text(
            words._("%(name)s: %(metric)s per week")
            % {"name": words.signal_name(signal), "metric": words.metric_label(signal.metric)}
        ),
        loc="left",
        fontsize=9,
        color=TEXT,
    )
    return _png(fig, cid, height)


def health_chart(content: WeeklyContent, cid: str, words: Wording) -> InlineImage:
    """The shares of healthy and at-risk customers, and of promoters and detractors among those
    who answered, over the trend weeks."""
    height = 170
    fig, ax = _figure(height)
    weeks = [h.week_start for h in content.relationship]
    xs = range(len(weeks))
    lines = (
        (words._("healthy"), [h.healthy_share for h in content.relationship], BETTER, "-"),
        (words._("at risk"), [h.at_risk_share for h in content.relationship], WORSE, "-"),
        (words._("promoters"), [h.promoter_share for h in content.relationship], BETTER, "--"),
        (words._("detractors"), [h.detractor_share for h in content.relationship], WORSE, "--"),
    )
    for label, values, color, style in lines:
        points = [(x, v) for x, v in zip(xs, values) if v is not None]
        if points:
            ax.plot(
                [x for x, _ in points],
                [v for _, v in points],
                color=color,
                ls=style,
                lw=1.5,
                marker="o",
                ms=3,
                label=_plain_text(label),
            )
    ax.set_xticks(list(xs), [words.short_day(w) for w in weeks])
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: words.percent(v, "#,##0%")))
    ax.legend(loc="upper left", frameon=False, fontsize=7, ncol=4)
    ax.set_title(
        words._("Customers' relationship, share per week"), loc="left", fontsize=10, color=TEXT
    )
    return _png(fig, cid, height)
