"""Stage evaluate: score the phase-1 and final models on every labelled split.

Writes the --metrics JSON (the headline figures of each scored set, see
staged_fer/evaluation/scoring.py), per-sample confusion rows for `dvc plots` under --plots,
and under --reports scores.json (every figure, per-class tables included), the predictions
CSVs, Figure-4-style confusion PNGs and a Markdown summary; with --card, the model card
(staged_fer/evaluation/model_card.py).
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.splits import add_source_arguments, open_sources
from staged_fer.gpus import acquire, held
from staged_fer.evaluation.scoring import evaluation_sets, score, write_outputs


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--phase1", required=True, help="phase-1 checkpoint")
    p.add_argument("--phase2", required=True, help="final (phase-2) checkpoint")
    add_source_arguments(p)
    p.add_argument("--metrics", required=True, help="metrics JSON to write")
    p.add_argument("--plots", required=True, help="folder of per-sample confusion rows for `dvc plots`")
    p.add_argument("--reports", required=True, help="folder of predictions CSVs, figures and a summary")
    p.add_argument("--card", help="model card to write (Markdown), linking the figures under --reports")
    args = p.parse_args(argv)

    # Imported here so that --help answers without loading torch.
    from staged_fer.evaluation.checkpoints import EvaluateParams, Predictor
    params = read_stage_params(load_params(args.params), EvaluateParams)
    cfg, seed = params.evaluate, params.seed
    gpus = acquire(1, "evaluate", cpu_only=cfg.device == "cpu")   # before anything starts CUDA
    paths, data = open_sources(args)
    sets = evaluation_sets(data, paths)

    predictor = Predictor(params, args.params, {"phase1": args.phase1, "final": args.phase2})
    scored = score(sets, predictor, predictor.synthetic)
    info = predictor.info(held(gpus))
    write_outputs(scored, cfg, seed, info, metrics_path=args.metrics,
                  plots_dir=args.plots, reports_dir=args.reports)
    if args.card:
        from staged_fer.evaluation.model_card import write_model_card
        write_model_card(args.card, scored, cfg, seed, predictor.runs, args.reports, info["gpus"],
                         checkpoints={"phase1": args.phase1, "final": args.phase2})


if __name__ == "__main__":
    sys.exit(run_stage(main))
