"""The report's pictures, drawn with matplotlib (Agg, no pyplot state) and
matplotlib-scalebar: the overview map, each event's before/after/change chips and each
facility's time series.

Every map carries a scale bar, a north arrow (true north, which is a degree or two off
the UTM grid's up), its date and the coordinate reference (axes in km of the site's UTM
grid, EPSG code named). Colours are the Okabe-Ito palette, distinguishable with the
common forms of colour blindness; lines differ in style too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.artist import Artist
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib_scalebar.scalebar import ScaleBar

from nampo.analysis.dating import TYPES
from nampo.grid import Grid
from nampo.report.data import Composite, FacilitySeries, ReportData, chip_window

__all__ = [
    "OKABE_ITO",
    "TYPE_COLOURS",
    "CLASS_STYLES",
    "NO_DATA_GREY",
    "HALO",
    "DARK_HALO",
    "DPI",
    "MIN_SEEN",
    "save",
    "truecolour",
    "north_angle",
    "map_frame",
    "draw_overview",
    "draw_event",
    "draw_facility",
]

OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
TYPE_COLOURS = {
    "drainage": OKABE_ITO["sky_blue"],
    "reclamation": OKABE_ITO["blue"],
    "construction": OKABE_ITO["orange"],
    "coal_cover": OKABE_ITO["black"],
    # the one Okabe-Ito colour left; coal going is told from coal coming (black) at a glance
    "coal_removed": OKABE_ITO["green"],
    "new_tank": OKABE_ITO["yellow"],
    "demolition": OKABE_ITO["vermillion"],
    "unclassified": OKABE_ITO["purple"],
}
CLASS_STYLES = {
    "water": (OKABE_ITO["blue"], "-"),
    "vegetation": (OKABE_ITO["green"], "--"),
    "bare": (OKABE_ITO["orange"], "-."),
    "built": ("#777777", "-"),
    "dark": (OKABE_ITO["black"], ":"),  # coal
    "ice": (OKABE_ITO["sky_blue"], (0, (5, 1, 1, 1))),
}
NO_DATA_GREY = 0.82
"""Where no clear observation is available, the image shows this plain grey."""
HALO = [patheffects.withStroke(linewidth=3, foreground="white")]
DARK_HALO = [patheffects.withStroke(linewidth=2.5, foreground="black")]
DPI = 100
MIN_SEEN = 0.5
"""A facility's class areas are drawn for months with a clear observation of this share
of it (the page's table gives every month)."""


def save(fig: Figure, path: Path) -> None:
    # zlib level 1: a third of the default's time, files about 15 % larger
    fig.savefig(path, pil_kwargs={"compress_level": 1})


def truecolour(rgb: np.ndarray) -> np.ndarray:
    """Reflectance (rows, cols, 3) to a displayable image: one fixed stretch for every
    date (0.3 reflectance is white, gamma 0.8), so images of two dates compare."""
    img = np.clip(np.nan_to_num(rgb, nan=0.0) / 0.3, 0, 1) ** 0.8
    img[np.isnan(rgb).any(axis=-1)] = NO_DATA_GREY
    return img


def north_angle(grid: Grid, x: float, y: float) -> float:
    """Angle (radians, counter-clockwise from the grid's up) of true north at (x, y)."""
    from shapely.geometry import Point

    lon, lat = grid.to_lonlat(Point(x, y)).coords[0]
    nx, ny = grid.from_lonlat(Point(lon, lat + 0.01)).coords[0]
    return float(np.arctan2(-(nx - x), ny - y))


def _km(decimals: int) -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: f"{v / 1000:.{decimals}f}")


