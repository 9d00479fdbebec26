"""System Graph blast-radius queries: placet's GraphIndex against networkx, same graph, one run.

Builds a synthetic dependency graph (default 100,000 nodes, 1,000,000 edges) by batched
preferential attachment: nodes arrive in order; each new node depends on (``calls`` or
``depends_on``) a heavy-tailed number of older nodes, picked with probability proportional
to their in-degree + 1, so a few old nodes collect tens of thousands of dependents. A small
share of edges point the other way (an old node depending on a younger one), which makes
cycles. Tags (``revenue-path``, ``regulated-data:*``, ``internet-facing``) and one of 1,000
owning teams are spread over the nodes, so the roll-ups have work to do.

It then builds :class:`placet.graph.queries.GraphIndex` (timed), picks targets whose blast
radius is small (2 to 100 nodes), medium (500 to 2,000) and whole-graph (at least half of
the nodes), and times, per target, ``index.blast([target])`` (radius, distances and the
roll-up of tags, owners and data classes; paths are built on demand and timed separately)
and networkx doing the same walk (``single_source_shortest_path_length`` over the reversed
call graph: a reverse BFS with distances). Every placet radius is checked against
networkx's distances. When rustworkx is installed, ``rustworkx.bfs_layers`` on the same
graph is timed too, for reference. Also timed, at a tenth of the size: ``merge`` of the
same kind of graph as import facts, its digest and ``GraphIndex(graph)``.

Targets: p99 <= 10 ms for radii up to 1,000 nodes, <= 50 ms for the whole graph, and
>= 10x faster than networkx on the medium and whole-graph radii.

Usage (from the repository root; needs numpy and networkx)::

    .venv/bin/python bench/graph.py                     # defaults below, a few minutes
    .venv/bin/python bench/graph.py --nodes 20000 --edges 200000 --queries 20 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from placet.graph.merge import merge
from placet.graph.model import EdgeFact, EdgeKind, ImportResult, NodeFact, NodeKind, Provenance
from placet.graph.queries import GraphIndex

Ints = npt.NDArray[np.int64]
CLASSES = {  # name: (smallest, largest radius as a share of nodes or a count)
    "small": (2, 100),
    "medium": (500, 2_000),
    "whole": (None, None),  # at least half of the nodes
}
TARGET_P99_MS = {"small": 10.0, "medium": 10.0, "whole": 50.0}
TARGET_RATIO = {"medium": 10.0, "whole": 10.0}
TEAMS = 1_000


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def generate(n: int, m: int, seed: int, back_share: float) -> tuple[Ints, Ints, Ints]:
    """Edges (src depends on dst) by batched preferential attachment, exactly ``m`` of them,
    and each edge's kind (0 calls, 1 depends_on)."""
    scale = 1.25
    while True:  # picks repeat on the hubs: draw more until m distinct edges remain
        found = _attach(n, m, seed, back_share, scale)
        if found.size >= m:
            break
        scale *= 1.1 * m / found.size
    rng = np.random.default_rng(seed)
    key = np.sort(rng.choice(found, m, replace=False))
    kinds = (rng.random(m) < 0.3).astype(np.int64)
    return key // n, key % n, kinds


