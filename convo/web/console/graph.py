"""A flow's graph for the console: labelled edges and a left-to-right layout, as plain
numbers an SVG template draws (no JavaScript, nothing fetched).

:func:`flow_edges` reads the edges off a :class:`~convo.flow.spec.FlowSpec` with the
answers that take them: a ``then`` branch is labelled with its condition ("otherwise"
after conditional ones), a menu option with its key and first words, and the retry exits
with what triggers them (``on_max_attempts``, ``on_timeout``, a dial's ``on_fail``).
``anytime`` gotos are legal from every step, so they are listed, not drawn.

:func:`layout` puts each step in the column of its distance from the start (breadth
first, in declaration order; steps reached only by ``anytime`` handlers come last) and
the edges between the boxes: forward edges are straight, edges that go back or stay in a
column bend below the boxes. A forward edge's label sits just before the step it enters
(the labels of one step's incoming edges stacked), where edges fanning out of one menu
have parted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from convo.flow.spec import Ask, Choose, Dial, FlowSpec, Option

BOX_W, BOX_H = 208, 64
GAP_X, GAP_Y = 168, 40
LABEL_STEP = 13  # px between the labels of edges that enter one step
MARGIN = 24


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    dest: str
    label: str


@dataclass(frozen=True, slots=True)
class Box:
    step: str
    x: int
    y: int
    kind: str  # the step's verb (say, ask, ...) or "step"
    start: bool
    end: bool


@dataclass(frozen=True, slots=True)
class Line:
    """An edge as drawn: an SVG path and where its label goes."""

    path: str
    label: str
    label_x: int
    label_y: int
    anchor: str  # the label's text-anchor: start, middle or end


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    boxes: tuple[Box, ...]
    lines: tuple[Line, ...]
    anytime: tuple[tuple[str, str], ...]  # (what the contact says, the step it goes to)


def _option_label(option: Option) -> str:
    words = next(iter(option.words.values()), ())
    parts = [p for p in (option.key, " / ".join(words[:2])) if p]
    return " · ".join(parts) or "option"


def flow_edges(spec: FlowSpec) -> list[Edge]:
    """Every edge between steps, with the answer (or event) that takes it."""
    out: list[Edge] = []
    for name, step in spec.steps.items():
        verb = step.verb
        if isinstance(verb, Choose):
            out.extend(Edge(name, o.goto, _option_label(o)) for o in verb.options if o.goto)
        conditional = False
        for branch in step.then:
            if branch.condition:
                conditional = True
                out.append(Edge(name, branch.goto, branch.condition))
            else:
                out.append(Edge(name, branch.goto, "otherwise" if conditional else ""))
        if isinstance(verb, Ask | Choose):
            if verb.retry.on_max_attempts:
                out.append(Edge(name, verb.retry.on_max_attempts, "too many tries"))
            if verb.retry.on_timeout:
                out.append(Edge(name, verb.retry.on_timeout, "no reply in time"))
        if isinstance(verb, Dial) and verb.on_fail:
            out.append(Edge(name, verb.on_fail, "busy / no answer"))
    return out


def anytime_gotos(spec: FlowSpec) -> list[tuple[str, str]]:
    """``(what triggers it, step)`` for each ``anytime`` handler that moves on."""
    found = []
    for handler in spec.anytime:
        if handler.goto:
            words = sorted({w for ws in handler.keywords.values() for w in ws})
            found.append((" / ".join(words) or f"/{handler.pattern}/", handler.goto))
    return found


def _columns(spec: FlowSpec, edges: list[Edge]) -> dict[str, int]:
    nexts: dict[str, list[str]] = {}
    for e in edges:
        nexts.setdefault(e.source, []).append(e.dest)
    column = {spec.start: 0}
    frontier = [spec.start]
    while frontier:
        following: list[str] = []
        for step in frontier:
            for dest in nexts.get(step, ()):
                if dest not in column:
                    column[dest] = column[step] + 1
                    following.append(dest)
        frontier = following
    last = max(column.values(), default=0) + 1
    for step in spec.steps:  # reached by anytime handlers only
        column.setdefault(step, last)
    return column


def layout(spec: FlowSpec) -> Graph:
    edges = flow_edges(spec)
    column = _columns(spec, edges)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for step in spec.steps:  # declaration order within a column
        c = column[step]
        r = rows.get(c, 0)
        rows[c] = r + 1
        place[step] = (MARGIN + c * (BOX_W + GAP_X), MARGIN + r * (BOX_H + GAP_Y))
    boxes = tuple(
        Box(
            name,
            *place[name],
            kind=step.verb.keyword if step.verb is not None else "step",
            start=name == spec.start,
            end=step.end,
        )
        for name, step in spec.steps.items()
    )
    height = MARGIN * 2 + max(rows.values(), default=1) * (BOX_H + GAP_Y) + GAP_Y
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (BOX_W + GAP_X)
    entering: dict[str, int] = {}
    lines = []
    for i, edge in enumerate(edges):
        nth = entering.get(edge.dest, 0)
        entering[edge.dest] = nth + 1
        lines.append(_line(edge, place, i, nth))
    return Graph(width, height, boxes, tuple(lines), tuple(anytime_gotos(spec)))


def _line(edge: Edge, place: Mapping[str, tuple[int, int]], index: int, nth: int) -> Line:
    """Edge ``index`` of the flow, the ``nth`` to enter its destination."""
    sx, sy = place[edge.source]
    dx, dy = place[edge.dest]
    if dx > sx:  # forward: right side to left side, the label just before the arrow
        x1, y1, x2, y2 = sx + BOX_W, sy + BOX_H // 2, dx, dy + BOX_H // 2
        mx = (x1 + x2) // 2
        path = f"M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}"
        return Line(path, edge.label, x2 - 8, y2 - 5 - nth * LABEL_STEP, "end")
    if dx == sx and dy > sy:  # down the column
        x = sx + BOX_W // 2 + 16 * (nth % 3)
        path = f"M{x},{sy + BOX_H} L{x},{dy}"
        return Line(path, edge.label, x + 6, dy - 8 - nth * LABEL_STEP, "start")
    if dx == sx:  # up the column (or to itself): round the right side
        x1, y1 = sx + BOX_W, sy + BOX_H // 2 + 8
        x2, y2 = dx + BOX_W, dy + BOX_H // 2 - 8
        out = x1 + 36 + 10 * (index % 3)
        path = f"M{x1},{y1} C{out},{y1} {out},{y2} {x2},{y2}"
        return Line(path, edge.label, out + 4, (y1 + y2) // 2, "start")
    # back to an earlier column: leave below the source, enter below the destination
    drop = BOX_H + GAP_Y // 2 + (index % 3) * 6
    x1, y1 = sx + BOX_W // 2 + 10, sy + BOX_H
    x2, y2 = dx + BOX_W // 2 - 10, dy + BOX_H
    low = max(sy, dy) + drop
    path = f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2}"
    return Line(path, edge.label, (x1 + x2) // 2, low - 4, "middle")