def map_frame(ax, grid: Grid, bounds, when: str, title: str, small: bool = False) -> None:
    """Extent, km ticks, coordinate reference, date, scale bar and north arrow."""
    xmin, ymin, xmax, ymax = bounds
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    fs = 7 if small else 9
    # ticks 100 m or more apart need one decimal of a km, closer ones two
    decimals = 1 if xmax - xmin > 1500 else 2
    ax.xaxis.set_major_formatter(_km(decimals))
    ax.yaxis.set_major_formatter(_km(decimals))
    ax.tick_params(labelsize=fs - 1)
    if small:  # tick labels are most of a chip's drawing time: a few are enough
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.set_xlabel(f"easting, km (EPSG:{grid.epsg}, {grid.crs.name})", fontsize=fs - 1)
    ax.set_ylabel("northing, km", fontsize=fs - 1)
    ax.set_title(f"{title}\n{when}", fontsize=fs + 1, loc="left")
    ax.add_artist(
        ScaleBar(1, "m", location="lower left", box_alpha=0.75, font_properties={"size": fs},
                 length_fraction=0.25)
    )  # fmt: skip
    a = north_angle(grid, (xmin + xmax) / 2, (ymin + ymax) / 2)
    dx, dy = -np.sin(a), np.cos(a)
    tip = (0.93, 0.9)
    ax.annotate(
        "", xy=tip, xycoords="axes fraction", xytext=(-dx * 28, -dy * 28),
        textcoords="offset points",
        arrowprops={"arrowstyle": "-|>,head_width=0.4,head_length=0.8", "lw": 2,
                    "color": "black", "path_effects": HALO},
    )  # fmt: skip
    ax.annotate(
        "N", xy=tip, xycoords="axes fraction", xytext=(dx * 8, dy * 8 + 2),
        textcoords="offset points", ha="center", va="center", fontsize=fs + 2,
        fontweight="bold", path_effects=HALO,
    )  # fmt: skip


def _image(ax, comp: Composite, grid: Grid, alpha: float = 1.0, grey: bool = False) -> None:
    img = truecolour(comp.rgb)
    if grey:
        lum = img.mean(axis=-1, keepdims=True)
        img = np.repeat(0.55 + 0.45 * lum, 3, axis=-1)
    xmin, ymin, xmax, ymax = comp.bounds
    ax.imshow(img, extent=(xmin, xmax, ymin, ymax), interpolation="nearest", alpha=alpha)


def _outline(ax, geom, grid: Grid, colour: str, lw: float = 1.6, dashed=False) -> None:
    local = grid.from_lonlat(geom)
    lines = local.boundary
    for line in getattr(lines, "geoms", [lines]):
        x, y = line.xy
        ax.plot(x, y, color=colour, lw=lw, ls="--" if dashed else "-",
                path_effects=DARK_HALO if colour == "white" else HALO)  # fmt: skip


def _composite_when(c: Composite) -> str:
    if c.from_month > 0.999:
        return f"composite of {c.month:%B %Y}"
    return (
        f"composite of {c.month:%B %Y}\n({1 - c.from_month:.0%} of pixels: latest clear month "
        "of the 5 before)"
    )


