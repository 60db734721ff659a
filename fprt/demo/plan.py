"""What a demo dataset contains: the list of images to draw (``Job``) and their ground truth.

Planning is cheap and sequential; drawing is expensive and parallel. Every image gets its own
random stream keyed by (seed, task, split, role, class, index), so image i of a class is the same
whatever the other counts are and whatever the number of worker processes: a bigger set extends a
smaller one with the same seed.

subsets: K cohorts (``t1..tK``) and one simulated generator per cohort. Training: real images of
each cohort, and generated images = new anatomies from the cohort, moved and re-acquired in the
generator's style with its artefact. Test: more generated images of every generator, shuffled
under opaque names, labels t1..tK.

membership: one cohort. For each split (train, test) its own real images — ``used`` and
``not_used``, same distribution — and its own generator "trained" on the used ones: a fraction of
its outputs are traces of memorised used images, each re-rendered from that image's anatomy with
new noise, or blends of two of them; the rest are new anatomies. The single-image traces come in
three kinds, in the proportions of ``TRACE_MIX`` (of the non-blend copies): ``near-copy`` (same
place, same scanner protocol, new noise), ``moved-copy`` (same protocol; shifted, turned, rescaled
±3 % and smoothly warped) and ``restyled-copy`` (barely moved; the generator's own version of a
re-drawn protocol: window, level, gamma, sharpness). Not every used image is memorised; not-used images never are. The test split's real
images are new people, so a model cannot recognise identities: it must find transformed traces.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from .cohorts import Cohort, make_cohorts
from .generators import GeneratorStyle, Geometry, make_generator
from .phantom import Anatomy
from .scanner import Scanner

TASKS = ("subsets", "membership")
_TASK_CODE = {"subsets": 1, "membership": 2}

# defaults: small enough that `make demo` draws both sets in well under a minute on 2 cores
SUBSETS_DEFAULTS = {"classes": 5, "n_real": 60, "n_generated": 60, "n_test": 40}
MEMBERSHIP_DEFAULTS = {
    "n_used": 150,
    "n_not_used": 150,
    "n_generated": 400,
    "copy_fraction": 0.4,
    "memorised_fraction": 0.7,
    "blend_fraction": 0.15,
}


TRACE_MIX = (("near-copy", 0.3), ("moved-copy", 0.4), ("restyled-copy", 0.3))


def _trace_kinds(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` trace kinds in the proportions of ``TRACE_MIX`` (rounded; the last kind takes the rest), shuffled."""
    kinds: list[str] = []
    for name, frac in TRACE_MIX[:-1]:
        kinds += [name] * int(round(frac * n))
    kinds = kinds[:n] + [TRACE_MIX[-1][0]] * max(0, n - len(kinds))
    return [kinds[j] for j in rng.permutation(n)]


@dataclass(frozen=True)
class Job:
    """One image to draw and where it goes (``rel``: path relative to the dataset root)."""

    rel: str
    sources: tuple[Anatomy, ...]
    scanner: Scanner
    noise_seed: int
    generator: GeneratorStyle | None = None  # None: a real image
    geometries: tuple[Geometry, ...] = ()
    blend: tuple[float, float, bool] | None = None  # (split px, seam width px, vertical)


