"""Print how often the real detectors find and fit the synthetic SFEW faces.

For each synthetic photo: OpenCV's Viola-Jones frontal cascade (a hit is a detection whose
box contains both true eye centres of the main face), then dlib's 68-point predictor on that
box (a fit is a mean eye-centre error below 0.25 of the true eye distance). Also prints the
median eye error and the rendering CPU time per photo (CPU time: the machine may be shared).

    python benchmarks/synthetic_detection_rate.py [--photos 140] [--seed 0] [--quick]
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse, parser, positive_int
from staged_fer.synthetic.audit import FIT_TOLERANCE, measure


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--photos", type=positive_int, default=140)
    ap.add_argument("--seed", type=int, default=0)
    args = parse(ap, {"photos": 14})
    r = measure(args.photos, args.seed)
    n = r["photos"]
    print(f"photos {n}: frontal detector {r['detected']}/{n} = {r['detected'] / n:.1%}; "
          f"dlib eye fit within {FIT_TOLERANCE} e2e {r['fitted']}/{r['detected']} detected "
          f"= {r['fitted'] / max(r['detected'], 1):.1%} ({r['fitted'] / n:.1%} of all); "
          f"median eye error {r['median_eye_error']:.3f} e2e; "
          f"rendering {r['render_cpu_ms_per_photo']:.1f} CPU ms/photo")


if __name__ == "__main__":
    main()