def draw_overview(data: ReportData, path: Path) -> None:
    """The site: composite, facilities (white, dashed) and events (type colours)."""
    grid = data.site.grid
    h, w = grid.shape
    fig = Figure(figsize=(11, 11 * h / w * 0.92 + 1.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    comp = data.overview
    if comp is not None:
        _image(ax, comp, grid)
    for _name, title, outline in data.site.facilities:
        _outline(ax, outline, grid, "white", lw=1.3, dashed=True)
        c = grid.from_lonlat(outline).representative_point()
        ax.text(c.x, c.y, title, color="white", fontsize=8, ha="center", va="center",
                path_effects=DARK_HALO)  # fmt: skip
    for e in data.events:
        colour = TYPE_COLOURS[e.type]
        _outline(ax, e.geometry, grid, colour, lw=1.4)
        b = grid.from_lonlat(e.geometry).bounds
        ax.text(b[2], b[3], e.id, color=colour, fontsize=7, fontweight="bold",
                path_effects=HALO)  # fmt: skip
    when = _composite_when(comp) if comp else "no composite yet"
    map_frame(ax, grid, grid.bounds, when, f"{data.site.title}: facilities and change events")
    _type_legend(ax, sorted({e.type for e in data.events}), facilities=bool(data.site.facilities))
    save(fig, path)


def _type_legend(ax, types, facilities: bool = False, loc="upper left", filled=False) -> None:
    handles: list[Artist] = [
        Patch(facecolor=TYPE_COLOURS[t] if filled else "none", edgecolor=TYPE_COLOURS[t], lw=2,
              label=t)
        for t in types
    ]  # fmt: skip
    if facilities:
        handles.insert(0, Line2D([], [], color="white", ls="--", path_effects=DARK_HALO,
                                 label="facility"))  # fmt: skip
    if handles:
        ax.legend(handles=handles, loc=loc, fontsize=7, framealpha=0.8)


def draw_event(data: ReportData, event, path: Path) -> None:
    """Before, after and the change map around one event."""
    grid = data.site.grid
    before, after = data.chips[event.id]
    # fixed margins: a constrained layout would cost a third of the drawing time
    fig = Figure(figsize=(13.5, 4.9), dpi=DPI)
    axes = fig.subplots(
        1, 3, gridspec_kw={"left": 0.045, "right": 0.99, "bottom": 0.1, "top": 0.83, "wspace": 0.18}
    )
    panels = [
        (before, f"before: {_composite_when(before)}"),
        (after, f"after: {_composite_when(after)}"),
    ]
    for ax, (comp, when) in zip(axes, panels, strict=False):
        _image(ax, comp, grid)
        _outline(ax, event.geometry, grid, TYPE_COLOURS[event.type], lw=1.2)
        map_frame(ax, grid, comp.bounds, when, f"{event.id} {event.type}", small=True)
    ax = axes[2]
    _image(ax, after, grid, grey=True)
    rows, cols = chip_window(data.site, event)
    assert data.change is not None  # an event comes with the change map
    codes = data.change["type"].values[slice(*rows), slice(*cols)]
    cmap = ListedColormap(["#00000000", *(TYPE_COLOURS[t] for t in TYPES.values())])
    ax.imshow(codes, extent=(after.bounds[0], after.bounds[2], after.bounds[1],
                             after.bounds[3]), cmap=cmap, vmin=0, vmax=len(TYPES),
              interpolation="nearest")  # fmt: skip
    _outline(ax, event.geometry, grid, "white", lw=1.0)
    map_frame(
        ax, grid, after.bounds,
        f"pixels changed between {event.window_start:%d %b %Y} and {event.window_end:%d %b %Y}",
        f"{event.id} change map", small=True,
    )  # fmt: skip
    present = [TYPES[c] for c in sorted(set(np.unique(codes)) - {0})]
    _type_legend(ax, present, loc="upper left", filled=True)
    save(fig, path)


def _event_strip(ax, events) -> None:
    """One lane per event: its window (a bar in the colour of its type) and its id."""
    for lane, e in enumerate(events):
        start, end = np.datetime64(e.window_start), np.datetime64(e.window_end)
        ax.barh(lane, end - start, left=start, height=0.6, color=TYPE_COLOURS[e.type],
                edgecolor="black", lw=0.5)  # fmt: skip
        ax.text(end + np.timedelta64(5, "D"), lane, f"{e.id} {e.type}", va="center", fontsize=7)
    ax.set_ylim(max(len(events), 1) - 0.4, -0.6)
    ax.set_yticks([])
    ax.set_title("event windows (last clear month before to first after; dotted: estimated day)",
                 loc="left", fontsize=9)  # fmt: skip
    if not events:
        ax.text(0.5, 0.5, "no event in this facility", transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="#555555")  # fmt: skip


def _dates(months: list[dt.date]) -> np.ndarray:
    return np.array([np.datetime64(m, "D") + np.timedelta64(14, "D") for m in months])


def _values(v: list[float | None]) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in v], float)