@dataclass
class Plan:
    task: str
    jobs: list[Job] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # test image id → label
    sources: list[tuple[str, str, str, str]] = field(default_factory=list)  # split, id, kind, source ids
    cohorts: list[Cohort] = field(default_factory=list)
    generators: dict[str, GeneratorStyle] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class _Streams:
    """Independent random streams keyed by tuples of small ints/strings."""

    def __init__(self, seed: int, task: str):
        self.base = [int(seed) & 0xFFFFFFFF, _TASK_CODE[task]]

    def __call__(self, *keys) -> np.random.Generator:
        ks = []
        for k in keys:
            if isinstance(k, str):
                ks.append(int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little"))
            else:
                ks.append(int(k))
        return np.random.default_rng(self.base + ks)


def _ids(rng: np.random.Generator, n: int, prefix: str = "img_") -> list[str]:
    """n distinct opaque ids in random order (``img_004211``), wide enough for n."""
    width = max(6, len(str(4 * n)))
    numbers = rng.choice(max(4 * n, 10**5), size=n, replace=False) if n else np.array([], int)
    return [f"{prefix}{int(x):0{width}d}" for x in numbers]


def _seq(prefix: str, n: int) -> list[str]:
    width = max(6, len(str(n)))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def plan_subsets(
    *,
    seed: int = 0,
    classes: int = 5,
    n_real: int = 60,
    n_generated: int = 60,
    n_test: int = 40,
    generated_naming: str = "gen_t",
    artifact_strength: float = 1.0,
    separation: float = 1.0,
) -> Plan:
    if generated_naming not in ("gen_t", "t"):
        raise ValueError(f"generated_naming must be 'gen_t' or 't', got {generated_naming!r}")
    rs = _Streams(seed, "subsets")
    cohorts = make_cohorts(classes, rs("cohorts"), separation=separation)
    gens = {c.name: make_generator(f"gen_{c.name}", rs("generator", k), artifact_strength)
            for k, c in enumerate(cohorts)}
    plan = Plan("subsets", cohorts=cohorts, generators=gens)

    def generated(c: Cohort, r: np.random.Generator) -> tuple[Anatomy, Scanner, Geometry, int]:
        an = c.sample_anatomy(r)
        return an, c.sample_scanner(r), gens[c.name].sample_geometry(r), int(r.integers(2**63 - 1))

    for k, c in enumerate(cohorts):
        for i, name in enumerate(_seq(f"{c.name}_", n_real)):
            r = rs("real", k, i)
            an = c.sample_anatomy(r)
            plan.jobs.append(Job(f"train/real/{c.name}/{name}.png", (an,), c.sample_scanner(r), int(r.integers(2**63 - 1))))
        folder = f"gen_{c.name}" if generated_naming == "gen_t" else c.name
        for i, name in enumerate(_seq(f"gen_{c.name}_", n_generated)):
            an, sc, geo, ns = generated(c, rs("generated", k, i))
            plan.jobs.append(Job(f"train/generated/{folder}/{name}.png", (an,), sc, ns, gens[c.name], (geo,)))
            plan.sources.append(("train", name, "novel", ""))
    test = [(k, i) for k in range(classes) for i in range(n_test)]
    for (k, i), name in zip(test, _ids(rs("test-ids"), len(test))):
        c = cohorts[k]
        an, sc, geo, ns = generated(c, rs("test", k, i))
        plan.jobs.append(Job(f"test/generated_unknown/{name}.png", (an,), sc, ns, gens[c.name], (geo,)))
        plan.labels[name] = c.name
        plan.sources.append(("test", name, "novel", ""))
    _shuffle_test_order(plan)
    plan.counts = {
        "classes": classes,
        "train_real_per_class": n_real,
        "train_generated_per_class": n_generated,
        "test_generated_per_class": n_test,
        "train_real": classes * n_real,
        "train_generated": classes * n_generated,
        "test_generated": len(test),
        "images": len(plan.jobs),
    }
    return plan


def membership_generator(name: str, rng: np.random.Generator, artifact_strength: float) -> GeneratorStyle:
    """A membership generator: stronger geometric change than the subsets ones (copies must move)."""
    return replace(make_generator(name, rng, artifact_strength), shift_sd=5.0, angle_sd=2.5, warp=2.5)


def plan_membership(
    *,
    seed: int = 0,
    n_used: int = 150,
    n_not_used: int = 150,
    n_generated: int = 400,
    n_test_used: int | None = None,
    n_test_not_used: int | None = None,
    n_test_generated: int | None = None,
    copy_fraction: float = 0.4,
    memorised_fraction: float = 0.7,
    blend_fraction: float = 0.15,
    artifact_strength: float = 1.0,
) -> Plan:
    for name, v in (("copy_fraction", copy_fraction), ("memorised_fraction", memorised_fraction),
                    ("blend_fraction", blend_fraction)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v!r}")
    rs = _Streams(seed, "membership")
    cohort = replace(make_cohorts(1, rs("cohort"))[0], name="real", spread=1.15)
    plan = Plan("membership", cohorts=[cohort])
    splits = {
        "train": (n_used, n_not_used, n_generated),
        "test": (n_used if n_test_used is None else n_test_used,
                 n_not_used if n_test_not_used is None else n_test_not_used,
                 n_generated if n_test_generated is None else n_test_generated),
    }
    counts: dict[str, int] = {}
    for s, (nu, nn, ng) in splits.items():
        gen = membership_generator(f"generator_{s}", rs(s, "generator"), artifact_strength)
        plan.generators[s] = gen
        if s == "train":
            used_ids, not_ids = _seq("used_", nu), _seq("notused_", nn)
            gen_ids = _seq("gen_", ng)
            used_dir, not_dir, gen_dir = "train/real/used", "train/real/not_used", "train/generated"
        else:
            ids = _ids(rs(s, "ids"), nu + nn + ng)
            order = rs(s, "order").permutation(nu + nn)  # used and not-used mixed in real_unknown
            real_ids = ids[: nu + nn]
            used_ids = [real_ids[j] for j in order[:nu]]
            not_ids = [real_ids[j] for j in order[nu:]]
            gen_ids = ids[nu + nn :]
            used_dir = not_dir = "test/real_unknown"
            gen_dir = "test/generated"
        used: list[Anatomy] = []
        used_sc: list[Scanner] = []
        for i, name in enumerate(used_ids):
            r = rs(s, "used", i)
            an = cohort.sample_anatomy(r)
            used.append(an)
            used_sc.append(cohort.sample_scanner(r))
            plan.jobs.append(Job(f"{used_dir}/{name}.png", (an,), used_sc[-1], int(r.integers(2**63 - 1))))
            if s == "test":
                plan.labels[name] = "1"
        for i, name in enumerate(not_ids):
            r = rs(s, "not_used", i)
            an = cohort.sample_anatomy(r)
            plan.jobs.append(Job(f"{not_dir}/{name}.png", (an,), cohort.sample_scanner(r), int(r.integers(2**63 - 1))))
            if s == "test":
                plan.labels[name] = "0"
        # which used images the generator memorised, and which outputs are (partial) copies
        rm = rs(s, "memorise")
        n_mem = int(round(memorised_fraction * nu))
        memorised = [int(j) for j in rm.permutation(nu)[:n_mem]]
        n_copy = int(round(copy_fraction * ng)) if memorised else 0
        n_blend = int(round(blend_fraction * n_copy)) if len(memorised) >= 2 else 0
        is_copy = np.zeros(ng, bool)
        is_copy[rm.permutation(ng)[:n_copy]] = True
        cycle = [memorised[j % len(memorised)] for j in range(n_copy)] if memorised else []
        cycle = [cycle[j] for j in rm.permutation(len(cycle))]
        blend_slots = set(int(j) for j in rm.permutation(n_copy)[:n_blend])
        trace_kinds = iter(_trace_kinds(n_copy - len(blend_slots), rs(s, "trace-kinds")))
        faithful = replace(gen, noise_scale=1.0, kernel_shift=0.0, level_shift=0.0, width_scale=1.0, gamma=1.0)
        n_kind = {name: 0 for name, _ in TRACE_MIX}
        copied: set[int] = set()
        c_idx = 0
        for j, name in enumerate(gen_ids):
            r = rs(s, "generated", j)
            sc = cohort.sample_scanner(r).jitter(r, 1.5)
            sc = replace(sc, gamma=sc.gamma * math.exp(r.normal(0, 0.05)))
            if is_copy[j]:
                a = cycle[c_idx]
                if c_idx in blend_slots:
                    # a generator mixes similar training images: the partner is the most alike (slice
                    # level, body size) of a few memorised ones; the seam runs down the mediastinum
                    cands = r.choice([m for m in memorised if m != a], size=min(8, len(memorised) - 1), replace=False)
                    b = int(min(cands, key=lambda m: abs(used[m].z - used[a].z) * 4
                                + abs(used[m].body_a - used[a].body_a) / 10))
                    # both halves move together; the second is first centred on the first body
                    g = gen.sample_geometry(r)
                    geos = (g, replace(g, dx=g.dx + used[a].cx - used[b].cx, dy=g.dy + used[a].cy - used[b].cy,
                                       warp_seed=int(r.integers(2**31))))
                    bl = (float(used[a].cx + g.dx + r.normal(0, 6)), float(r.uniform(12, 32)), True)
                    job = Job(f"{gen_dir}/{name}.png", (used[a], used[b]), sc, int(r.integers(2**63 - 1)), gen,
                              geos, bl)
                    plan.sources.append((s, name, "blend", f"{used_ids[a]};{used_ids[b]}"))
                    copied.update((a, b))
                else:
                    kind = next(trace_kinds)
                    n_kind[kind] += 1
                    job = _trace_job(kind, f"{gen_dir}/{name}.png", used[a], used_sc[a], sc, gen, faithful, r)
                    plan.sources.append((s, name, kind, used_ids[a]))
                    copied.add(a)
                c_idx += 1
            else:
                an = cohort.sample_anatomy(r)
                job = Job(f"{gen_dir}/{name}.png", (an,), sc, int(r.integers(2**63 - 1)), gen, (gen.sample_geometry(r),))
                plan.sources.append((s, name, "novel", ""))
            plan.jobs.append(job)
        counts.update({f"{s}_used": nu, f"{s}_not_used": nn, f"{s}_generated": ng, f"{s}_copies": n_copy - n_blend,
                       **{f"{s}_{k.replace('-', '_')}": v for k, v in n_kind.items()},
                       f"{s}_blends": n_blend, f"{s}_used_with_trace": len(copied)})
    counts["images"] = len(plan.jobs)
    plan.counts = counts
    _shuffle_test_order(plan)
    return plan


def _trace_job(kind: str, rel: str, source: Anatomy, source_sc: Scanner, redrawn_sc: Scanner, gen: GeneratorStyle,
               faithful: GeneratorStyle, r: np.random.Generator) -> Job:
    """One single-image trace of ``source`` (see ``TRACE_MIX``); every kind re-draws the noise."""
    noise_seed = int(r.integers(2**63 - 1))
    if kind == "near-copy":
        return Job(rel, (source,), source_sc, noise_seed, faithful, (Geometry(),))
    if kind == "moved-copy":
        geo = replace(gen.sample_geometry(r), scale=float(math.exp(r.normal(0, 0.03))))
        return Job(rel, (source,), source_sc, noise_seed, faithful, (geo,))
    if kind == "restyled-copy":
        geo = Geometry(dx=float(r.normal(0, 0.5)), dy=float(r.normal(0, 0.5)), angle=float(r.normal(0, 0.3)))
        return Job(rel, (source,), redrawn_sc, noise_seed, gen, (geo,))
    raise ValueError(f"unknown trace kind {kind!r}")


def _shuffle_test_order(plan: Plan) -> None:
    """Draw test images in the order of their opaque ids, so that not even the files' write order
    (modification times) follows the labels."""
    train = [j for j in plan.jobs if not j.rel.startswith("test/")]
    test = sorted((j for j in plan.jobs if j.rel.startswith("test/")), key=lambda j: j.rel.rsplit("/", 1)[1])
    plan.jobs[:] = train + test
