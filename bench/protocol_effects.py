"""How much each protocol choice changes the pooled features (not a test; figures in docs/protocol.md).

On the offline demo's 120 synthetic calls (8 to 96 kHz, 0.12 to 2.5 s) and the tiny random
models of bioprobe.tiny, through the real resample and embed code, it prints the median
relative difference |a - b| / |b| over every pooled feature (all layers, mean and std halves)
and over the std half alone, for:

1. ``std_ddof`` 0 against 1 (every model);
2. AVES ``layer0: study`` against ``transformer_input`` (layer 0 only; layers 1.. are equal);
3. ``batching: study_repeat_pad`` with batches of 32 calls in manifest order against one call
   at a time (``equal_length``), i.e. what the authors' IMV padding does.

    python bench/protocol_effects.py [--json]

Random tiny models: the sizes of effects 2 and 3 depend on the weights, so they show the
order of magnitude only. Effect 1 does not: the std half is scaled by sqrt(n / (n - 1)) for a
clip of n frames, whatever the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))


def median_rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.median(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import pandas as pd

    from bioprobe.audio import resample_manifest
    from bioprobe.demo import make_synthetic_calls
    from bioprobe.embed import embed_dataset
    from bioprobe.store import read_embeddings
    from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels = pd.read_csv(make_synthetic_calls(tmp / "calls"), keep_default_na=False)
        manifest = labels.assign(clip_id=[f"c{i:04d}" for i in range(len(labels))])[["clip_id", "path", "start", "end"]]
        manifest.to_csv(tmp / "manifest.csv", index=False)
        audio = tmp / "audio16k.h5"
        resample_manifest(tmp / "manifest.csv", tmp / "calls", audio, progress=False)
        models = {kind: {"source": "huggingface", "id": str(save_tiny_hf_model(kind, tmp / kind))} for kind in ("hubert", "wav2vec2", "wavlm")}
        config, weights = save_tiny_aves_model(tmp / "aves")
        models["aves"] = {"source": "aves", "config_url": str(config), "weights_url": str(weights)}

        def embed(name, mcfg, **opts):
            out = tmp / f"{name}-{len(list(tmp.glob('*.h5')))}.h5"
            embed_dataset(audio, out, name, mcfg, {"device": "cpu", **opts}, tmp / "cache", progress=False)
            return read_embeddings(out)[0]

        for name, mcfg in models.items():
            unbiased, population = embed(name, mcfg, std_ddof=1), embed(name, mcfg, std_ddof=0)
            half = unbiased.shape[2] // 2
            rows.append({"effect": "std_ddof 0 vs 1", "model": name, "all_features": median_rel(population, unbiased),
                         "std_half": median_rel(population[:, :, half:], unbiased[:, :, half:])})
            padded = embed(name, mcfg, batching="study_repeat_pad", batch_size=32)
            rows.append({"effect": "study_repeat_pad (32) vs one at a time", "model": name,
                         "all_features": median_rel(padded, unbiased), "std_half": median_rel(padded[:, :, half:], unbiased[:, :, half:])})
        study = embed("aves", {**models["aves"], "layer0": "study"})
        transformer_input = embed("aves", {**models["aves"], "layer0": "transformer_input"})
        half = study.shape[2] // 2
        rows.append({"effect": "AVES layer0 study vs transformer_input (layer 0)", "model": "aves",
                     "all_features": median_rel(study[:, 0], transformer_input[:, 0]),
                     "std_half": median_rel(study[:, 0, half:], transformer_input[:, 0, half:])})
        assert np.array_equal(study[:, 1:], transformer_input[:, 1:])
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'effect':52s} {'model':9s} {'all features':>13s} {'std half':>10s}")
        for row in rows:
            print(f"{row['effect']:52s} {row['model']:9s} {row['all_features']:13.2e} {row['std_half']:10.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
