"""``labelwise batch``: score datasets, and analyse them for drift and Responsible AI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..core import LabelwiseError
from ._common import (
    JsonOption,
    console,
    parse_embedder,
    parse_since,
    print_json,
)
from ._progress import ProgressBar, err_console, step

if TYPE_CHECKING:
    pass

batch_app = typer.Typer(help="Score whole datasets.", no_args_is_help=True)
FAILED_ROWS_EXIT = 3


@batch_app.command("score")
def batch_score(
    tag: Annotated[str, typer.Argument(help="Artifact tag.")],
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="CSV, JSONL or Parquet file (or a directory of Parquet files); a path or a URL "
            "(s3://, gs://, or any fsspec URL).",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="A directory: Parquet parts written as they are scored, and a manifest. A name ending "
            ".parquet, .csv or .jsonl: one file, assembled from the parts at the end.",
        ),
    ],
    text_col: Annotated[str, typer.Option("--text-col", help="Column holding the text.")] = "text",
    concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight at once (on Ray: across the cluster).")
    ] = 16,
    rpm: Annotated[
        float | None, typer.Option(min=1, help="Requests per minute, at most (on Ray: the whole cluster's).")
    ] = None,
    tpm: Annotated[float | None, typer.Option(min=1, help="Tokens per minute, at most (estimated).")] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Do not use the persistent cache (a job checkpoint is still kept)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate tokens and cost; call nothing.")
    ] = False,
    rows_per_part: Annotated[
        int | None,
        typer.Option(
            "--rows-per-part", min=1, help="Rows read, scored and written at a time [default: 10000]."
        ),
    ] = None,
    engine: Annotated[str, typer.Option(help="local (this process), or ray (a pool of actors).")] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="With --engine ray: the cluster (ray start's address; default: a local Ray)."),
    ] = None,
    actors: Annotated[
        int | None, typer.Option(min=1, help="With --engine ray: scoring actors (default: one per CPU).")
    ] = None,
    actor_cpus: Annotated[float, typer.Option("--actor-cpus", min=0.1, help="CPUs each actor holds.")] = 1.0,
    actor_gpus: Annotated[
        float, typer.Option("--actor-gpus", min=0, help="GPUs each actor holds (a local model on a GPU).")
    ] = 0.0,
    prefix: Annotated[
        str,
        typer.Option(help="Put this before each output column's name (predicted_ -> predicted_label, ...)."),
    ] = "",
    via: Annotated[
        str,
        typer.Option(
            help="requests (one call per text), or batch-api: OpenAI's Batch API, at half the price, "
            "done within 24 hours."
        ),
    ] = "requests",
    poll_s: Annotated[
        float, typer.Option("--poll-s", min=0.01, help="With --via batch-api: seconds between status checks.")
    ] = 30.0,
    batch_size: Annotated[
        int,
        typer.Option(min=1, max=50_000, help="With --via batch-api: requests per batch at most."),
    ] = 50_000,
    as_json: JsonOption = False,
) -> None:
    """Score every row of INPUT; keep its columns and add label, probabilities, status, error, ...

    INPUT is read and the output written part by part, so memory stays bounded whatever the
    size. Re-running the same command after an interruption resumes: the parts written are
    kept, finished texts are not scored again, and with --via batch-api the batches already
    sent are followed, not sent again. The exit status is 3 when some rows failed after retries
    (they are in the output with status "error"; the same command sends only those again).
    """
    from ..batch import batch_score as score
    from ..batch import estimate_batch_cost

    if dry_run:
        estimate = estimate_batch_cost(tag, input_path, out=out, text_col=text_col, use_cache=not no_cache)
        if as_json:
            print_json(estimate.as_dict())
            return
        table = Table("dry run", "estimate")
        for key, value in estimate.as_dict().items():
            shown = "no Batch API for this provider" if value is None else str(value)
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else shown)
        console.print(table)
        return
    bar: ProgressBar | None = None

    def started(message: str, rows: int | None) -> None:
        nonlocal bar
        step(message)
        bar = ProgressBar("scoring", rows).start()

    def advance(rows: int, *, cached: bool = False) -> None:
        if bar is not None:
            bar.advance(rows, cached=cached)

    sizing = {"rows_per_part": rows_per_part} if rows_per_part else {}
    try:
        result = score(
            tag, input_path, out, text_col=text_col, concurrency=concurrency, rpm=rpm, tpm=tpm,
            use_cache=not no_cache, engine=engine, address=address, actors=actors, actor_cpus=actor_cpus,
            actor_gpus=actor_gpus, **sizing, prefix=prefix, via=via, poll_s=poll_s,
            batch_size=batch_size, on_start=started, on_status=step, on_progress=advance,
        )  # fmt: skip
    except KeyboardInterrupt:
        if via != "batch-api":
            raise
        if bar is not None:
            bar.stop()
        err_console.print(
            "Interrupted. The batches sent keep running at the provider: run the same command "
            "again to collect them (nothing is sent twice)."
        )
        raise typer.Exit(130) from None
    finally:
        if bar is not None:
            bar.stop()
    report = result.as_dict()
    if as_json:
        print_json(report)
    else:
        table = Table(show_header=False)
        for key, value in report.items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(table)
    if result.summary.failed_rows:
        err_console.print(
            f"[red]{result.summary.failed_rows} rows failed[/red]; they are in {out} with status 'error'"
        )
        raise typer.Exit(FAILED_ROWS_EXIT)


@batch_app.command("drift")
def batch_drift(
    current: Annotated[str, typer.Option("--current", help="Scored file, or the service's store URL.")],
    out: Annotated[Path, typer.Option("--out", help="HTML report; the JSON goes beside it.")],
    reference: Annotated[
        str | None,
        typer.Option(help="Scored reference data (file or store URL); default: the artifact's profile."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Artifact tag the data was scored with.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="With a store URL: predictions since (ISO time).")] = None,
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    label_col: Annotated[
        str | None,
        typer.Option(
            "--label-col", help="Column of true labels in --current: accuracy measured beside the estimate."
        ),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            help="PROVIDER:MODEL to compare texts as embeddings too (default: an embedding --model's)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare current scored data (or live traffic) with a reference: labels, confidence, length, text.

    The reference is --reference, or else the profile recorded when the artifact was packaged
    with --eval (no texts: the text-domain check then needs --reference). Accuracy is estimated
    from confidences on both sides (through the map fitted at packaging, with --model), and
    measured where true labels are known.
    """
    from ..backends import Embedder
    from ..batch import load_drift_data
    from ..monitoring import DriftData, drift_report
    from ..packaging import load_artifact, technique_for
    from ..reports import ACCURACY_COLUMNS, CHECK_COLUMNS, accuracy_rows, check_cells, write_drift_report

    if reference is None and model is None:
        raise LabelwiseError("give --model TAG (its reference profile is the reference) or --reference DATA")
    artifact = load_artifact(model) if model else None
    tag = str(artifact.tag) if artifact else None
    when = parse_since(since)
    if reference is not None:
        reference_data = load_drift_data(reference, text_col=text_col)
    else:
        assert artifact is not None
        reference_data = DriftData.from_artifact(artifact)
    current_data = load_drift_data(current, text_col=text_col, label_col=label_col, since=when)
    embedding_spec = parse_embedder(embedder) if embedder else None
    if embedding_spec is None and artifact is not None:
        embedding_spec = technique_for(artifact.spec).input_embedder(artifact.spec)
    encoder = Embedder.with_default_cache(embedding_spec) if embedding_spec else None
    report = drift_report(reference_data, current_data, model=tag, embedder=encoder, artifact=artifact)
    files = write_drift_report(report, reference_data, current_data, out)
    if as_json:
        print_json(report)
        return
    table = Table(*CHECK_COLUMNS, "verdict")
    for check in report["checks"]:
        table.add_row(*check_cells(check), "[red]drift[/red]" if check["drifted"] else "ok")
    console.print(table)
    accuracy = Table(*ACCURACY_COLUMNS)
    for row in accuracy_rows(report):
        accuracy.add_row(*row)
    console.print(accuracy)
    for warning in sorted({row["estimated"]["warning"] for row in report["accuracy"]} - {None}):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print("wrote " + ", ".join(str(f) for f in files))


