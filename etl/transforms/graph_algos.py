"""Graph algorithms over gold.nodes / gold.edges: out-degrees, connected components, and the rows of
gold.graph_stats.

GraphFrames is used when its JVM JARs are on the classpath (`etl.session.has_graphframes_jar()`);
otherwise a pure-DataFrame implementation gives the same output (the JARs cannot always be fetched,
and pyspark alone cannot run GraphFrames). Components are found with the large-star / small-star
algorithm (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), which
converges in O(log^2 n) rounds where min-label propagation needs as many rounds as the diameter; a
few cheap rounds of propagation first shrink the graph it runs on (connected_components).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.session import has_graphframes_jar


def _graphframe(nodes: DataFrame, edges: DataFrame):
    from graphframes import GraphFrame

    return GraphFrame(nodes.select(F.col("node_id").alias("id")), edges.select("src", "dst"))


def out_degrees(edges: DataFrame) -> DataFrame:
    """(id, degree): the number of edges with src = id, for nodes with at least one."""
    if has_graphframes_jar():
        g = _graphframe(edges.select(F.col("src").alias("node_id")).distinct(), edges)
        return g.outDegrees.select("id", F.col("outDegree").cast("long").alias("degree"))
    return edges.groupBy(F.col("src").alias("id")).agg(F.count(F.lit(1)).alias("degree"))


@dataclass(frozen=True)
class ComponentParams:
    """Args:
        max_rounds: give up (RuntimeError) after this many large-star/small-star rounds; the
            algorithm needs O(log^2 n), so hitting it means a bug, not a big graph.
        propagation_rounds: rounds of min-label propagation run first, each one pass over the
            edges against a broadcast of the nodes' labels (see connected_components).
        propagation_max_nodes: propagate only when the graph has at most this many nodes, so
            that their labels fit a broadcast (16 bytes a node: 2M nodes, about 32 MB).
    """

    max_rounds: int = 200
    propagation_rounds: int = 3
    propagation_max_nodes: int = 2_000_000


def _canonical(pairs: DataFrame) -> DataFrame:
    """Undirected edges as distinct (hi, lo) with hi > lo; self loops dropped."""
    return (pairs.select(F.greatest("a", "b").alias("hi"), F.least("a", "b").alias("lo"))
            .where(F.col("hi") != F.col("lo")).distinct())


def _large_star(e: DataFrame) -> DataFrame:
    # Each node links its larger neighbours to the smallest node of its closed neighbourhood.
    sym = e.select(F.col("hi").alias("a"), F.col("lo").alias("b")).unionByName(
        e.select(F.col("lo").alias("a"), F.col("hi").alias("b")))
    m = sym.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("m"))
    return _canonical(sym.where(F.col("b") > F.col("a")).join(m, "a")
                      .select(F.col("b").alias("a"), F.col("m").alias("b")))


def _small_star(e: DataFrame) -> DataFrame:
    # Each node links itself and its smaller neighbours to the smallest of them.
    m = e.groupBy(F.col("hi")).agg(F.min("lo").alias("m"))
    linked = e.join(m, "hi")
    return _canonical(linked.select(F.col("lo").alias("a"), F.col("m").alias("b")).unionByName(
        linked.select(F.col("hi").alias("a"), F.col("m").alias("b"))))


def _is_star_forest(e: DataFrame) -> bool:
    """Every hi has one lo and no lo is a hi: each component is a star centred on its minimum."""
    roles = (e.select(F.col("hi").alias("n"), F.lit(1).alias("as_hi"), F.lit(0).alias("as_lo"))
             .unionByName(e.select(F.col("lo").alias("n"), F.lit(0).alias("as_hi"), F.lit(1).alias("as_lo")))
             .groupBy("n").agg(F.sum("as_hi").alias("h"), F.max("as_lo").alias("l")))
    return roles.where((F.col("h") > 1) | ((F.col("h") == 1) & (F.col("l") == 1))).limit(1).count() == 0


def _stars(pairs: DataFrame, params: ComponentParams) -> DataFrame:
    """(node, component) for the nodes of the undirected edges `pairs` (a, b): large-star /
    small-star rounds until each component is a star centred on its smallest node."""
    current = _canonical(pairs).localCheckpoint()
    rounds = 0
    while not _is_star_forest(current):
        if rounds == params.max_rounds:
            raise RuntimeError(f"connected components did not converge in {params.max_rounds} rounds")
        # Checkpoint every round: the convergence test evaluates the frame anyway, and cutting the
        # lineage keeps each round's plan the same size.
        current = _small_star(_large_star(current)).localCheckpoint()
        rounds += 1
    return current.select(F.col("hi").alias("node"), F.col("lo").alias("component"))


def _propagated_labels(edges: DataFrame, rounds: int) -> DataFrame:
    """(node, label) for every endpoint of `edges`: the smallest node within `rounds` hops.

    The first round needs no labels (a node's own id is its label); each later one looks the
    neighbours' labels up in a broadcast, so a round is one pass over the edges and a shuffle of
    one partial minimum per node, where a large-star/small-star round shuffles the edges several
    times."""
    both = edges.select(F.col("src").alias("node"), F.col("dst").alias("nbr")).unionByName(
        edges.select(F.col("dst").alias("node"), F.col("src").alias("nbr")))
    labels = both.groupBy("node").agg(F.least(F.min("nbr"), F.col("node")).alias("label")).localCheckpoint()
    for _ in range(rounds - 1):
        nbr_label = F.broadcast(labels.select(F.col("node").alias("nbr"), F.col("label").alias("l")))
        seen = both.join(nbr_label, "nbr").groupBy("node").agg(F.min("l").alias("l"))
        labels = labels.join(seen, "node").select("node", F.least("label", "l").alias("label")).localCheckpoint()
    return labels


def connected_components(nodes: DataFrame, edges: DataFrame,
                         params: ComponentParams = ComponentParams()) -> DataFrame:
    """(node_id, component) for every node; edges are taken as undirected.

    DataFrame implementation: `component` is the smallest node_id of the component. With GraphFrames
    the labels are GraphFrames' own; only the partition into components is part of the contract.

    A graph of at most `propagation_max_nodes` nodes first runs `propagation_rounds` of min-label
    propagation: every node's label is then a node of its component, so the components are those of
    the much smaller graph of labels joined by an edge, which large-star / small-star finishes (a
    long path still converges in O(log^2 n) rounds there). On 12M edges a large-star/small-star
    round took several shuffles of the edges; a propagation round is one pass.
    """
    if has_graphframes_jar():
        spark = nodes.sparkSession
        if not spark.sparkContext.getCheckpointDir():
            raise RuntimeError("GraphFrames connectedComponents needs a checkpoint dir: "
                               "spark.sparkContext.setCheckpointDir(<lake>/_checkpoints)")
        cc = _graphframe(nodes, edges).connectedComponents()
        return cc.select(F.col("id").alias("node_id"), F.col("component").cast("long"))
    pairs = edges.select(F.col("src").alias("a"), F.col("dst").alias("b"))
    if params.propagation_rounds > 0 and nodes.count() <= params.propagation_max_nodes:
        labels = _propagated_labels(edges, params.propagation_rounds)
        lookup = F.broadcast(labels)
        contracted = (pairs.join(lookup.select(F.col("node").alias("a"), F.col("label").alias("la")), "a")
                      .join(lookup.select(F.col("node").alias("b"), F.col("label").alias("lb")), "b")
                      .select(F.col("la").alias("a"), F.col("lb").alias("b")))
        star = _stars(contracted, params).select(F.col("node").alias("label"), "component")
        label = (labels.join(star, "label", "left")
                 .select(F.col("node"), F.coalesce("component", "label").alias("component")))
    else:
        label = _stars(pairs, params)
    # Every component is now labelled by its smallest node; a node without edges is its own.
    return (nodes.select("node_id").join(label.withColumnRenamed("node", "node_id"), "node_id", "left")
            .select("node_id", F.coalesce("component", "node_id").alias("component")))


# ---- gold.graph_stats -----------------------------------------------------------------------------
_ALL = "all"


def _dims(*pairs: tuple[str, Column]) -> Column:
    """One (dimension, group) struct per pair whose group is not null, for explode."""
    return F.filter(F.array(*(F.struct(F.lit(d).alias("dimension"), g.cast("string").alias("group"))
                              for d, g in pairs)), lambda s: s["group"].isNotNull())


def _metric_rows(df: DataFrame, metrics: dict[str, Column]) -> DataFrame:
    """Unpivot one aggregated row per (dimension, group) into (metric, dimension, group, value)."""
    agg = df.groupBy("dimension", "group").agg(*(c.cast("double").alias(m) for m, c in metrics.items()))
    per_metric = F.explode(F.array(*(F.struct(F.lit(m).alias("metric"), F.col(m).alias("value"))
                                     for m in metrics)))
    return agg.select("dimension", "group", per_metric.alias("r")).select("r.metric", "dimension", "group", "r.value")


def _degree_metrics(degree: str) -> dict[str, Column]:
    pct = F.percentile_approx(degree, [0.5, 0.99], 10000)
    return {"nodes": F.count(F.lit(1)), "isolated_nodes": F.sum((F.col(degree) == 0).cast("long")),
            "degree_min": F.min(degree), "degree_mean": F.avg(degree), "degree_p50": pct[0],
            "degree_p99": pct[1], "degree_max": F.max(degree)}


def graph_stats(nodes: DataFrame, edges: DataFrame, components: Optional[DataFrame] = None) -> DataFrame:
    """Rows of gold.graph_stats: (metric, dimension, group, value).

    - per dimension `all` / `node_type` / `domain` (items only): nodes, isolated_nodes (degree 0),
      degree_min / mean / p50 / p99 / max (p50 and p99 approximate, 1e-4 relative rank error);
    - per `edge_type`: the same degree metrics over nodes with at least one edge of that type,
      counting only those edges (isolated_nodes is then 0);
    - edges per `all` / `edge_type` / `domain` (edges whose src is an item of the domain);
    - `all`: components, largest_component_size, and singleton_components.

    `components` defaults to connected_components(nodes, edges).
    """
    node_dims = nodes.select("degree", F.explode(_dims(("all", F.lit(_ALL)), ("node_type", F.col("node_type")),
                                                       ("domain", F.col("domain")))).alias("d"))
    # One aggregation of the edges serves both the per-type degrees and the edge counts (a count
    # per dimension is a sum of these), so the edges are neither joined nor exploded row by row.
    per_src_type = edges.groupBy("src", "edge_type").agg(F.count(F.lit(1)).alias("degree"))
    type_deg = per_src_type.select("degree", F.struct(F.lit("edge_type").alias("dimension"),
                                                      F.col("edge_type").alias("group")).alias("d"))
    degree_rows = _metric_rows(node_dims.unionByName(type_deg).select("degree", "d.*"), _degree_metrics("degree"))

    src_domain = nodes.select(F.col("node_id").alias("src"), "domain")
    edge_dims = (per_src_type.join(src_domain, "src", "left")
                 .select("degree", F.explode(_dims(("all", F.lit(_ALL)), ("edge_type", F.col("edge_type")),
                                                   ("domain", F.col("domain")))).alias("d"))
                 .select("degree", "d.*"))
    edge_rows = _metric_rows(edge_dims, {"edges": F.sum("degree")})

    comps = components if components is not None else connected_components(nodes, edges)
    sizes = comps.groupBy("component").agg(F.count(F.lit(1)).alias("size"))
    comp_rows = _metric_rows(sizes.withColumn("dimension", F.lit(_ALL)).withColumn("group", F.lit(_ALL)),
                             {"components": F.count(F.lit(1)), "largest_component_size": F.max("size"),
                              "singleton_components": F.sum((F.col("size") == 1).cast("long"))})
    return degree_rows.unionByName(edge_rows).unionByName(comp_rows)
