"""Where each group of the fork tree is drawn: a tidy left-to-right layout (generation = column, a
parent centred on its children), computed here so the page is plain SVG that needs no script to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alluse.services.dashboard import ForkNode

NODE_W, NODE_H = 248, 132
COL_GAP, ROW_GAP = 150, 26
PAD = 16


@dataclass
class Placed:
    node: ForkNode
    depth: int
    x: int = 0
    y: int = 0
    parent: Placed | None = None
    children: list[Placed] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return self.node["status"] == "MERGED" or self.node.get("merged_on") is not None

    @property
    def mid_y(self) -> int:
        return self.y + NODE_H // 2


@dataclass
class Drawing:
    width: int
    height: int
    nodes: list[Placed]
    edges: list[dict[str, Any]]


def layout(roots: list[ForkNode]) -> Drawing:
    placed: list[Placed] = []
    next_row = [0]

    def place(node: ForkNode, depth: int, parent: Placed | None) -> Placed:
        p = Placed(node, depth, PAD + depth * (NODE_W + COL_GAP), parent=parent)
        placed.append(p)
        p.children = [place(c, depth + 1, p) for c in node["children"]]
        if p.children:
            p.y = (p.children[0].y + p.children[-1].y) // 2
        else:
            p.y = PAD + next_row[0] * (NODE_H + ROW_GAP)
            next_row[0] += 1
        return p

    for root in roots:
        place(root, 0, None)
    edges = []
    for p in placed:
        if p.parent is None:
            continue
        x1, y1 = p.parent.x + NODE_W, p.parent.mid_y
        x2, y2 = p.x, p.mid_y
        mx = (x1 + x2) // 2
        edges.append(
            {
                "path": f"M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}",
                "child": p.node,
                "parent": p.parent.node,
                "merged": p.merged,
                "label_x": x2 - 8,
                "label_y": y2 - 8,
            }
        )
    depth = max((p.depth for p in placed), default=0)
    width = 2 * PAD + (depth + 1) * NODE_W + depth * COL_GAP
    height = 2 * PAD + max(1, next_row[0]) * (NODE_H + ROW_GAP) - ROW_GAP
    return Drawing(width, height, placed, edges)
