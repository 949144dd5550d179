"""Voyage counting against ground truth over 216 seeded scenarios: revisit 1 and 5 days, clear and cloudy
seasons, 1, 2 and 4 berths, detector recall 0.7 and 0.95, 0 %, 50 % and 100 % dark calls, three seeds each.

Reports, for arrivals and dark arrivals: how often the 90 % interval covers the truth (calibrated: 85-95 %), the
median interval width over the truth, the median absolute error of the point estimate over the truth; and the
precision and recall of the dark flag on the detections of true vessels in observed passes.

    python -m bench.voyages [--seeds 3]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

import pandas as pd

from bench.common import write_section


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dry-run", action="store_true", help="a few scenarios, nothing written")
    args = ap.parse_args()

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
        result = count_area(sim.area, sim.detections, sim.scenes, sim.ais, LinkParams(),
                            pd.Timestamp(cfg.start, tz="UTC"), pd.Timestamp(cfg.end, tz="UTC"),
                            cfg.min_dwell_days, berths)
        s = result.summary
        det = result.detections[result.detections.truth_vessel.notna()]
        truth = {"arrivals": len(sim.truth), "dark_arrivals": int((~sim.truth.ais_on).sum())}
        row = {"revisit": revisit, "cloud": cloud, "berths": berths, "recall": recall, "dark": dark, "seed": seed,
               "flag_tp": int((det.dark & det.truth_dark.astype(bool)).sum()),
               "flag_fp": int((det.dark & ~det.truth_dark.astype(bool)).sum()),
               "flag_fn": int((~det.dark & det.truth_dark.astype(bool)).sum())}
        for key, true in truth.items():
            lo, hi = s[key]["interval_90"]
            row |= {f"{key}_true": true, f"{key}_covered": lo <= true <= hi, f"{key}_width": (hi - lo) / max(true, 1),
                    f"{key}_error": abs((s[key]["estimate"] or 0.0) - true) / max(true, 1)}
        rows.append(row)
    table = pd.DataFrame(rows)
    lines = [f"## Voyage counting against ground truth ({len(table)} seeded scenarios)", "",
             "Regimes: revisit 1 or 5 days, cloud probability 0.1 or 0.5 (Markov runs), 1, 2 or 4 berths (0.06 "
             "arrivals a day per berth, dwell 2-5 days), detector recall 0.7 or 0.95 (15 m position and 5 % length "
             "noise, false alarms), 0, 50 or 100 % of calls dark, 2024-03-07 to 2024-11-05; "
             f"{args.seeds} seeds each (`shipdet/voyages/simulate.py`).", "",
             "| | 90 % interval covers the truth | median width / truth | median abs. error / truth |",
             "|---|---|---|---|"]
    for key in ("arrivals", "dark_arrivals"):
        some = table[table[f"{key}_true"] > 0]
        lines.append(f"| {key.replace('_', ' ')} | {table[f'{key}_covered'].mean():.1%} | "
                     f"{some[f'{key}_width'].median():.2f} | {some[f'{key}_error'].median():.3f} |")
    tp, fp, fn = table.flag_tp.sum(), table.flag_fp.sum(), table.flag_fn.sum()
    lines += ["", f"Dark flag on detections of true vessels in observed passes: precision "
              f"**{tp / max(tp + fp, 1):.3f}**, recall **{tp / max(tp + fn, 1):.3f}**.", "",
              "By regime (arrivals covered, median abs. error / truth):", "",
              "| revisit days | cloud | recall | covered | error |", "|---|---|---|---|---|"]
    for (revisit, cloud, recall), part in table.groupby(["revisit", "cloud", "recall"]):
        lines.append(f"| {revisit:g} | {cloud:g} | {recall:g} | {part.arrivals_covered.mean():.0%} | "
                     f"{part[part.arrivals_true > 0].arrivals_error.median():.3f} |")
    text = "\n".join(lines)
    print(text)
    if not args.dry_run:
        write_section("voyages", text)


if __name__ == "__main__":
    main()