def _attach(n: int, m: int, seed: int, back_share: float, scale: float) -> Ints:
    rng = np.random.default_rng(seed)
    out = np.ceil(rng.pareto(2.0, n) * (m / n) * scale + 1).astype(np.int64)
    indeg = np.zeros(n, dtype=np.float64)
    sources, targets = [], []
    start = 1
    while start < n:
        end = min(n, start + max(1, min(2_048, start // 4)))
        counts = np.minimum(out[start:end], start)
        weights = indeg[:start] + 1.0
        picked = rng.choice(start, int(counts.sum()), p=weights / weights.sum())
        sources.append(np.repeat(np.arange(start, end, dtype=np.int64), counts))
        targets.append(picked.astype(np.int64))
        np.add.at(indeg, picked, 1.0)
        start = end
    src, dst = np.concatenate(sources), np.concatenate(targets)
    back = int(m * back_share)
    older = rng.integers(0, n // 2, back)
    younger = rng.integers(n // 2, n, back)
    src, dst = np.concatenate((src, older)), np.concatenate((dst, younger))
    return np.unique(src * n + dst)


def node_columns(
    n: int, seed: int
) -> tuple[list[str], list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Shuffled ids (id order is not age order), tags and one owner per node."""
    rng = np.random.default_rng(seed + 1)
    ids = [f"svc-{i:06d}" for i in rng.permutation(n).tolist()]
    roll = rng.random(n).tolist()
    classes = ("pii", "pci", "phi")
    tags: list[tuple[str, ...]] = []
    for i, r in enumerate(roll):
        found = []
        if r < 0.02:
            found.append("revenue-path")
        if 0.02 <= r < 0.03:
            found.append(f"regulated-data:{classes[i % 3]}")
        if 0.03 <= r < 0.035:
            found.append("internet-facing")
        tags.append(tuple(found))
    owners: list[tuple[str, ...]] = [
        (f"team:t{t:04d}",) for t in rng.integers(0, TEAMS, n).tolist()
    ]
    return ids, tags, owners


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
        "max_ms": round(ordered[-1], 3),
    }


def pick_targets(index: GraphIndex, n: int, per_class: int, seed: int) -> dict[str, list[str]]:
    """Targets per radius class: a random sample's radii sorted into the classes."""
    rng = np.random.default_rng(seed + 2)
    ids = index.ids
    found: dict[str, list[tuple[str, int]]] = {name: [] for name in CLASSES}
    for i in rng.permutation(n).tolist():
        if all(len(v) >= per_class for v in found.values()):
            break
        count = index.blast([ids[i]]).count
        for name, (low, high) in CLASSES.items():
            fits = count >= n // 2 if low is None else low <= count <= (high or n)
            if fits and len(found[name]) < per_class:
                found[name].append((ids[i], count))
    return {name: [t for t, _ in items] for name, items in found.items()}


def merge_scale(n: int, m: int, seed: int) -> dict[str, Any]:
    """merge + digest + GraphIndex(graph) on import facts of an n-node, m-edge graph."""
    src, dst, kinds = generate(n, m, seed, 0.001)
    ids, tags, owners = node_columns(n, seed)
    prov = Provenance("bench", "synthetic", "bench.yaml", None)
    kind_of = (EdgeKind.CALLS, EdgeKind.DEPENDS_ON)
    result = ImportResult(
        importer="synthetic",
        nodes=tuple(
            NodeFact(ids[i], NodeKind.SERVICE, prov, name=ids[i], owner=owners[i][0], tags=tags[i])
            for i in range(n)
        ),
        edges=tuple(
            EdgeFact(ids[s], ids[d], kind_of[k], prov)
            for s, d, k in zip(src.tolist(), dst.tolist(), kinds.tolist(), strict=True)
        ),
    )
    merge_ms, graph = timed(lambda: merge([result]))
    digest_ms, _ = timed(lambda: graph.digest)
    index_ms, _ = timed(lambda: GraphIndex(graph))
    return {
        "nodes": n,
        "edges": m,
        "merge_ms": round(merge_ms),
        "digest_ms": round(digest_ms),
        "index_ms": round(index_ms),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50, help="targets per radius class")
    parser.add_argument("--repeat", type=int, default=5, help="placet runs per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-merge", action="store_true", help="skip the merge measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    n, m = args.nodes, args.edges
    out: dict[str, Any] = {"load_before": os.getloadavg()[0], "nodes": n, "edges": m}

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    gen_ms, (src, dst, kinds) = timed(lambda: generate(n, m, args.seed, 0.001))
    ids, tags, owners = node_columns(n, args.seed)
    indeg = np.bincount(dst, minlength=n)
    out["generate_ms"] = round(gen_ms)
    out["in_degree"] = {
        "max": int(indeg.max()),
        "p99": float(np.percentile(indeg, 99)),
        "median": float(np.median(indeg)),
    }
    say(f"graph: {n:,} nodes, {m:,} edges in {gen_ms / 1000:.1f} s; in-degree {out['in_degree']}")

    kind_of = [EdgeKind.CALLS, EdgeKind.DEPENDS_ON]
    edge_kinds = [kind_of[k] for k in kinds.tolist()]
    index_ms, index = timed(
        lambda: GraphIndex.from_arrays(
            ids, [NodeKind.SERVICE] * n, tags, owners, src, dst, edge_kinds, "bench"
        )
    )
    out["index_build_ms"] = round(index_ms)
    say(f"placet GraphIndex built in {index_ms:.0f} ms")

    nx_ms, graph = timed(lambda: _networkx(ids, tags, owners, src, dst))
    out["networkx_build_ms"] = round(nx_ms)
    say(f"networkx DiGraph built in {nx_ms:.0f} ms")
    rx_graph = _rustworkx(n, src, dst)

    targets = pick_targets(index, n, args.queries, args.seed)
    out["classes"] = {}
    gc.collect()
    gc.freeze()
    for name, chosen in targets.items():
        if not chosen:
            say(f"{name}: no target in this class")
            continue
        result = _measure(index, graph, rx_graph, ids, chosen, args.repeat)
        out["classes"][name] = result
        say(_line(name, result))
    if not args.no_merge:
        out["merge"] = merge_scale(n // 10, m // 10, args.seed)
        say(f"merge at a tenth of the size: {out['merge']}")
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        say(f"load average: {out['load_before']:.2f} before, {out['load_after']:.2f} after")
    return 0


def _networkx(
    ids: list[str],
    tags: list[tuple[str, ...]],
    owners: list[tuple[str, ...]],
    src: Ints,
    dst: Ints,
) -> Any:
    """The call graph in networkx, reversed (a view), with tags and owners as node data."""
    graph = nx.DiGraph()
    graph.add_nodes_from((ids[i], {"tags": tags[i], "owners": owners[i]}) for i in range(len(ids)))
    graph.add_edges_from((ids[s], ids[d]) for s, d in zip(src.tolist(), dst.tolist(), strict=True))
    return graph.reverse(copy=False)


def _networkx_blast(graph: Any, target: str) -> tuple[dict[str, int], set[str], set[str]]:
    """networkx doing all of placet's blast: the distances, then the roll-up from node data."""
    distances = nx.single_source_shortest_path_length(graph, target)
    tags: set[str] = set()
    owners: set[str] = set()
    data = graph.nodes
    for node in distances:
        tags.update(data[node]["tags"])
        owners.update(data[node]["owners"])
    return distances, tags, owners


def _rustworkx(n: int, src: Ints, dst: Ints) -> Any:
    try:
        import rustworkx as rx
    except ImportError:
        return None
    graph = rx.PyDiGraph()
    graph.add_nodes_from(range(n))
    order = np.lexsort((src, dst))  # each node's out-edges added together: petgraph's best case
    graph.extend_from_edge_list(list(zip(dst[order].tolist(), src[order].tolist(), strict=True)))
    return graph


def _measure(
    index: GraphIndex, graph: Any, rx_graph: Any, ids: list[str], targets: list[str], repeat: int
) -> dict[str, Any]:
    placet_ms: list[float] = []
    paths_ms: list[float] = []
    networkx_ms: list[float] = []
    networkx_rollup_ms: list[float] = []
    rustworkx_ms: list[float] = []
    sizes = []
    position = {node_id: i for i, node_id in enumerate(ids)}  # the generator's numbering
    for target in targets:
        index.blast([target])  # warm
        for _ in range(repeat):
            ms, blast = timed(lambda: index.blast([target]))  # noqa: B023
            placet_ms.append(ms)
        sizes.append(blast.count)
        ms, expected = timed(lambda: nx.single_source_shortest_path_length(graph, target))  # noqa: B023
        networkx_ms.append(ms)
        ms, (_, tags, owners) = timed(lambda: _networkx_blast(graph, target))  # noqa: B023
        networkx_rollup_ms.append(ms)
        if blast.distances != expected:
            raise SystemExit(f"placet and networkx disagree on the radius of {target}")
        if set(blast.tags) != tags or set(blast.owners) != owners:
            raise SystemExit(f"placet and networkx disagree on the roll-up of {target}")
        ms, _ = timed(lambda: blast.as_dict())  # noqa: B023
        paths_ms.append(ms)
        if rx_graph is not None:
            import rustworkx as rx

            ms, _ = timed(lambda: rx.bfs_layers(rx_graph, [position[target]]))  # noqa: B023
            rustworkx_ms.append(ms)
    result: dict[str, Any] = {
        "targets": len(targets),
        "radius": {"min": min(sizes), "median": int(statistics.median(sizes)), "max": max(sizes)},
        "placet": summary(placet_ms),
        "networkx": summary(networkx_ms),
        "networkx_with_rollup": summary(networkx_rollup_ms),
        "placet_all_paths_as_dict": summary(paths_ms),
    }
    if rustworkx_ms:
        result["rustworkx_bfs_layers"] = summary(rustworkx_ms)
    placet_p50 = result["placet"]["p50_ms"]
    result["ratio_p50"] = round(placet_p50 / result["networkx"]["p50_ms"], 4)
    result["speedup_p50"] = round(result["networkx"]["p50_ms"] / placet_p50, 1)
    result["speedup_p50_same_work"] = round(
        result["networkx_with_rollup"]["p50_ms"] / placet_p50, 1
    )
    return result


def _line(name: str, r: dict[str, Any]) -> str:
    p, x, xr = r["placet"], r["networkx"], r["networkx_with_rollup"]
    text = (
        f"{name}: radius {r['radius']['min']:,}-{r['radius']['max']:,} ({r['targets']} targets)\n"
        f"  placet blast             p50 {p['p50_ms']:9.3f}  p99 {p['p99_ms']:9.3f} ms"
        f"  (target p99 <= {TARGET_P99_MS[name]:g} ms)\n"
        f"  networkx BFS, distances  p50 {x['p50_ms']:9.3f}  p99 {x['p99_ms']:9.3f} ms"
        f"  placet/networkx {r['ratio_p50']:.4f} ({r['speedup_p50']}x faster)\n"
        f"  networkx BFS + roll-up   p50 {xr['p50_ms']:9.3f}  p99 {xr['p99_ms']:9.3f} ms"
        f"  ({r['speedup_p50_same_work']}x faster)\n"
        f"  placet, all paths built  p50 {r['placet_all_paths_as_dict']['p50_ms']:9.3f} ms"
    )
    if "rustworkx_bfs_layers" in r:
        text += f"\n  rustworkx bfs_layers     p50 {r['rustworkx_bfs_layers']['p50_ms']:9.3f} ms"
    return text


if __name__ == "__main__":
    sys.exit(main())
