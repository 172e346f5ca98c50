"""Test helpers: tiny datasets in each dataset's real on-disk format, and a local HTTP server.

Every maker writes real files (PCM WAV written with the standard library's ``wave`` module,
real zip and tar.gz archives, the JSON of Zenodo's record API, archive.org's ``_files.xml``)
holding synthetic calls whose class is learnable: each class is a harmonic tone at its own
fundamental frequency with a little noise, at varied sample rates.

The server (:class:`LocalServer`) serves registered routes on 127.0.0.1 with ``Range`` support,
can cut a transfer after N bytes (to test resume) and logs every request (to test that verified
data is not fetched again).

Used by tests/test_download_*.py, tests/test_weights.py (AVES retry and resume),
tests/test_datasets.py, tests/test_splits.py and the lead's whole-workflow tests.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import re
import sys
import tarfile
import threading
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

# --------------------------------------------------------------------------------------------
# Synthetic calls
# --------------------------------------------------------------------------------------------


def class_frequency(class_index: int, base_hz: float = 300.0, step_hz: float = 170.0) -> float:
    """Fundamental frequency (Hz) of the synthetic calls of class ``class_index``."""
    return base_hz + step_hz * class_index


def synth_call(class_index: int, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable synthetic call: a 3-harmonic tone at the class's frequency, jittered, with noise.

    Returns float32 mono samples in [-1, 1], shape [round(seconds * sample_rate)].
    """
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    f0 = class_frequency(class_index) * (1.0 + rng.uniform(-0.02, 0.02))
    f0 = min(f0, 0.2 * sample_rate)  # keep the harmonics below Nyquist at low sample rates
    wave_ = sum((0.6 / k) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3))
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) * 40.0 + 0.05)
    noise = 0.05 * rng.standard_normal(n)
    return np.clip(wave_ * envelope + noise, -1.0, 1.0).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV file (the real format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(int(sample_rate))
        wf.writeframes(pcm.tobytes())
    return path


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """The bytes of a 16-bit PCM WAV file holding ``samples``."""
    buf = io.BytesIO()
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(buf, "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(int(sample_rate))
        wf.writeframes(pcm.tobytes())
    return buf.getvalue()


def md5_of(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def sha1_of(path: str | Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Watkins: watkins.zip with annotations.csv (path,species) and one folder per species
# --------------------------------------------------------------------------------------------

WATKINS_SPECIES = ("Clymene_Dolphin", "Bottlenose_Dolphin", "Beluga,_White_Whale", "Weddell_Seal")


@dataclass
class WatkinsInfo:
    zip_path: Path
    rows: list[tuple[str, str]]  # (path, species) in annotations.csv order
    sample_rates: dict[str, int] = field(default_factory=dict)  # path -> sample rate


def make_watkins_zip(zip_path: str | Path, species: Sequence[str] = WATKINS_SPECIES,
                     files_per_species: Sequence[int] | int = (6, 6, 6, 2), seconds: float = 0.4,
                     sample_rates: Sequence[int] = (8000, 22050, 47600, 600 * 20), prefix: str = "",
                     seed: int = 0) -> WatkinsInfo:
    """Write a Watkins-style ``watkins.zip``: ``annotations.csv`` plus ``<Species>/<id>.wav`` files.

    ``files_per_species`` is one count or one per species (default: the last species has 2 files,
    like Weddell_Seal). ``prefix`` nests everything in a folder inside the zip. Rows of
    annotations.csv are interleaved across species so that file order is not class order.
    """
    rng = np.random.default_rng(seed)
    counts = [files_per_species] * len(species) if isinstance(files_per_species, int) else list(files_per_species)
    entries = []
    for s_idx, (name, count) in enumerate(zip(species, counts)):
        for j in range(count):
            entries.append((j, s_idx, f"{name}/{8300 + s_idx * 100 + j:05d}{j:03d}.wav", name))
    entries.sort()  # interleave species: all first files, then all second files, ...
    info = WatkinsInfo(zip_path=Path(zip_path), rows=[])
    Path(zip_path).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        lines = io.StringIO()
        writer = csv.writer(lines, lineterminator="\n")
        writer.writerow(["path", "species"])
        for k, (_, s_idx, rel, name) in enumerate(entries):
            sr = int(sample_rates[k % len(sample_rates)])
            zf.writestr(prefix + rel, wav_bytes(synth_call(s_idx, seconds, sr, rng), sr))
            writer.writerow([rel, name])
            info.rows.append((rel, name))
            info.sample_rates[rel] = sr
        zf.writestr(prefix + "annotations.csv", lines.getvalue())
    return info


def archive_org_files_xml(item: str, files: Mapping[str, str | Path]) -> str:
    """archive.org's ``<item>_files.xml`` listing with md5, sha1 and size of each given file."""
    rows = []
    for name, path in files.items():
        path = Path(path)
        rows.append(f'  <file name="{name}" source="original">\n'
                    f"    <size>{path.stat().st_size}</size>\n"
                    f"    <md5>{md5_of(path)}</md5>\n"
                    f"    <sha1>{sha1_of(path)}</sha1>\n"
                    f"    <format>ZIP</format>\n  </file>")
    return "<files>\n" + "\n".join(rows) + f'\n  <file name="{item}_meta.xml" source="metadata"/>\n</files>\n'


# --------------------------------------------------------------------------------------------
# IMV: InfantMarmosetsVox_twin_{T}.tar.gz + InfantMarmosetsVox_documentation.tar.gz (labels.csv)
# --------------------------------------------------------------------------------------------

IMV_CALLTYPES = 11  # 0..10 are calls; 11 Silence and 12 Noise are dropped by the loader


@dataclass
class IMVInfo:
    archives: dict[str, Path]           # file name -> path of each tarball
    labels: list[dict]                  # rows of labels.csv, in order
    recordings: list[str]               # recording file names (without .wav)
    sample_rate: int


def make_imv_archives(out_dir: str | Path, twins: Sequence[int] = (1, 2), dates: Sequence[str] = ("20160907", "20160914"),
                      calls_per_recording: int = 12, sample_rate: int = 44100, call_seconds: float = 0.25,
                      n_calltypes: int = 4, with_silence_and_noise: bool = True, seed: int = 0) -> IMVInfo:
    """Write IMV-style tarballs into ``out_dir``.

    Each twin tarball holds ``data/twin_<T>/<date>_Twin<T>_marmoset<M>.wav`` (M in 1, 2) with
    calls placed one after the other with gaps; the documentation tarball holds ``labels.csv``
    (columns filename,start,end,duration,calltype,caller). Call types cycle through
    ``0..n_calltypes-1``; with ``with_silence_and_noise`` every recording also gets one Silence
    (11) and one Noise (12) row, which the loader must drop.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels, recordings, archives = [], [], {}
    gap = 0.15
    for twin in twins:
        members = {}
        for date in dates:
            for marmoset in (1, 2):
                filename = f"{date}_Twin{twin}_marmoset{marmoset}"
                recordings.append(filename)
                pieces, t = [np.zeros(int(gap * sample_rate), np.float32)], gap
                events = [(k % n_calltypes) for k in range(calls_per_recording)]
                if with_silence_and_noise:
                    events += [11, 12]
                for calltype in events:
                    if calltype == 11:
                        call = np.zeros(int(call_seconds * sample_rate), np.float32)
                    elif calltype == 12:
                        call = (0.1 * rng.standard_normal(int(call_seconds * sample_rate))).astype(np.float32)
                    else:
                        call = synth_call(calltype, call_seconds, sample_rate, rng)
                    start, end = t, t + len(call) / sample_rate
                    labels.append({"filename": filename, "start": round(start, 6), "end": round(end, 6),
                                   "duration": round(end - start, 6), "calltype": calltype,
                                   "caller": marmoset})
                    pieces += [call, np.zeros(int(gap * sample_rate), np.float32)]
                    t = end + gap
                members[f"data/twin_{twin}/{filename}.wav"] = wav_bytes(np.concatenate(pieces), sample_rate)
        name = f"InfantMarmosetsVox_twin_{twin}.tar.gz"
        archives[name] = write_tar_gz(out_dir / name, members)
    csv_text = io.StringIO()
    writer = csv.DictWriter(csv_text, fieldnames=["filename", "start", "end", "duration", "calltype", "caller"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(labels)
    doc = "InfantMarmosetsVox_documentation.tar.gz"
    archives[doc] = write_tar_gz(out_dir / doc, {"labels.csv": csv_text.getvalue().encode(),
                                                 "README.txt": b"InfantMarmosetsVox (synthetic test copy)\n"})
    return IMVInfo(archives=archives, labels=labels, recordings=recordings, sample_rate=sample_rate)


def zenodo_record_json(record_id: int | str, files: Mapping[str, str | Path], base_url: str,
                       legacy: bool = False) -> dict:
    """The JSON of Zenodo's record API for ``files`` served under ``{base_url}/records/{id}/files/``."""
    entries = []
    for name, path in files.items():
        link = f"{base_url}/records/{record_id}/files/{name}/content"
        if legacy:
            entries.append({"filename": name, "filesize": Path(path).stat().st_size,
                            "checksum": md5_of(path), "links": {"download": link}})
        else:
            entries.append({"key": name, "size": Path(path).stat().st_size, "checksum": f"md5:{md5_of(path)}",
                            "links": {"self": link}})
    if legacy:  # the legacy API published bare md5 hex digests
        for entry in entries:
            entry["checksum"] = f"md5:{entry['checksum']}"
    return {"id": int(record_id), "metadata": {"title": "InfantMarmosetsVox (test copy)"}, "files": entries}


def serve_zenodo_record(server: "LocalServer", record_id: int | str, files: Mapping[str, str | Path]) -> str:
    """Register a Zenodo record (API JSON + file contents) on ``server``; return the API base URL."""
    record = zenodo_record_json(record_id, files, server.url)
    server.add_bytes(f"/api/records/{record_id}", json.dumps(record).encode(), content_type="application/json")
    for name, path in files.items():
        server.add_file(f"/records/{record_id}/files/{name}/content", path)
    return f"{server.url}/api/records"


# --------------------------------------------------------------------------------------------
# Abzaliev: data/<dog folder>/<calltype code>/*.wav
# --------------------------------------------------------------------------------------------

ABZALIEV_CODES = ("L-S1", "L-S2", "L-S3", "L-A", "L-PA", "L-P", "L-O", "S", "CH-P", "CH-N", "GR-P", "GR-N", "L-TA", "L-H")


def make_abzaliev_tree(root: str | Path, dog_folders: Sequence[str] = ("Lazy_150717", "Luna", "lasy_2", "Koster"),
                       codes: Sequence[str] = ("L-S1", "L-A", "S", "CH-P"), files_per_code: int = 3,
                       sample_rate: int = 48000, seconds: float = 0.3, seed: int = 0) -> Path:
    """Write ``root/data/<dog folder>/<code>/<n>.wav`` (the layout the Abzaliev data comes in).

    The default folders name three dogs: ``Lazy_150717`` and ``lasy_2`` are the same dog
    (prefix before ``_`` lower-cased, and the known misspelling ``lasy``). Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    for dog in dog_folders:
        for c_idx, code in enumerate(codes):
            for j in range(files_per_code):
                write_wav(root / "data" / dog / code / f"bark_{j:03d}.wav",
                          synth_call(c_idx, seconds, sample_rate, rng), sample_rate)
    return root


# --------------------------------------------------------------------------------------------
# folder: a user's own calls, root/ + labels.csv (path,label[,group,start,end])
# --------------------------------------------------------------------------------------------


def make_folder_dataset(root: str | Path, labels: Sequence[str] = ("bark", "growl", "whine"), files_per_label: int = 8,
                        groups_per_label: int = 4, sample_rates: Sequence[int] = (16000, 22050, 44100),
                        seconds: float = 0.5, with_segments: bool = False, seed: int = 0) -> Path:
    """Write audio files below ``root/audio/`` and ``root/labels.csv``; return the CSV path.

    Columns: ``path,label,group`` (and ``start,end`` when ``with_segments``: each file then holds
    two calls of its label and gets two rows). Groups (``ind<k>``) are shared across labels so
    that a grouped split has to keep an individual's calls of every label together.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = []
    for l_idx, label in enumerate(labels):
        for j in range(files_per_label):
            sr = int(sample_rates[(l_idx + j) % len(sample_rates)])
            group = f"ind{j % groups_per_label}"
            rel = f"audio/{label}/{label}_{j:03d}.wav"
            if with_segments:
                call_a, call_b = synth_call(l_idx, seconds, sr, rng), synth_call(l_idx, seconds, sr, rng)
                silence = np.zeros(int(0.1 * sr), np.float32)
                write_wav(root / rel, np.concatenate([silence, call_a, silence, call_b, silence]), sr)
                first = (0.1, 0.1 + seconds)
                second = (0.2 + seconds, 0.2 + 2 * seconds)
                rows.append({"path": rel, "label": label, "group": group, "start": first[0], "end": first[1]})
                rows.append({"path": rel, "label": label, "group": group, "start": second[0], "end": second[1]})
            else:
                write_wav(root / rel, synth_call(l_idx, seconds, sr, rng), sr)
                rows.append({"path": rel, "label": label, "group": group})
    labels_csv = root / "labels.csv"
    with open(labels_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return labels_csv


# --------------------------------------------------------------------------------------------
# Archives built to attack the extractor
# --------------------------------------------------------------------------------------------


def write_tar_gz(path: str | Path, members: Mapping[str, bytes]) -> Path:
    """Write a .tar.gz of regular files ``{member name: content}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def make_zip_slip(path: str | Path, evil_name: str = "../evil.txt") -> Path:
    """A zip whose second member escapes the extraction folder (``../evil.txt`` by default)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.csv", "path,species\n")
        zf.writestr(evil_name, "pwned\n")
    return Path(path)


def make_zip_with_symlink(path: str | Path, link_name: str = "link", target: str = "/etc") -> Path:
    """A zip holding a Unix symbolic link member (mode S_IFLNK in the external attributes)."""
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(link_name)
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, target)
    return Path(path)


def make_tar_with_absolute_path(path: str | Path, member: str = "/tmp/bioprobe_evil.txt") -> Path:
    """A tar.gz with a member at an absolute path."""
    return write_tar_gz(path, {"labels.csv": b"filename\n", member: b"pwned\n"})


def make_tar_with_symlink(path: str | Path, link_name: str = "data/escape", target: str = "../../../../etc",
                          then_write: str | None = "data/escape/evil.txt", hard: bool = False) -> Path:
    """A tar.gz with a symbolic (or hard) link escaping the folder, optionally followed by a write through it."""
    path = Path(path)
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(link_name)
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname = target
        tf.addfile(info)
        if then_write:
            data = b"pwned\n"
            member = tarfile.TarInfo(then_write)
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------------------------
# Local HTTP server with Range support, failure injection and a request log
# --------------------------------------------------------------------------------------------


@dataclass
class _Route:
    data: bytes | None = None
    path: Path | None = None
    content_type: str = "application/octet-stream"
    drop_after: list[int] = field(default_factory=list)  # per request, cut after N bytes (consumed in order)
    status: list[int] = field(default_factory=list)      # per request, answer with this status (consumed)
    honor_range: bool = True

    def body(self) -> bytes:
        return self.data if self.data is not None else Path(self.path).read_bytes()


@dataclass
class LoggedRequest:
    path: str
    range: str | None
    status: int
    bytes_sent: int


class _QuietServer(http.server.ThreadingHTTPServer):
    """Says nothing when a client hangs up mid-connection (tests cut transfers on purpose); any
    other error in a request is printed as usual."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            super().handle_error(request, client_address)


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving registered routes.

    Usage::

        with LocalServer() as server:
            server.add_file("/download/watkins_202104/watkins.zip", zip_path, drop_after=[5000])
            url = server.url + "/download/watkins_202104/watkins.zip"

    ``drop_after=[n, ...]``: the k-th request of the route sends only ``n`` body bytes and then
    closes the connection (while announcing the full length), as a broken transfer does.
    ``status=[503, ...]``: the k-th request is answered with that status instead.
    ``requests`` logs every request (path, Range header, status, body bytes sent), before the reply
    goes out, so the log is complete as soon as the client has its answer.
    """

    def __init__(self) -> None:
        self.routes: dict[str, _Route] = {}
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_bytes(self, url_path: str, data: bytes, content_type: str = "application/octet-stream",
                  drop_after: Iterable[int] = (), status: Iterable[int] = (), honor_range: bool = True) -> str:
        self.routes[url_path] = _Route(data=data, content_type=content_type, drop_after=list(drop_after),
                                       status=list(status), honor_range=honor_range)
        return self.url + url_path

    def add_file(self, url_path: str, path: str | Path, drop_after: Iterable[int] = (), status: Iterable[int] = (),
                 honor_range: bool = True) -> str:
        self.routes[url_path] = _Route(path=Path(path), drop_after=list(drop_after), status=list(status),
                                       honor_range=honor_range)
        return self.url + url_path

    def requests_for(self, url_path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == url_path]

    def start(self) -> "LocalServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handler_class(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                route = server.routes.get(path)
                range_header = self.headers.get("Range")
                if route is None:
                    self._reply_status(path, range_header, 404)
                    return
                with server._lock:
                    forced = route.status.pop(0) if route.status else None
                    cut = route.drop_after.pop(0) if route.drop_after else None
                if forced:
                    self._reply_status(path, range_header, forced)
                    return
                body = route.body()
                start, status = 0, 200
                if range_header and route.honor_range:
                    match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
                    if match:
                        start = int(match.group(1))
                        if start >= len(body):
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{len(body)}")
                            self.send_header("Content-Length", "0")
                            server.requests.append(LoggedRequest(path, range_header, 416, 0))
                            self.end_headers()
                            return
                        status = 206
                payload = body[start:]
                self.send_response(status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                sent = payload if cut is None else payload[:cut]
                # Logged before the body goes out: a client that has read the whole body may
                # look at the log at once, before this thread would run another line.
                server.requests.append(LoggedRequest(path, range_header, status, len(sent)))
                self.end_headers()
                try:
                    self.wfile.write(sent)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if cut is not None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

            def _reply_status(self, path: str, range_header: str | None, status: int) -> None:
                body = f"status {status}\n".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                server.requests.append(LoggedRequest(path, range_header, status, len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


# --------------------------------------------------------------------------------------------
# Ready-made dataset configs pointing at a LocalServer (for whole-workflow tests)
# --------------------------------------------------------------------------------------------


def serve_watkins(server: LocalServer, info: WatkinsInfo, item: str = "watkins_202104", with_listing: bool = True) -> dict:
    """Serve ``info.zip_path`` as archive.org does (zip + ``<item>_files.xml``); return a ``type: watkins`` config entry."""
    url = server.add_file(f"/download/{item}/watkins.zip", info.zip_path)
    cfg = {"type": "watkins", "urls": [url], "retry_backoff_s": 0.0}
    if with_listing:
        listing = archive_org_files_xml(item, {"watkins.zip": info.zip_path})
        cfg["files_xml"] = server.add_bytes(f"/download/{item}/{item}_files.xml", listing.encode())
    return cfg


def serve_imv(server: LocalServer, info: IMVInfo, record_id: int = 10130104, task: str = "calltype") -> dict:
    """Serve ``info.archives`` as a Zenodo record; return a ``type: imv`` config entry for its twins."""
    api = serve_zenodo_record(server, record_id, info.archives)
    twins = sorted(int(re.search(r"twin_(\d+)", n).group(1)) for n in info.archives if "_twin_" in n)
    return {"type": "imv", "zenodo_api": api, "zenodo_record": int(record_id), "twins": twins, "task": task,
            "retry_backoff_s": 0.0}
