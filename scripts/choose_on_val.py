"""PIT's variants against source-only on the development pair's val split (generator seed 0):
the measurements the demo's settings were chosen by (README, "Settings, chosen on val").

    python scripts/choose_on_val.py OUT_DIR [ROWS] [SEEDS]

ROWS: comma-separated names of VARIANTS (default all); SEEDS: comma-separated training seeds
(default 0). Writes OUT_DIR/report.md and report.json like `pit demo`.
"""
import sys

from pit_engine import demo

VARIANTS = {
    "source_only": ("source only", "source_only", {}),
    "pit": ("PIT, default", "pit", {}),
    "q_pivot": ("pivot from q alone", "pit", {"refresh_pivot": False}),
    "snapshot1": ("teacher: snapshot, K = 1", "pit", {"teacher": "snapshot", "refresh_every": 1}),
    "per_class": ("GWRP support per class", "pit", {"gwrp_per_class": True}),
    "conf_w": ("confidence-weighted L_pix", "pit", {"confidence_weighted": True}),
    "thr_seeds": ("threshold seeds 0.9", "pit", {"seed_ratio": 0.0}),
    "no_stage2": ("no alignment stage", "pit", {"align_steps": 0}),
    "segmenter_pivot": ("pivot read from the segmenter", "pit", {"pivot_reading": "segmenter"}),
    # the baselines' weights, not the published ones: can entropy minimisation move the demo at all?
    "minent_x10": ("MinEnt, 10 x the published weights", "minent", {"lambda_ent": 1e-2, "lambda_ent_aux": 2e-3}),
    "minent_x100": ("MinEnt, 100 x the published weights", "minent", {"lambda_ent": 1e-1, "lambda_ent_aux": 2e-2}),
}

if __name__ == "__main__":
    demo.ROWS.update(VARIANTS)
    rows = sys.argv[2].split(",") if len(sys.argv) > 2 else list(VARIANTS)
    seeds = tuple(int(s) for s in sys.argv[3].split(",")) if len(sys.argv) > 3 else (0,)
    demo.run_demo(sys.argv[1], device="cpu", seeds=seeds, rows=rows, split="val", data_seed=0,
                  say=lambda text: print(text, flush=True))
