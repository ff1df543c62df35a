"""The recommender: per step a version, batch size, core count and number of replicas that maximise
pipeline accuracy within the SLA at a target load, then minimise cost.

Inputs are measured figures (a profile): for each way to run a step (variant, cores, batch size) its
p95 latency per document and its throughput per replica; and the accuracy of each configuration the
plans can form. Sizing one step for a load of L documents per second:

    replicas  r = ceil(L / (throughput × max_utilisation))
    wait      (b − 1) / (L / r)    a document may wait for its batch to fill; each replica sees L / r
    latency   p95 + wait           must fit the step's budget; the steps' sum must fit the end-to-end SLA
    cost      r × cores × price per core-hour (provisioned, busy or not)

The search is exact over the profiled grid: every combination of per-step options is considered
(options another option of the same variant beats on both latency and cost are dropped first, which
cannot remove an optimum).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common.params import ParameterError

STEP_ORDER = ("preprocess", "ocr", "classify", "extract")


@dataclass(frozen=True)
class Option:
    """One measured way to run one step."""

    step: str
    variant: str
    cores: int
    batch_size: int
    p95_ms: float  # latency per document (a document's latency is its batch's), p95
    throughput: float  # documents per second of one replica
    oversubscribed: bool = False


@dataclass(frozen=True)
class Sized:
    option: Option
    replicas: int
    wait_ms: float
    latency_ms: float
    cost_per_hour: float


@dataclass(frozen=True)
class Plan:
    steps: dict[str, Sized]
    accuracy: float
    latency_ms: float
    cost_per_hour: float
    load: float

    @property
    def config_id(self) -> str:
        return "|".join(self.steps[s].option.variant for s in STEP_ORDER if s in self.steps)

    @property
    def cost_per_1k_docs(self) -> float:
        return self.cost_per_hour / (self.load * 3600.0) * 1000.0


@dataclass
class Recommendation:
    best: Plan | None
    runners_up: list[Plan] = field(default_factory=list)  # the best plan of each next-best configuration
    frontier: list[Plan] = field(default_factory=list)  # cheapest plan per accuracy level, Pareto-optimal
    per_config: list[Plan] = field(default_factory=list)  # the best plan of every feasible configuration
    feasible: int = 0
    considered: int = 0
    reason: str = ""  # why nothing is feasible: the tightest constraint, with figures


def size(option: Option, load: float, price: float, max_utilisation: float) -> tuple[Sized, int]:
    replicas = max(1, math.ceil(load / (option.throughput * max_utilisation))) if option.throughput > 0 else 10**9
    per_replica = load / replicas
    wait = (option.batch_size - 1) / per_replica * 1000.0 if option.batch_size > 1 else 0.0
    latency = option.p95_ms + wait
    return Sized(option, replicas, wait, latency, replicas * option.cores * price), replicas


def recommend(options: Sequence[Option], accuracy: Mapping[str, float], *, end_to_end_ms: float,
              step_budgets_ms: Mapping[str, float], load: float, price_per_core_hour: float,
              max_utilisation: float = 0.8, max_replicas: int = 32, keep: int = 5) -> Recommendation:
    """`accuracy` maps configuration ids (the step variants joined with "|") to accuracy in [0, 1]."""
    if load <= 0:
        raise ParameterError(f"parameter load: the target load must be positive, got {load}")
    steps = [s for s in STEP_ORDER if any(o.step == s for o in options)]
    sized: dict[str, dict[str, list[Sized]]] = {s: {} for s in steps}
    blocked: dict[str, list[str]] = {s: [] for s in steps}
    best_latency: dict[str, Sized] = {}
    for option in options:
        entry, replicas = size(option, load, price_per_core_hour, max_utilisation)
        if replicas > max_replicas:
            blocked[option.step].append("load")
            continue
        if option.step not in best_latency or entry.latency_ms < best_latency[option.step].latency_ms:
            best_latency[option.step] = entry
        budget = step_budgets_ms.get(option.step)
        if budget is not None and entry.latency_ms > budget:
            blocked[option.step].append("budget")
            continue
        sized[option.step].setdefault(option.variant, []).append(entry)
    for step in steps:  # drop options beaten on both latency and cost by another of the same variant
        for variant, entries in sized[step].items():
            sized[step][variant] = [e for e in entries if not any(
                (o.latency_ms <= e.latency_ms and o.cost_per_hour <= e.cost_per_hour)
                and (o.latency_ms < e.latency_ms or o.cost_per_hour < e.cost_per_hour) for o in entries)]
    rec = Recommendation(best=None)
    plans: list[Plan] = []
    for variants in itertools.product(*[sorted(sized[s]) for s in steps]):
        config_id = "|".join(variants)
        if config_id not in accuracy:
            continue
        for combo in itertools.product(*[sized[s][v] for s, v in zip(steps, variants, strict=True)]):
            rec.considered += 1
            latency = sum(e.latency_ms for e in combo)
            if latency > end_to_end_ms:
                continue
            plans.append(Plan(dict(zip(steps, combo, strict=True)), accuracy[config_id], latency,
                              sum(e.cost_per_hour for e in combo), load))
    rec.feasible = len(plans)
    if not plans:
        if all(sized[s] for s in steps) and rec.considered == 0:
            rec.reason = ("no feasible configuration; no combination of the options within every step budget has a "
                          "measured accuracy (profile the default variant of each step too)")
        else:
            rec.reason = _tightest(steps, options, sized, blocked, best_latency, end_to_end_ms, step_budgets_ms, load,
                                   max_replicas, max_utilisation)
        return rec
    plans.sort(key=lambda p: (-p.accuracy, p.cost_per_hour, p.latency_ms))
    rec.best = plans[0]
    seen: set[str] = set()
    for plan in plans:
        if plan.config_id not in seen:
            seen.add(plan.config_id)
            rec.per_config.append(plan)
    rec.runners_up = rec.per_config[1:keep]  # the best plan of each next-best configuration
    frontier: list[Plan] = []
    for plan in sorted(plans, key=lambda p: (p.cost_per_hour, -p.accuracy, p.latency_ms)):
        if not frontier or plan.accuracy > frontier[-1].accuracy:
            frontier.append(plan)
    rec.frontier = frontier
    return rec


def _tightest(steps, options, sized, blocked, best_latency, end_to_end_ms, budgets, load, max_replicas,
              max_utilisation) -> str:
    """The constraint furthest out of reach, with the closest the profile comes to it."""
    problems: list[tuple[float, str]] = []
    for step in steps:
        if sized[step]:
            continue
        if step not in best_latency:  # every option needs more replicas than allowed
            fastest = max((o for o in options if o.step == step), key=lambda o: o.throughput)
            need = load / (fastest.throughput * max_utilisation) if fastest.throughput > 0 else math.inf
            problems.append((need / max_replicas, f"load: step {step} cannot carry {load:g} documents/s with at most "
                             f"{max_replicas} replicas (best throughput {fastest.throughput:.2f} documents/s per "
                             f"replica, {fastest.variant}, {fastest.cores} cores, batch {fastest.batch_size})"))
            continue
        entry = best_latency[step]
        budget = budgets[step]
        o = entry.option
        problems.append((entry.latency_ms / budget, f"step budget: {step} p95 {entry.latency_ms:.0f} ms > budget "
                         f"{budget:.0f} ms at best ({o.variant}, {o.cores} cores, batch {o.batch_size}, "
                         f"{entry.replicas} replicas, {entry.wait_ms:.0f} ms of it waiting for the batch to fill)"))
    if not problems:
        fastest = {s: min((e for v in sized[s].values() for e in v), key=lambda e: e.latency_ms) for s in steps}
        total = sum(e.latency_ms for e in fastest.values())
        parts = ", ".join(f"{s} {e.latency_ms:.0f} ms" for s, e in fastest.items())
        problems.append((total / end_to_end_ms, f"end-to-end SLA: the fastest options within every step budget sum to "
                         f"{total:.0f} ms > {end_to_end_ms:.0f} ms ({parts})"))
    problems.sort(reverse=True)
    return "no feasible configuration; tightest constraint: " + problems[0][1]


def explain(rec: Recommendation, *, end_to_end_ms: float, price_per_core_hour: float, currency: str = "USD") -> str:
    """The choice in words (markdown)."""
    if rec.best is None:
        return f"**{rec.reason}.** Relax that constraint (budget, load or replicas) or profile faster options."
    best = rec.best
    lines = [f"At a target load of **{best.load:g} documents/s**, the most accurate plan within the SLA is "
             f"**{best.config_id}** with **{best.accuracy * 100:.1f}%** of assertions passed "
             f"({rec.feasible} of {rec.considered} plans considered are feasible). Per step:", ""]
    for step, entry in best.steps.items():
        o = entry.option
        lines.append(f"- **{step}**: `{o.variant}` on {o.cores} core(s) at batch size {o.batch_size}, "
                     f"{entry.replicas} replica(s): p95 {o.p95_ms:.0f} ms + {entry.wait_ms:.0f} ms waiting for "
                     f"the batch to fill = {entry.latency_ms:.0f} ms"
                     + (" (measured oversubscribed: this machine has fewer cores)" if o.oversubscribed else ""))
    lines += ["", f"End to end {best.latency_ms:.0f} ms against the {end_to_end_ms:.0f} ms SLA; "
              f"{sum(e.replicas * e.option.cores for e in best.steps.values())} cores provisioned cost "
              f"{best.cost_per_hour:.4f} {currency}/hour at {price_per_core_hour} {currency} per core-hour, "
              f"i.e. {best.cost_per_1k_docs:.4f} {currency} per 1,000 documents at that load."]
    cheaper = [p for p in rec.frontier if p.cost_per_hour < best.cost_per_hour]
    if cheaper:
        c, cheapest = cheaper[-1], cheaper[0]
        line = (f"Cheaper plans give up accuracy: {c.config_id} costs {c.cost_per_hour:.4f} {currency}/hour for "
                f"{c.accuracy * 100:.1f}%")
        if cheapest is not c:
            line += (f"; the cheapest feasible plan, {cheapest.config_id}, {cheapest.cost_per_hour:.4f} {currency}/hour "
                     f"for {cheapest.accuracy * 100:.1f}%")
        lines.append(line + " (the accuracy/cost frontier).")
    else:
        lines.append("No feasible plan is cheaper: here the most accurate plan is also the cheapest, so the choice "
                     "is not a trade-off.")
    other = rec.runners_up[0] if rec.runners_up else None
    if other is not None:
        lines.append(f"The best other configuration, {other.config_id}, reaches {other.accuracy * 100:.1f}% for "
                     f"{other.cost_per_hour:.4f} {currency}/hour.")
    return "\n".join(lines)