@batch_app.command("rai")
def batch_rai(
    scored: Annotated[Path, typer.Argument(help="Scored file (labelwise batch score) with true labels.")],
    label_col: Annotated[str, typer.Option("--label-col", help="Column holding the true label.")],
    out: Annotated[Path, typer.Option("--out", help="HTML report; the JSON goes beside it.")],
    cohort: Annotated[
        list[str] | None,
        typer.Option("--cohort", help="Column to disaggregate by (repeatable); default: text descriptors."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Artifact tag (default: the file's artifact_tag).")
    ] = None,
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    probes: Annotated[int, typer.Option(min=0, help="Items in the robustness sample; 0 skips probes.")] = 100,
    min_group_size: Annotated[
        int, typer.Option(min=1, help="Smaller groups are flagged, not compared.")
    ] = 30,
    n_boot: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the intervals.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap, the samples and the probes.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Where the classifier works and where it fails: cohorts, errors, calibration, robustness."""
    import warnings

    from ..batch import RaiData, SmallGroupWarning, rai_report
    from ..reports import write_rai_report

    data = RaiData.load(scored, label_col=label_col, text_col=text_col, cohort_cols=cohort or (), model=model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)  # they are in the report and printed below
        report = rai_report(data, probes=probes, seed=seed, min_group_size=min_group_size, n_boot=n_boot)
    files = write_rai_report(report, out)
    if as_json:
        print_json(report)
        return
    metrics = report["overall"]["metrics"]
    console.print(
        f"{report['overall']['rows']} items: accuracy {metrics['accuracy']['value']:.3f}, "
        f"weighted F1 {metrics['weighted_f1']['value']:.3f}"
    )
    table = Table("cohort", "worst group", "items", "accuracy", "largest accuracy gap [95%]")
    for result in report["cohorts"]:
        trusted = [g for g in result["groups"] if not g["small"]] or result["groups"]
        worst = min(trusted, key=lambda g: g["metrics"]["accuracy"]["value"])
        gap = result["difference"]["accuracy"] if result["difference"] else None
        shown = "n/a (one group)" if gap is None else (
            f"{gap['value']:.3f} [{gap['low']:.3f}, {gap['high']:.3f}] p={gap['p_value']:.2g}"
        )  # fmt: skip
        table.add_row(
            result["cohort"],
            worst["group"],
            str(worst["count"]),
            f"{worst['metrics']['accuracy']['value']:.3f}",
            shown,
        )
    console.print(table)
    for probe in report["robustness"]["probes"]:
        console.print(
            f"probe {probe['probe']}: {probe['flip_rate']:.1%} of {probe['items']} predictions flipped"
        )
    if report["robustness"]["note"]:
        console.print(f"[yellow]{report['robustness']['note']}[/yellow]")
    for warning in report["warnings"]:
        console.print(f"[yellow]warning: {warning}[/yellow]")
    console.print("wrote " + ", ".join(str(f) for f in files))
