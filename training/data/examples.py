"""gold.examples as the trainer sees it: which columns to read, the task list, and typed batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import torch

from schemas import contract
from schemas.tables import examples as examples_schema
from training.data.snapshot import Snapshot, SnapshotError, require_columns

if TYPE_CHECKING:
    from training.data.resident import ResidentGraph


# Neighbour edge weights and types are read by the sampler, not by the encoders: LightGCN normalises
# by full-graph degrees only (docs/method.md §LightGCN), so the trainer skips those columns and
# their IO.
_SIDE_COLUMNS = ("nbr_ids", "nbr_count", "degree")
SLIM_COLUMNS = ("user_node", "item_node", "day", "domain_id")


def example_columns(tasks: Sequence[str], neighbor_arrays: bool = False) -> list[str]:
    """The columns a training batch reads, in schema order: the impression alone (slim rows, whose
    lists and features come from the resident graph and node table), or with `neighbor_arrays` also
    the lists and features a self-contained row carries."""
    wanted = {*SLIM_COLUMNS, *tasks}
    if neighbor_arrays:
        wanted |= {"user_features", "item_features",
                   *(f"{side}_{c}" for side in ("user", "item") for c in _SIDE_COLUMNS)}
    names = examples_schema(list(tasks), neighbor_arrays=True).names
    return [n for n in names if n in wanted]


def has_neighbor_arrays(snapshot: Snapshot, tasks: Sequence[str]) -> bool:
    """Whether the rows are self-contained (carry both nodes' lists and features)."""
    names = set(snapshot.schema.names)
    return all(c in names for c in example_columns(tasks, neighbor_arrays=True))


def resolve_tasks(snapshot: Snapshot, fallback: Sequence[str] = ()) -> tuple[str, ...]:
    """Task labels from the table property grec.labels, else `fallback` (the --tasks flag)."""
    prop = snapshot.configuration.get(contract.LABELS.key, "")
    tasks = tuple(t.strip() for t in prop.split(",") if t.strip()) or tuple(fallback)
    if not tasks:
        raise SnapshotError(f"{snapshot.table} v{snapshot.version} has no {contract.LABELS.key} property: "
                            "name the task label columns with --tasks")
    if prop and fallback and tuple(fallback) != tasks:
        raise SnapshotError(f"--tasks {list(fallback)} disagrees with {snapshot.table}'s {contract.LABELS.key}={prop}")
    require_columns(snapshot, example_columns(tasks))
    return tasks


def count_domains(snapshot: Snapshot) -> int:
    """Number of domain codes: from grec.domains (comma list), else max(domain_id) + 1 from file stats."""
    prop = snapshot.configuration.get(contract.DOMAINS.key, "")
    top = snapshot.column_max.get("domain_id")
    if prop:
        n = len([d for d in prop.split(",") if d.strip()])
        if top is not None and int(top) >= n:
            raise SnapshotError(f"{snapshot.table} v{snapshot.version}: domain_id reaches {top} but "
                                f"{contract.DOMAINS.key} lists only {n} domains")
        return n
    if top is None:
        raise SnapshotError(f"{snapshot.table} v{snapshot.version} has neither a {contract.DOMAINS.key} property nor "
                            "domain_id statistics")
    return int(top) + 1


@dataclass
class Neighbours:
    """A node's sampled 1-hop list: ids padded to k, how many are real, and its full-graph degree.

    `exclude` (B,) names one neighbour per row to leave out of message passing: the other end of the
    example's own (user, item) pair. The graph holds every positive before the cutoff, so a training
    impression's positive edge is in its user's and item's lists while an evaluation impression's
    never is; left in, the encoder reads the training label off the graph (target-edge leakage, the
    reason link-prediction training removes target edges). Full-graph degrees are kept as stored.
    """

    ids: torch.Tensor     # (B, k) long
    count: torch.Tensor   # (B,) long
    degree: torch.Tensor  # (B,) float
    exclude: Optional[torch.Tensor] = None  # (B,) long

    def mask(self) -> torch.Tensor:
        """(B, k) 1.0 on the neighbours that pass messages, 0.0 on padding and on `exclude`.

        Padding is masked by count, not by id: PAD_NODE is a real node id.
        """
        k = self.ids.shape[1]
        keep = torch.arange(k, device=self.ids.device)[None, :] < self.count[:, None]
        if self.exclude is not None:
            keep &= self.ids != self.exclude[:, None]
        return keep.float()


@dataclass
class ExampleBatch:
    user_node: torch.Tensor      # (B,) long
    item_node: torch.Tensor      # (B,) long
    day: torch.Tensor            # (B,) long, days since 1970-01-01
    domain_id: torch.Tensor      # (B,) long
    labels: torch.Tensor         # (B, T) float 0/1
    user: Neighbours
    item: Neighbours
    # Side features a self-contained row carries; None: the model reads them from its node table.
    user_features: Optional[torch.Tensor] = None  # (B, Fu) float
    item_features: Optional[torch.Tensor] = None  # (B, Fi) float

    @property
    def size(self) -> int:
        return self.user_node.shape[0]

    @classmethod
    def from_columns(cls, cols: Mapping[str, torch.Tensor], tasks: Sequence[str],
                     mask_target_edge: bool = True, graph: Optional["ResidentGraph"] = None) -> "ExampleBatch":
        """A batch from loader columns; `mask_target_edge` leaves each example's own (user, item) edge
        out of both nodes' neighbour lists (see `Neighbours`).

        With `graph` (training.data.resident) the lists are gathered from the resident graph by node
        id and the columns need only the impression (slim rows); without it they come from the
        row's own arrays, as self-contained rows carry them.
        """
        user_node, item_node = cols["user_node"].long(), cols["item_node"].long()

        def side(s: str, node: torch.Tensor, other: torch.Tensor) -> Neighbours:
            exclude = other if mask_target_edge else None
            if graph is not None:
                return graph.neighbours(node, exclude)
            return Neighbours(cols[f"{s}_nbr_ids"].long(), cols[f"{s}_nbr_count"].long(),
                              cols[f"{s}_degree"].float(), exclude)

        def features(s: str) -> Optional[torch.Tensor]:
            f = cols.get(f"{s}_features")
            return f.float() if f is not None and graph is None else None

        return cls(
            user_node=user_node, item_node=item_node,
            day=cols["day"].long(), domain_id=cols["domain_id"].long(),
            labels=torch.stack([cols[t].float() for t in tasks], dim=1),
            user=side("user", user_node, item_node), item=side("item", item_node, user_node),
            user_features=features("user"), item_features=features("item"))