def draw_facility(
    series: FacilitySeries, events, path: Path, activity_labels: dict, px_ha: float
) -> None:
    """Class areas, activity and observations of one facility per month, under a strip
    with the window of each of its events."""
    t = _dates(series.months)
    strip = max(len(events), 1) * 0.22 + 0.3
    fig = Figure(figsize=(11, 7.6 + strip), dpi=DPI, layout="constrained")
    lanes, *axes = fig.subplots(4, 1, sharex=True, height_ratios=[strip, 3, 1.3, 1.3])
    _event_strip(lanes, events)
    ax = axes[0]
    # a month seen on under half the facility would draw a dip of every class: left out
    area = series.pixels * px_ha
    seen = area - _values(series.unseen_ha) >= MIN_SEEN * area
    for cls, values in series.class_ha.items():
        colour, style = CLASS_STYLES[cls]
        v = np.where(seen, _values(values), np.nan)
        if np.nanmax(v, initial=0) > 0:
            ax.plot(
                t,
                v,
                color=colour,
                ls=style,
                lw=1.8,
                marker="o",
                ms=2.5,
                label="dark (coal)" if cls == "dark" else cls,
            )
    ax.plot(t, _values(series.unseen_ha), color="#BBBBBB", lw=1, ls=":",
            label="no clear observation")  # fmt: skip
    ax.set_ylabel("area, ha")
    ax.text(
        1,
        1.01,
        f"months seen on under {MIN_SEEN:.0%} of it are left out",
        fontsize=7,
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        color="#555555",
    )
    ax.set_title(f"{series.title} ({series.name}): land-cover class areas per month "
                 f"({series.pixels * px_ha:.1f} ha)", loc="left", fontsize=10)  # fmt: skip
    ax.legend(fontsize=7, ncol=4, loc="upper left", framealpha=0.8)
    ax = axes[1]
    styles = [(OKABE_ITO["vermillion"], "-"), (OKABE_ITO["blue"], "--")]
    if series.activity:
        axes_of = {"vessels": ax, "ice_fraction": ax.twinx()}
        for (name, (dates, measured)), (colour, style) in zip(
            series.activity.items(), styles, strict=False
        ):
            a = axes_of[name]
            a.plot(np.array(dates, "datetime64[D]"), measured, color=colour, ls=style,
                   marker="o", ms=3, lw=1, label=f"{activity_labels[name][1]}")  # fmt: skip
            a.set_ylabel(activity_labels[name][0], color=colour)
        handles = [h for a in axes_of.values() for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, fontsize=7, loc="upper left")
    lines = [
        f"{label}: " + ("none for this facility" if n in series.in_store else "not in this store")
        for n, (label, _) in activity_labels.items() if n not in series.activity
    ]  # fmt: skip
    if lines:
        ax.text(0.5, 0.5, "\n".join(lines), transform=ax.transAxes, ha="center", va="center",
                fontsize=9, color="#555555")  # fmt: skip
    if not series.activity:
        ax.set_ylabel("activity")
    ax = axes[2]
    ax.plot(t, _values(series.clear_obs), color=OKABE_ITO["green"], marker="o", ms=2.5,
            label="clear observations (median pixel)")  # fmt: skip
    ax.plot(t, _values(series.all_obs), color=OKABE_ITO["black"], ls="--", marker="s", ms=2.5,
            label="observations, any sky (median pixel)")  # fmt: skip
    ax.set_ylabel("per month")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("month (UTC)")
    for e in events:  # the estimated day of each event, across the plots
        for a in axes:
            a.axvline(np.datetime64(e.date), color=TYPE_COLOURS[e.type], lw=0.8, ls=":")
    for m in series.missing_months:
        for a in axes:
            a.axvspan(np.datetime64(m), np.datetime64(m) + np.timedelta64(28, "D"),
                      facecolor="none", hatch="////", edgecolor="#AAAAAA", lw=0)  # fmt: skip
    save(fig, path)
