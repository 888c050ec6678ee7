"""Which blocks each loader consumer packs, how far it got, and how to go on with other consumers.

The loader cuts its document stream into *blocks* and packs each block on its own, so a block's
sequences depend on nothing but the block. The *work list* is the blocks still to pack, in order,
each with the first of its sequences still due (``start``): an explicit ``head`` followed by every
block from ``tail`` on. With ``C`` consumers (ranks × dataloader workers), consumer ``c`` packs the
items ``c, c + C, c + 2C, …`` of the list, so consumers never share a block.

A consumer's progress is ``(done, next)``: it finished its first ``done`` items and, in the item
after them, yielded every sequence before ``next`` (``-1``: none yet). :func:`remaining` turns the
progress of *every* consumer into a new work list holding exactly the sequences not yet yielded,
for any new number of consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WorkList:
    head: list[tuple[int, int]] = field(default_factory=list)  # (block, first sequence due)
    tail: int = 0  # every block from here on, from its first sequence
    blocks: int | None = None  # blocks in the stream; None: endless

    def item(self, j: int) -> tuple[int, int] | None:
        if j < len(self.head):
            return self.head[j]
        block = self.tail + j - len(self.head)
        return (block, 0) if self.blocks is None or block < self.blocks else None

    def to_json(self) -> dict:
        return {"head": [list(h) for h in self.head], "tail": self.tail, "blocks": self.blocks}

    @classmethod
    def from_json(cls, data: dict) -> WorkList:
        return cls([(int(b), int(s)) for b, s in data["head"]], int(data["tail"]), data["blocks"])


def remaining(work: WorkList, progress: dict[int, tuple[int, int]], consumers: int) -> WorkList:
    """The work list of what ``consumers`` consumers (all of them in ``progress``) left undone."""
    missing = sorted(set(range(consumers)) - set(progress))
    if missing:
        raise ValueError(f"the progress of consumers {missing} is missing")
    first = {c: c + done * consumers for c, (done, _) in progress.items()}  # each one's first undone item
    frontier = max(first.values()) + 1  # every item from here on is untouched
    head = []
    for j in range(min(first.values()), frontier):
        item = work.item(j)
        if item is None:
            break
        c = j % consumers
        if j < first[c]:
            continue  # done
        head.append((item[0], progress[c][1] if j == first[c] and progress[c][1] >= 0 else item[1]))
    if frontier < len(work.head):
        return WorkList(head + work.head[frontier:], work.tail, work.blocks)
    return WorkList(head, work.tail + frontier - len(work.head), work.blocks)
