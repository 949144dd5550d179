"""Voyage counting against ground truth over seeded scenarios: revisit 1 and 5 days, clear and cloudy seasons,
1, 2 and 4 berths, detector recall 0.7 and 0.95, 0 %, 50 % and 100 % dark calls; 72 regimes, `--seeds` each
(five give 360 scenarios).

Reports, for arrivals and dark arrivals: how often the 90 % interval covers the truth (calibrated: 85-95 %), the
median interval width over the truth, the median absolute error of the point estimate over the truth; and the
precision and recall of the dark flag on the detections of true vessels in observed passes.

    python -m bench.voyages [--seeds 5]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import publish


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--dry-run", action="store_true", help="a few scenarios, nothing written")
    ap.add_argument("--table", type=Path, help="also write every scenario's row to this CSV")
    args = ap.parse_args()

    from scipy import stats

    from shipdet.voyages.count import count_area
    from shipdet.voyages.link import LinkParams
    from shipdet.voyages.simulate import SimConfig, simulate

    regimes = list(itertools.product([1.0, 5.0], [0.1, 0.5], [1, 2, 4], [0.7, 0.95], [0.0, 0.5, 1.0]))
    if args.dry_run:
        regimes = regimes[::24]
    rows = []
    for (revisit, cloud, berths, recall, dark), seed in itertools.product(regimes, range(args.seeds)):
        cfg = replace(SimConfig(), revisit_days=revisit, cloud_probability=cloud, berths=berths, recall=recall,
                      ais_on_probability=1 - dark, arrivals_per_day=0.06 * berths)
        sim = simulate(cfg, seed)
        # The analyst states the shortest and the longest plausible call (port practice), as `--min-dwell-days`
        # and `--max-dwell-days` do; the detector's recall and the dwell times within that range are learnt.
        analyst = LinkParams(max_dwell_days=cfg.max_dwell_days)
        result = count_area(sim.area, sim.detections, sim.scenes, sim.ais, analyst,
                            pd.Timestamp(cfg.start, tz="UTC"), pd.Timestamp(cfg.end, tz="UTC"),
                            cfg.min_dwell_days, berths)
        s = result.summary
        det = result.detections[result.detections.truth_vessel.notna()]
        truth = {"arrivals": len(sim.truth), "dark_arrivals": int((~sim.truth.ais_on).sum())}
        row: dict[str, Any] = {
            "revisit": revisit, "cloud": cloud, "berths": berths, "recall": recall, "dark": dark, "seed": seed,
            "flag_tp": int((det.dark & det.truth_dark.astype(bool)).sum()),
            "flag_fp": int((det.dark & ~det.truth_dark.astype(bool)).sum()),
            "flag_fn": int((~det.dark & det.truth_dark.astype(bool)).sum())}
        # A reference width: the interval of an estimator told the share of dark calls a detection found, with only
        # the unseen dark calls to guess (negative binomial, as ours; AIS counts the others). Nothing that must learn
        # that share does much better.
        dark_seen = det[det.truth_dark.astype(bool)].truth_vessel.nunique()
        o_lo, o_hi = stats.nbinom.ppf([0.05, 0.95], max(dark_seen, 1),
                                      max(dark_seen / max(truth["dark_arrivals"], 1), 1e-3))
        row["oracle_width"] = (o_hi - o_lo) / max(len(sim.truth), 1) if truth["dark_arrivals"] else 0.0
        row["oracle_dark_width"] = (o_hi - o_lo) / truth["dark_arrivals"] if truth["dark_arrivals"] else None
        # The same inputs counted again by an analyst who gives the detector's validated recall, a little under the
        # truth (validation imagery is never quite the archive's), as `--recall 0.x --recall-sd 0.05` does.
        given = count_area(sim.area, sim.detections, sim.scenes, sim.ais, analyst,
                           pd.Timestamp(cfg.start, tz="UTC"), pd.Timestamp(cfg.end, tz="UTC"), cfg.min_dwell_days,
                           berths, recall=recall - 0.05, recall_sd=0.05).summary
        for prefix, summary in (("", s), ("given_", given)):
            for key, true in truth.items():
                lo, hi = summary[key]["interval_90"]
                estimate = summary[key]["estimate"] or 0.0
                row |= {f"{key}_true": true, f"{prefix}{key}_covered": lo <= true <= hi,
                        f"{prefix}{key}_width": (hi - lo) / max(true, 1),
                        f"{prefix}{key}_error": abs(estimate - true) / max(true, 1),
                        f"{prefix}{key}_bias": (estimate - true) / max(true, 1)}
        rows.append(row)
    table = pd.DataFrame(rows)
    if args.table:
        table.to_csv(args.table, index=False)
    lines = [f"## Voyage counting against ground truth ({len(table)} seeded scenarios)", "",
             "Regimes: revisit 1 or 5 days, cloud probability 0.1 or 0.5 (Markov runs), 1, 2 or 4 berths (0.06 "
             "arrivals a day per berth, dwell 2-5 days), detector recall 0.7 or 0.95 (15 m position and 5 % length "
             "noise, false alarms), 0, 50 or 100 % of calls dark, 2024-03-07 to 2024-11-05; the shortest and longest "
             "call (2 and 5 days) given, as an analyst would from port practice; "
             f"{args.seeds} seeds each (`shipdet/voyages/simulate.py`).", "",
             "| | runs | 90 % interval covers the truth | median width / truth (reference) "
             "| median abs. error / truth |",
             "|---|---|---|---|---|"]
    dark_runs = table[table.dark_arrivals_true > 0]
    for prefix, who in (("", ""), ("given_", ", recall given")):
        for label, key, part, reference in (("arrivals", "arrivals", table, "oracle_width"),
                                            ("arrivals, runs with dark calls", "arrivals", dark_runs, "oracle_width"),
                                            ("dark arrivals, runs with dark calls", "dark_arrivals", dark_runs,
                                             "oracle_dark_width")):
            lines.append(f"| {label}{who} | {len(part)} | {part[f'{prefix}{key}_covered'].mean():.1%} | "
                         f"{part[f'{prefix}{key}_width'].median():.2f} ({part[reference].median():.2f}) | "
                         f"{part[f'{prefix}{key}_error'].median():.3f} |")
    lines += ["", "Recall given: the same inputs counted by an analyst who gives the detector's validated recall, 0.05 "
              "under the truth with a standard deviation of 0.05 (`--recall`, `--recall-sd`)."]
    tp, fp, fn = table.flag_tp.sum(), table.flag_fp.sum(), table.flag_fn.sum()
    lines += ["", "Reference: the width of an estimator told each scenario's share of dark calls seen, guessing only "
              "the unseen ones (AIS counts the calls of transmitting vessels, images or not).", "",
              f"Dark flag on detections of true vessels in observed passes: precision "
              f"**{tp / max(tp + fp, 1):.3f}**, recall **{tp / max(tp + fn, 1):.3f}**.", "",
              "By regime (revisit, cloud, dark share): covered, median width (and the reference), median signed error, "
              "each over the truth:", "",
              "| revisit days | cloud | dark share | arrivals covered | width (reference) | error | dark covered "
              "| dark width | dark error |", "|---|---|---|---|---|---|---|---|---|"]
    for (revisit, cloud, dark), part in table.groupby(["revisit", "cloud", "dark"]):
        some = part[part.dark_arrivals_true > 0]
        dark_cells = (f"{some.dark_arrivals_covered.mean():.0%} | {some.dark_arrivals_width.median():.2f} | "
                      f"{some.dark_arrivals_bias.median():+.3f}") if len(some) else "- | - | -"
        lines.append(f"| {revisit:g} | {cloud:g} | {dark:g} | {part.arrivals_covered.mean():.0%} | "
                     f"{part.arrivals_width.median():.2f} ({part.oracle_width.median():.2f}) | "
                     f"{part.arrivals_bias.median():+.3f} | {dark_cells} |")
    publish("voyages", lines, args.dry_run)


if __name__ == "__main__":
    main()
