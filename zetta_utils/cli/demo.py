"""``zetta demo-data`` (write the built-in demo volume) and ``zetta show`` (a PNG of a section of
a layer, and a Neuroglancer link). Heavy imports happen inside the commands."""

from __future__ import annotations

import os
import time

import click

_DEFAULT_DIR = "~/.zetta_utils/demo/fafb_v15"


@click.command("demo-data")
@click.argument("directory", required=False, default=_DEFAULT_DIR)
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Write only this region (repeatable); default: all. See `zetta demo-data --list`.",
)
@click.option("--list", "list_regions", is_flag=True, help="List the regions and exit.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the procedural tissue.",
)
@click.option(
    "-j",
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Rendering threads (default: one per CPU, up to 4).",
)
@click.option("--force", is_flag=True, help="Write again even if the demo is already there.")
def demo_data(
    directory: str,
    regions: tuple[str, ...],
    list_regions: bool,
    seed: int,
    threads: int | None,
    force: bool,
) -> None:
    """Write the demo volume that stands in for the guide's FAFB v15 images.

    DIRECTORY (default ~/.zetta_utils/demo/fafb_v15) gets two layers, `img_norm` (float32,
    normalised) and `img` (uint8), with data where the quick start guide's examples look.
    """
    from zetta_utils.demo import volume

    if list_regions:
        for region in volume.DEMO_REGIONS:
            start, stop = region.start, region.stop
            box = ", ".join(f"{a}:{b}" for a, b in zip(start, stop, strict=True))
            scales = " ".join("_".join(map(str, r)) for r in region.scales())
            click.echo(f"{region.name:13} [{box}] at {scales}\n{'':13} {region.purpose}")
        return
    unknown = [r for r in regions if r not in volume.REGION_NAMES]
    if unknown:
        raise click.BadParameter(
            f"unknown region(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(volume.REGION_NAMES)}",
            param_hint="--region",
        )
    t0 = time.perf_counter()
    result = volume.write_demo_volume(
        directory,
        regions=list(regions) or None,
        seed=seed,
        threads=threads,
        force=force,
        log=lambda msg: click.echo(msg, err=True),
    )
    if result.generated:
        click.echo(
            f"Demo volume written in {time.perf_counter() - t0:.1f} s: "
            f"{result.bytes_on_disk / 1e6:.0f} MB on disk in {result.directory}"
        )
    else:
        click.echo(f"Demo volume already in {result.directory} (use --force to write it again).")
    shown = directory if directory.startswith("file://") else f"file://{directory}"
    shown = shown.rstrip("/")
    for name in ("img_norm", "img"):
        click.echo(f"  {name:8} {shown}/{name}")
    click.echo(
        "Look at it:  zetta show "
        f"{shown}/img_norm --z 2000 --resolution 16,16,40 --out img_norm_z2000.png"
    )


@click.command("show")
@click.argument("layer")
@click.option(
    "--z", "z", type=int, required=True, help="Section to show (voxels at the resolution)."
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="PNG to write (default: LAYERNAME_zN.png).",
)
@click.option(
    "--resolution", default=None, help="x,y,z nm to read at (default: finest with data there)."
)
@click.option(
    "--bbox",
    default=None,
    help="x0,y0,x1,y1 in voxels at the resolution (default: where the data is).",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Longer side of the PNG at most.",
)
@click.option(
    "--backend",
    type=click.Choice(["ts", "cv"]),
    default="ts",
    show_default=True,
    help="TensorStore or CloudVolume.",
)
@click.option(
    "--port",
    type=int,
    default=8000,
    show_default=True,
    help="Port of the local server in the Neuroglancer link.",
)
@click.option(
    "--compare",
    "compare",
    default=None,
    metavar="LAYER2",
    help="Also read LAYER2 there: one PNG with LAYER left and LAYER2 right, same contrast.",
)
def show(
    layer: str,
    z: int,
    out: str | None,
    resolution: str | None,
    bbox: str | None,
    max_size: int,
    backend: str,
    port: int,
    compare: str | None,
) -> None:
    """Write a PNG of section Z of LAYER (a precomputed path) and print a Neuroglancer link.

    With --compare LAYER2, the PNG shows the same region of LAYER (left) and LAYER2 (right)
    side by side with the same contrast, e.g. a flow's source and its output.
    """
    from zetta_utils.demo import show as show_mod
    from zetta_utils.layer.volumetric.precomputed import parse_path

    vpath = parse_path(layer)
    name = os.path.basename(vpath.key.rstrip("/")) or "layer"
    if compare is not None:
        _show_comparison(layer, compare, z, out, resolution, bbox, max_size, backend)
        return
    target = out or f"{name}_z{z}.png"
    try:
        thumb = show_mod.write_thumbnail(
            layer, z, target, resolution=resolution, bbox=bbox, max_size=max_size, backend=backend
        )
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    idx = thumb.index
    res = ",".join(f"{r:g}" for r in idx.resolution)
    click.echo(
        f"Wrote {thumb.out} ({thumb.image_size[0]}x{thumb.image_size[1]} px): section {z} of "
        f"{vpath.url}, voxels {idx.pformat()} at ({res}) nm, values {thumb.value_range[0]:.4g} .. "
        f"{thumb.value_range[1]:.4g} shown black .. white"
    )
    if thumb.empty:
        click.echo("  (all zeros there: nothing written at this section and region yet)")
    center = [(a + b) / 2 for a, b in zip(idx.start, idx.stop, strict=True)]
    link = show_mod.neuroglancer_link(
        layer,
        position=center,
        resolution=list(idx.resolution),
        serve_url=f"http://127.0.0.1:{port}",
    )
    click.echo(f"Neuroglancer: {link}")
    if vpath.is_local:
        from zetta_utils.demo.serve import serve_command

        click.echo(
            "  (a browser cannot read local files: serve the volume first with\n"
            f"   {serve_command(vpath.key, port)})"
        )


def _show_comparison(
    layer: str,
    compare: str,
    z: int,
    out: str | None,
    resolution: str | None,
    bbox: str | None,
    max_size: int,
    backend: str,
) -> None:
    from zetta_utils.demo import show as show_mod
    from zetta_utils.layer.volumetric.precomputed import parse_path

    left, right = parse_path(layer), parse_path(compare)
    names = [os.path.basename(p.key.rstrip("/")) or "layer" for p in (left, right)]
    target = out or f"{names[0]}_vs_{names[1]}_z{z}.png"
    try:
        result = show_mod.write_comparison(
            layer,
            compare,
            z,
            target,
            resolution=resolution,
            bbox=bbox,
            max_size=max_size,
            backend=backend,
        )
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    idx = result.index
    res = ",".join(f"{r:g}" for r in idx.resolution)
    click.echo(
        f"Wrote {result.out} ({result.image_size[0]}x{result.image_size[1]} px): section {z}, "
        f"voxels {idx.pformat()} at ({res}) nm, of {left.url} (left) and {right.url} (right); "
        f"values {result.value_range[0]:.4g} .. {result.value_range[1]:.4g} shown black .. white "
        "in both"
    )
    for side, url, empty in (
        ("left", left.url, result.empty[0]),
        ("right", right.url, result.empty[1]),
    ):
        if empty:
            click.echo(
                f"  ({side}: {url} is all zeros there: nothing written at this section and region "
                "yet)"
            )
