"""``labelwise optimize``: the best prompt and examples within a budget, measured on locked test rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ._common import Concurrency, JsonOption, LabelCol, Resamples, TextCol, console, print_json
from ._progress import ProgressBar, err_console, step

if TYPE_CHECKING:
    from ..evaluation import OptimizeEstimate, OptimizeResult, RoundResult

BETTER = {"A": "the base spec is better", "B": "the winner is better", "tie": "no significant difference"}


def optimize_command(
    spec: Annotated[Path, typer.Argument(help="The base spec (YAML): candidates are derived from it.")],
    data: Annotated[
        Path, typer.Argument(help="Labelled CSV, JSONL or Parquet: pool, selection and test rows.")
    ],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            help="What varies (YAML: templates, k, draws, draw, embedder, temperatures, models). "
            "Default: NAME.space.yaml beside NAME.yaml, if there is one.",
        ),
    ] = None,
    budget_calls: Annotated[
        int | None, typer.Option("--budget-calls", min=1, help="Most model calls, test rows included.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", min=0.0, help="Most US dollars, at the spec's prices.")
    ] = None,
    search: Annotated[
        str,
        typer.Option(
            "--search", help="halving (successive halving), or grid (every candidate on every row)."
        ),
    ] = "halving",
    metric: Annotated[
        str, typer.Option("--metric", help="What the search maximises (or, for an error, minimises).")
    ] = ("weighted_f1"),
    test_rows: Annotated[
        int | None,
        typer.Option("--test-rows", min=2, help="Locked test rows (default: a fifth, at most 500)."),
    ] = None,
    selection_rows: Annotated[
        int | None,
        typer.Option(
            "--selection-rows", min=2, help="Rows candidates are chosen on (default: a fifth, at most 500)."
        ),
    ] = None,
    pool_rows: Annotated[
        int, typer.Option("--pool-rows", min=1, help="Most rows examples are drawn from.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the draws and the bootstrap.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for the report and the scores kept for a rerun (default: ./SPEC-optimize)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what it would spend; call no model.")
    ] = False,
    package_best: Annotated[
        bool, typer.Option("--package-best", help="Package the winner with its eval card from the test rows.")
    ] = False,
    mlflow_uri: Annotated[
        str | None,
        typer.Option("--mlflow", help="Also log to MLflow at this tracking URI (e.g. sqlite:///mlflow.db)."),
    ] = None,
    concurrency: Concurrency = 16,
    n_resamples: Resamples = 1000,
    as_json: JsonOption = False,
) -> None:
    """Search prompts and few-shot example sets within a budget; say how good the winner really is."""
    from ..core import LabelwiseError
    from ..evaluation import OptimizeSettings, SearchSpace, estimate_optimize, optimize

    if search not in ("halving", "grid"):
        raise LabelwiseError(f"--search must be halving or grid, not {search!r}")
    search_space = SearchSpace.for_spec(spec, space)
    settings = OptimizeSettings(
        data=data, text_col=text_col, label_col=label_col, search=search,  # type: ignore[arg-type]
        budget_calls=budget_calls, budget_usd=budget_usd, metric=metric, test_rows=test_rows,
        selection_rows=selection_rows, pool_rows=pool_rows, seed=seed, concurrency=concurrency,
        n_resamples=n_resamples,
    )  # fmt: skip
    if dry_run:
        estimate = estimate_optimize(spec, search_space, settings)
        if as_json:
            print_json(estimate.model_dump(mode="json"))
        else:
            _print_estimate(estimate)
        return
    folder = out or Path(f"{spec.stem}-optimize")
    bar: ProgressBar | None = None

    def started(estimate: OptimizeEstimate) -> None:
        nonlocal bar
        step(
            f"{estimate.candidates} candidates, {estimate.selection_rows} selection rows, "
            f"{estimate.test_rows} test rows; about {estimate.calls} calls (${estimate.cost_usd:.4f}) "
            f"against {estimate.grid_calls} for the full grid"
        )
        bar = ProgressBar("scoring", estimate.calls, unit="calls").start()

    def advanced(count: int) -> None:
        if bar is not None:
            bar.advance(count)

    def round_done(result: RoundResult) -> None:
        best = result.scores[result.kept[0]]  # the kept come best first, whichever way the metric goes
        err_console.print(
            f"round {result.index}: {len(result.scores)} candidates on {result.rows} rows, best {best:.3f}; "
            f"kept {len(result.kept)}",
            highlight=False,
        )

    try:
        result = optimize(
            spec, search_space, settings, out=folder, package_best=package_best,
            on_start=started, on_progress=advanced, on_round=round_done,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.stop()
    from ..reports import log_optimize_to_mlflow, write_optimize_report

    files = write_optimize_report(result, folder)
    if mlflow_uri:
        experiment_id = log_optimize_to_mlflow(result, mlflow_uri, artifact_dir=folder / "mlartifacts")
        step(f"logged to MLflow experiment {experiment_id} at {mlflow_uri}")
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_result(result, files)


def _print_estimate(estimate: OptimizeEstimate) -> None:
    table = Table("round", "candidates", "rows each", "calls")
    for i, r in enumerate(estimate.rounds, start=1):
        table.add_row(str(i), str(r.candidates), str(r.rows), str(r.calls))
    table.add_row("test", "2", str(estimate.test_rows), str(estimate.test_calls))
    console.print(table)
    console.print(
        f"{estimate.candidates} candidates ({estimate.pool_rows} pool rows, "
        f"{estimate.selection_rows} selection, {estimate.test_rows} test): about {estimate.calls} calls, "
        f"{estimate.prompt_tokens} prompt tokens "
        f"(counted with {estimate.tokens_counted_with}), {estimate.completion_tokens} completion "
        f"tokens, ${estimate.cost_usd:.4f} (at most ${estimate.cost_usd_high:.4f}); the full grid would "
        f"make {estimate.grid_calls} calls"
    )


def _print_result(result: OptimizeResult, files: list[Path]) -> None:
    o, spend = result.optimism, result.spend
    winner = result.candidate(result.winner)
    console.print(f"winner: [bold]{winner.name}[/bold] ({result.winner}), chosen on {o.selection_rows} rows")
    table = Table("", o.metric, "95% interval", "rows")
    table.add_row("selection score (chose the winner)", f"{o.selection:.3f}", "", str(o.selection_rows))
    test = f"[{o.test.low:.3f}, {o.test.high:.3f}]"
    table.add_row("winner on the locked test rows", f"{o.test.value:.3f}", test, str(result.test_rows))
    base = result.base_card.metrics[o.metric]
    interval = f"[{base.low:.3f}, {base.high:.3f}]"
    table.add_row("base spec on the same test rows", f"{base.value:.3f}", interval, str(result.test_rows))
    table.add_row("optimism (selection - test)", f"{o.value:+.3f}", f"[{o.low:+.3f}, {o.high:+.3f}]", "")
    console.print(table)
    compared = next(t for t in result.comparison if t["metric"] == o.metric)
    console.print(
        f"winner - base on the test rows: {compared['difference']:+.3f} [{compared['low']:+.3f}, "
        f"{compared['high']:+.3f}], p = {compared['p_value']:.3g} ({BETTER[compared['better']]})"
    )
    budget = "no budget" if spend["limit"] is None else f"a budget of {spend['limit']} {spend['unit']}"
    console.print(
        f"spent {spend['calls']} calls ({spend['calls_this_run']} this run), ${spend['cost_usd']:.4f}, "
        f"of {budget}" + ("; the budget stopped the search" if result.stopped_by_budget else "")
    )
    if result.packaged_tag:
        console.print(f"packaged the winner as [bold]{result.packaged_tag}[/bold]")
    console.print("wrote " + ", ".join(str(f) for f in files))
