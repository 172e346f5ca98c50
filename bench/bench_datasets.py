"""Benchmark of the dataset stage at the study's scale: IMV manifest (72,921 calls, 350 recordings),
splits (random/stratified/grouped), leakage report, and a download+verify+extract of a 200 MB zip."""
import argparse, sys, time, tempfile, csv
from pathlib import Path

argparse.ArgumentParser(description=__doc__).parse_args()  # no options; --help says what it does
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow")); sys.path.insert(0, str(REPO / "tests"))
import numpy as np, pandas as pd
from bioprobe import datasets, splits
from archives import LocalServer

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
root = tmp / "data" / "imv"
recs = [f"2016{m:02d}{d:02d}_Twin{t}_marmoset{k}" for t in range(1, 6) for k in (1, 2) for m in range(1, 8) for d in (1, 8, 15, 22, 29)]
assert len(recs) == 350
for r in recs:
    p = root / "data" / f"twin_{r.split('_Twin')[1][0]}" / f"{r}.wav"; p.parent.mkdir(parents=True, exist_ok=True); p.write_bytes(b"")
n_rows = 80000  # ~72,921 remain after dropping silence/noise
with open(root / "labels.csv", "w", newline="") as fh:
    w = csv.writer(fh); w.writerow(["filename", "start", "end", "duration", "calltype", "caller"])
    for i in range(n_rows):
        s = rng.uniform(0, 590); w.writerow([recs[i % 350], f"{s:.3f}", f"{s+0.4:.3f}", "0.4", int(rng.choice(13, p=[.08]*11+[.06, .06])), 1])
cfg = {"type": "imv", "twins": [1, 2, 3, 4, 5]}
t = time.perf_counter(); df = datasets.build_manifest("imv", cfg, tmp / "data"); t_build = time.perf_counter() - t
print(f"IMV-scale manifest: {len(df)} calls from {n_rows} label rows, 350 recordings: {t_build:.2f} s")
for method in ("random", "stratified", "grouped"):
    t = time.perf_counter(); out = splits.assign_splits(df.drop(columns="exclude"), method=method); dt = time.perf_counter() - t
    t = time.perf_counter(); rep = splits.leakage_report(out); dr = time.perf_counter() - t
    print(f"  split {method:10s}: {dt:6.2f} s; leakage report {dr:.2f} s; recordings crossing splits: "
          f"{rep['ids']['recording']['n_crossing_splits']}/350; sizes {rep['n_clips']}")
t = time.perf_counter(); datasets.write_clips("imv", cfg, tmp / "data", tmp / "c.csv")
datasets.write_split("imv", cfg, tmp / "data", tmp / "c.csv", tmp / "s.csv", tmp / "l.json")
print(f"  write_clips() + write_split() end to end: {time.perf_counter()-t:.2f} s")
# worst case for grouped: 70,000 clips, each its own group
big = pd.DataFrame({"label": rng.integers(0, 10, 70000).astype(str), "group": np.arange(70000).astype(str)})
t = time.perf_counter(); splits.assign_splits(big, method="grouped"); print(f"grouped split, 70,000 singleton groups, 10 classes: {time.perf_counter()-t:.2f} s")
# download: 200 MB zip over 127.0.0.1, cut once at 50%, resume, verify, extract
import zipfile, os
zp = tmp / "srv" / "watkins.zip"; zp.parent.mkdir()
with zipfile.ZipFile(zp, "w", compression=zipfile.ZIP_STORED) as zf:
    zf.writestr("annotations.csv", "path,species\n" + "".join(f"S{i%4}/{i}.wav,S{i%4}\n" for i in range(200)))
    for i in range(200): zf.writestr(f"S{i%4}/{i}.wav", os.urandom(1_000_000))
size = zp.stat().st_size
with LocalServer() as srv:
    url = srv.add_file("/w.zip", zp, drop_after=[size // 2])
    t = time.perf_counter()
    datasets.download("watkins", {"type": "watkins", "urls": [url], "retry_backoff_s": 0}, tmp / "dl", lock_file=tmp / "lock.json")
    dt = time.perf_counter() - t
print(f"download {size/1e6:.0f} MB (cut at 50 %, resumed) + md5/sha1/sha256 + extract: {dt:.2f} s ({size/1e6/dt:.0f} MB/s end to end)")
