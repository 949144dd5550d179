"""`shipdet datasets ...`: one subcommand per published format, plus synth, merge and stats."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.writer import ConversionReport

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

OUT = typer.Option(..., "--out", "-o", help="Folder to write the converted set into.")
VAL = typer.Option(0.2, "--val-fraction", help="Share of images (by whole groups) held out for validation.")
SEED = typer.Option(0, "--seed", help="Seed for sampling and the split.")
STRICT = typer.Option(False, "--strict", help="Stop at the first bad record instead of skipping it.")
CLASS_MAP = typer.Option(None, "--class-map", help="source=target pairs, `*=ship` default, `x=drop` to discard.")
GSD = typer.Option(None, "--gsd", help="Ground sample distance in metres (for sizes in metres).")


def _done(report: ConversionReport, out: Path) -> None:
    typer.echo(report.summary())
    typer.echo(f"written: {out}/data.yaml (axis-aligned) and {out}/data-obb.yaml (oriented)")


@app.command()
def airbus(csv: Path = typer.Argument(..., help="train_ship_segmentations_v2.csv"),
           images: Path = typer.Argument(..., help="Folder of the 768x768 JPEGs (train_v2)."),
           out: Path = OUT, empty_fraction: float = typer.Option(0.25, help="Share of ship-free images kept."),
           val_fraction: float = VAL, seed: int = SEED, strict: bool = STRICT) -> None:
    """Airbus Ship Detection (RLE masks): oriented and axis-aligned boxes."""
    from shipdet.datasets.airbus import convert_airbus

    _done(convert_airbus(csv, images, out, empty_fraction, seed, strict, val_fraction), out)


@app.command()
def voc(annotations: Path = typer.Argument(..., help="Folder of Pascal VOC XML files."),
        images: Path = typer.Argument(..., help="Folder of the images."), out: Path = OUT,
        class_map: str = CLASS_MAP, source: str = typer.Option("voc", help="Source name (for the split)."),
        gsd: float = GSD, val_fraction: float = VAL, seed: int = SEED, strict: bool = STRICT) -> None:
    """Pascal VOC XML (e.g. the `boats` set)."""
    from shipdet.datasets.voc import convert_voc

    _done(convert_voc(annotations, images, out, ClassMap.parse(class_map), source, gsd, strict, val_fraction,
                      seed), out)


@app.command()
def coco(annotations: Path = typer.Argument(..., help="COCO JSON file."),
         images: list[Path] = typer.Option(..., "--images", help="Folder(s) searched for the images."),
         out: Path = OUT, class_map: str = CLASS_MAP, source: str = typer.Option("coco", help="Source name."),
         gsd: float = GSD, tile: int = typer.Option(0, help="Cut images larger than this into tiles (0: no)."),
         overlap: int = typer.Option(64, help="Tile overlap in pixels."),
         min_visible: float = typer.Option(0.4, help="Drop boxes with less of their area inside a tile."),
         val_group: list[str] = typer.Option([], "--val-group", help="Group(s) to hold out (e.g. an image stem)."),
         scale: float = typer.Option(1.0, help="Resample images by this factor before tiling (a model's working "
                                                "scale: 3 turns 10 m Sentinel-2 into 3.3 m)."),
         working_gsd: float = typer.Option(None, help="Instead of --scale: resample each image to this GSD from its "
                                                      "own, read from its georeference as `shipdet rescore` reads "
                                                      "it (--gsd where it has none)."),
         val_fraction: float = VAL, seed: int = SEED, strict: bool = STRICT) -> None:
    """COCO JSON: polygons or RLE masks become oriented boxes (e.g. `sentinel2-ports`)."""
    from shipdet.datasets.coco import convert_coco

    _done(convert_coco(annotations, images, out, ClassMap.parse(class_map), source, gsd, tile or None, overlap,
                       min_visible, strict, val_fraction, seed, val_group, scale, working_gsd), out)


@app.command()
def yolo(images: Path = typer.Argument(...), labels: Path = typer.Argument(...), out: Path = OUT,
         classes: Path = typer.Option(None, help="classes.txt or a data YAML naming the source classes."),
         class_map: str = CLASS_MAP, source: str = typer.Option("yolo", help="Source name."), gsd: float = GSD,
         group: str = typer.Option(None, help="Regular expression: its first match in a file stem is the image's "
                                              "split group (e.g. '^[A-Za-z]+' for a place prefix); default: stem."),
         empty_unlabelled: bool = typer.Option(False, "--empty-unlabelled",
                                               help="An empty label file means lost labels, not a ship-free image: "
                                                    "such images are left out (MASATI)."),
         tile: int = typer.Option(0, help="Cut images larger than this into tiles at their own scale (0: no)."),
         overlap: int = typer.Option(128, help="Tile overlap in pixels."),
         min_visible: float = typer.Option(0.4, help="Drop boxes with less of their area inside a tile."),
         val_fraction: float = VAL, seed: int = SEED, strict: bool = STRICT) -> None:
    """YOLO labels with a class map (e.g. `vhr`: --class-map naval=ship,Merchant=ship,dock=drop,other_vessel=ship)."""
    from shipdet.datasets.labelfiles import convert_yolo

    _done(convert_yolo(images, labels, out, ClassMap.parse(class_map), classes, source, gsd, strict,
                       val_fraction, seed, group, empty_unlabelled, tile or None, overlap, min_visible), out)


@app.command()
def dota(images: Path = typer.Argument(...), labels: Path = typer.Argument(..., help="labelTxt folder."),
         out: Path = OUT, class_map: str = typer.Option("ship=ship,*=drop", help="DOTA class -> target."),
         gsd: float = GSD, val_fraction: float = VAL, seed: int = SEED, strict: bool = STRICT) -> None:
    """DOTA oriented labels (class names; non-ship classes dropped by default)."""
    from shipdet.datasets.labelfiles import convert_dota

    _done(convert_dota(images, labels, out, ClassMap.parse(class_map, default=None), "dota", gsd, strict,
                       val_fraction, seed), out)


@app.command()
def xview(geojson: Path = typer.Argument(..., help="xView_train.geojson"),
          images: Path = typer.Argument(..., help="Folder of the xView GeoTIFFs."), out: Path = OUT,
          taxonomy: str = typer.Option("ship", help="ship (one class), fine (oil_tanker apart), xview, or a map."),
          tile: int = typer.Option(640, help="Tile size."), overlap: int = typer.Option(64, help="Overlap."),
          min_visible: float = typer.Option(0.4, help="Sliver threshold (visible share of a clipped box)."),
          keep_empty: bool = typer.Option(False, help="Keep tiles without ships."),
          val_fraction: float = VAL, seed: int = SEED) -> None:
    """xView vessels, tiled with windowed reads."""
    from shipdet.datasets.xview import convert_xview

    _done(convert_xview(geojson, images, out, taxonomy, tile, overlap, min_visible, keep_empty, val_fraction,
                        seed), out)


@app.command()
def sentinel2(root: Path = typer.Argument(..., help="A scene folder of band GeoTIFFs, or a folder of them."),
              out: Path = OUT) -> None:
    """Stack B04/B03/B02 into an RGB GeoTIFF plus an 8-bit 2-98 % stretched JPEG; report missing bands."""
    from shipdet.datasets.sentinel2 import stack_scenes

    for r in stack_scenes(root, out):
        written = [p.name for p in (r.rgb_tif, r.rgb8) if p is not None]
        status = f"missing {', '.join(r.missing)}" if r.missing else f"-> {', '.join(written)}"
        typer.echo(f"{r.scene} ({r.acquired or 'date unknown'}): {status}")


@app.command()
def synth(out: Path = OUT, count: int = typer.Option(100, help="Number of scenes."), seed: int = SEED,
          size: int = typer.Option(640, help="Scene size in pixels."),
          gsd: float = typer.Option(3.0, help="Metres per pixel."),
          geotiff: bool = typer.Option(False, help="Also write georeferenced GeoTIFF scenes + labels."),
          val_fraction: float = VAL) -> None:
    """Synthetic ship scenes (deterministic for a seed) as a YOLO set, optionally as GeoTIFF scenes."""
    from shipdet.datasets.synth import SynthConfig
    from shipdet.datasets.synth_set import write_synth_set

    cfg = SynthConfig(width=size, height=size, gsd_m=gsd)
    _done(write_synth_set(out, count, seed, cfg, geotiff, val_fraction), out)


@app.command()
def merge(sets: list[Path] = typer.Argument(..., help="Converted set folders."), out: Path = OUT,
          val_group: list[str] = typer.Option([], "--val-group", help="source:group to hold out (repeatable)."),
          train_only: list[str] = typer.Option([], "--train-only", help="Sources never used for validation."),
          oversample: list[str] = typer.Option([], "--oversample", help="SOURCE=N: list that source's training "
                                               "images with ships N times (repeatable)."),
          crowded: str = typer.Option(None, help="MIN=N: list every training image with at least MIN ships N times "
                                                 "in all (e.g. 10=4: marinas)."),
          ship_free: list[str] = typer.Option([], "--ship-free", help="SOURCE=N: list that source's ship-free "
                                              "training images N times (repeatable)."),
          val_fraction: float = VAL, seed: int = SEED) -> None:
    """Merge converted sets into one data YAML with a group-aware split and a report."""
    from shipdet.datasets.merge import merge_sets

    factors = dict(_source_factor(text, "--oversample") for text in oversample)
    empty = dict(_source_factor(text, "--ship-free") for text in ship_free)
    least_times = _min_times(crowded) if crowded else None
    typer.echo(merge_sets(sets, out, val_fraction, seed, val_group, train_only, factors, least_times, empty))


def _min_times(text: str) -> tuple[int, int]:
    least, _, times = text.partition("=")
    if not least.strip().isdigit() or not times.strip().isdigit():
        raise typer.BadParameter(f"{text!r} is not MIN=N (e.g. 10=4)", param_hint="--crowded")
    return int(least), int(times)


def _source_factor(text: str, option: str) -> tuple[str, int]:
    source, _, factor = text.partition("=")
    if not source or not factor.strip().isdigit():
        raise typer.BadParameter(f"{text!r} is not SOURCE=N (e.g. s2ports=4)", param_hint=option)
    return source.strip(), int(factor)


@app.command()
def coarsen(merged: Path = typer.Argument(..., help="A merged set (only its training images are used)."),
            out: Path = OUT,
            source: list[str] = typer.Option(..., "--source", help="Source whose chips are coarsened (repeatable)."),
            lengths: str = typer.Option("6,40", help="Median ship length LOW,HIGH in coarse pixels (drawn "
                                                     "log-uniformly; Sentinel-2 ships are 5-70 px at 10 m)."),
            working_scale: float = typer.Option(4.0, help="The model's working scale for coarse imagery (x4: "
                                                          "10 m is seen at 2.5 m)."),
            limit: int = typer.Option(1000, help="Chips with ships written at most."),
            negatives: int = typer.Option(0, help="Ship-free chips written at most, each coarsened by a factor the "
                                                  "chips with ships got."),
            negative_source: list[str] = typer.Option([], "--negative-source",
                                                      help="Source whose ship-free chips are coarsened (repeatable)."),
            seed: int = SEED) -> None:
    """Simulated coarse imagery: aerial training chips blurred and shrunk until their ships are Sentinel-2 sized,
    then resampled to the working scale as `shipdet rescore` does; ship-free chips too, so that blurred imagery
    does not always hold a ship. Merge the result with `--train-only coarse`."""
    from shipdet.datasets.coarsen import coarsen_set

    low, _, high = lengths.partition(",")
    try:
        span = (float(low), float(high))
    except ValueError:
        raise typer.BadParameter(f"{lengths!r} is not LOW,HIGH (e.g. 6,40)", param_hint="--lengths") from None
    _done(coarsen_set(merged, out, source, span, working_scale, limit, seed, negatives, negative_source), out)


@app.command()
def review(run_dir: Path = typer.Argument(..., help="A `shipdet rescore` folder holding review.jsonl."),
           out: Path = OUT,
           val_fraction: float = VAL, seed: int = SEED) -> None:
    """Reviewed detections as a YOLO set: confirmed and relabelled ships as positives, rejected ones as hard
    negatives, chips at the model's working scale, split by scene."""
    from shipdet.review.trainset import review_set

    _done(review_set(run_dir, out, val_fraction=val_fraction, seed=seed), out)


@app.command()
def stats(root: Path = typer.Argument(..., help="A converted or merged set."),
          histogram: Path = typer.Option(None, help="Write a box-size histogram PNG here.")) -> None:
    """Counts, empty fraction and box sizes (pixels; metres where the GSD is known)."""
    from shipdet.datasets.stats import dataset_stats, write_histogram

    result = dataset_stats(root)
    typer.echo(json.dumps({k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                           for k, v in result.items()}, indent=2))
    if histogram:
        write_histogram(result, histogram)
        typer.echo(f"histogram: {histogram}")
