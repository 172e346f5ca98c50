"""Fetching weights for real from a local server on 127.0.0.1, locks, offline loading, checksums.

``FakeHub`` answers the subset of the Hugging Face hub API that ``huggingface_hub``'s
``snapshot_download`` uses (model info, tree listing, resolve), and serves plain files for the
AVES URLs, so the real download code runs end to end without the internet. The AVES retry and
resume tests use tests/archives.py's ``LocalServer`` (503 answers, transfers cut after N bytes).
"""

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch

from bioprobe.download import CHUNK_BYTES
from bioprobe.encoders import load_encoder
from bioprobe.tiny import install_in_hub_cache, save_tiny_aves_model, save_tiny_hf_model
from bioprobe.weights import WeightsUnavailableError, fetch_weights, lock_path, pinned_path, read_lock, sha256_file

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


class FakeHub:
    """A local HTTP server playing the Hugging Face hub (repos at a commit) and a file host."""

    def __init__(self):
        self.repos: dict[str, tuple[str, dict[str, bytes]]] = {}
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.respond(head=True)

            def do_GET(self):
                self.respond(head=False)

            def send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def respond(self, head):
                path = unquote(urlparse(self.path).path)
                hub.log.append((self.command, path))
                if path in hub.files:
                    return self.send(200, hub.files[path], head=head)
                for repo, (commit, files) in hub.repos.items():
                    if path.startswith(f"/api/models/{repo}/revision/"):
                        info = {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                        return self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
                    if path.startswith(f"/api/models/{repo}/tree/"):
                        tree = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()} for f, b in files.items()]
                        return self.send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
                    if path.startswith(f"/{repo}/resolve/"):
                        filename = path[len(f"/{repo}/resolve/") :].partition("/")[2]
                        if filename in files:
                            body = files[filename]
                            headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
                            return self.send(200, body, headers, head)
                self.send(404, b'{"error": "not found"}', {"X-Error-Code": "RepoNotFound"}, head)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_repo(self, repo: str, folder: Path, commit: str) -> None:
        folder = Path(folder)
        self.repos[repo] = (commit, {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()})

    def add_file(self, url_path: str, data: bytes) -> str:
        self.files[url_path] = data
        return self.url + url_path

    def downloads(self) -> list[str]:
        return [p for method, p in self.log if method == "GET"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch):
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights_models")
    a = save_tiny_hf_model("hubert", root / "hubert_a", seed=0)
    (a / "tf_model.h5").write_bytes(b"tensorflow weights: never downloaded")
    return {"a": a, "b": save_tiny_hf_model("hubert", root / "hubert_b", seed=1), "aves": save_tiny_aves_model(root / "aves")}


def first_layer_output(encoder):
    with torch.inference_mode():
        return encoder(torch.linspace(-1, 1, 8000)[None])[1]


def assert_same_model_as(encoder, saved_dir, tmp_path):
    """``encoder`` computes exactly what the model saved in ``saved_dir`` computes."""
    mcfg = {"source": "huggingface", "id": str(saved_dir)}
    fetch_weights("ref", mcfg, tmp_path / "ref_cache")  # a local folder: no network, even offline
    reference = load_encoder("ref", mcfg, tmp_path / "ref_cache")
    torch.testing.assert_close(first_layer_output(encoder), first_layer_output(reference), atol=0, rtol=0)


# ------------------------------------------------------------------------------------------------
# Hugging Face hub


def test_hf_fetch_pins_the_commit_and_reuses_it(hub, tiny, tmp_path):
    cache = tmp_path / "cache"
    mcfg = {"source": "huggingface", "id": "org/tiny-hubert", "revision": "main"}
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    lock = fetch_weights("hubert", mcfg, cache)
    assert lock == read_lock("hubert", cache)
    assert lock_path("hubert", cache) == cache / "locks" / "hubert.json"
    assert (lock["id"], lock["revision"], lock["commit"]) == ("org/tiny-hubert", "main", COMMIT_A)
    assert sorted(lock["files"]) == ["config.json", "model.safetensors", "preprocessor_config.json"]  # no tf_model.h5
    assert lock["files"]["model.safetensors"]["sha256"] == sha256_file(tiny["a"] / "model.safetensors")
    assert not any("tf_model" in p for p in hub.downloads())
    assert not list((cache / "locks").glob("*.part*"))  # written atomically, no leftovers
    assert read_lock("hubert", cache, pinned_path("hubert", cache)) == lock

    # The branch moves on upstream: a rerun keeps the pinned commit and downloads nothing.
    hub.add_repo("org/tiny-hubert", tiny["b"], COMMIT_B)
    mtime, requests = lock_path("hubert", cache).stat().st_mtime_ns, len(hub.log)
    assert fetch_weights("hubert", mcfg, cache)["commit"] == COMMIT_A
    assert len(hub.log) == requests and lock_path("hubert", cache).stat().st_mtime_ns == mtime

    # GPU jobs load offline from the cache and the lock.
    hub.close()
    encoder = load_encoder("hubert", mcfg, cache)
    assert encoder.provenance["commit"] == COMMIT_A
    assert_same_model_as(encoder, tiny["a"], tmp_path)


def test_hf_deleting_the_lock_and_its_pinned_copy_updates_to_the_new_commit(hub, tiny, tmp_path):
    cache = tmp_path / "cache"
    mcfg = {"source": "huggingface", "id": "org/tiny-hubert"}
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    assert fetch_weights("m", mcfg, cache)["commit"] == COMMIT_A
    hub.add_repo("org/tiny-hubert", tiny["b"], COMMIT_B)
    # Snakemake deletes the lock before re-running the rule: the pinned copy keeps the commit.
    lock_path("m", cache).unlink()
    assert fetch_weights("m", mcfg, cache)["commit"] == COMMIT_A
    assert read_lock("m", cache)["commit"] == COMMIT_A
    # Deleting both is how a user asks for the branch's new head.
    lock_path("m", cache).unlink()
    pinned_path("m", cache).unlink()
    lock = fetch_weights("m", mcfg, cache)
    assert lock["commit"] == COMMIT_B
    assert lock["files"]["model.safetensors"]["sha256"] == sha256_file(tiny["b"] / "model.safetensors")


def test_random_init_fetches_only_the_config(hub, tiny, tmp_path):
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    lock = fetch_weights("rand", {"source": "random_init", "of": "org/tiny-hubert", "seed": 0}, tmp_path)
    assert lock["commit"] == COMMIT_A and "model.safetensors" not in lock["files"]
    assert not any(p.endswith(".safetensors") for p in hub.downloads())
    encoder = load_encoder("rand", {"source": "random_init", "of": "org/tiny-hubert", "seed": 0}, tmp_path)
    assert encoder.provenance["of_commit"] == COMMIT_A and encoder.provenance["seed"] == 0


def test_hf_unreachable_and_not_cached_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with pytest.raises(WeightsUnavailableError, match=r"cannot fetch org/absent@main .*not in the cache.*fetch_weights rule"):
        fetch_weights("absent", {"source": "huggingface", "id": "org/absent", "revision": "main"}, tmp_path)
    assert not lock_path("absent", tmp_path).exists()


def test_prefilled_hub_cache_works_offline(monkeypatch, tiny, tmp_path):
    """A cache filled on another machine (real hub layout) is pinned and loaded without network."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    snapshot = install_in_hub_cache(tiny["a"], "facebook/tiny-hubert", cache / "huggingface")
    assert (snapshot / "model.safetensors").is_symlink()
    mcfg = {"source": "huggingface", "id": "facebook/tiny-hubert", "revision": "main"}
    lock = fetch_weights("hubert", mcfg, cache)
    assert lock["commit"] == snapshot.name
    encoder = load_encoder("hubert", mcfg, cache)
    assert_same_model_as(encoder, tiny["a"], tmp_path)


def test_corrupt_cached_weights_are_detected(hub, tiny, tmp_path):
    cache = tmp_path / "cache"
    mcfg = {"source": "huggingface", "id": "org/tiny-hubert"}
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    lock = fetch_weights("h", mcfg, cache)
    blob = (cache / lock["files"]["model.safetensors"]["path"]).resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its lock"):
        load_encoder("h", mcfg, cache)


# ------------------------------------------------------------------------------------------------
# local folders


def test_local_folder_lock_records_checksums(tiny, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for f in tiny["a"].iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    mcfg = {"source": "huggingface", "id": str(folder)}
    lock = fetch_weights("local", mcfg, tmp_path / "cache")
    assert lock["commit"] is None and lock["revision"] is None
    assert lock["files"]["model.safetensors"]["sha256"] == sha256_file(folder / "model.safetensors")
    assert Path(lock["files"]["config.json"]["path"]).is_absolute()
    load_encoder("local", mcfg, tmp_path / "cache")
    (folder / "config.json").write_text((folder / "config.json").read_text().replace("}", ' ,"x": 1}', 1))
    with pytest.raises(ValueError, match="config.json does not match its lock"):
        load_encoder("local", mcfg, tmp_path / "cache")


# ------------------------------------------------------------------------------------------------
# AVES files by URL


def aves_entry(hub, tiny, weights_bytes=None):
    config, weights = tiny["aves"]
    return {
        "source": "aves",
        "config_url": hub.add_file("/ported_aves/aves-tiny.model_config.json", config.read_bytes()),
        "weights_url": hub.add_file("/ported_aves/aves-tiny.pt", weights_bytes or weights.read_bytes()),
    }


def test_aves_fetch_records_sha256_and_reuses_the_cache(hub, tiny, tmp_path):
    cache = tmp_path / "cache"
    mcfg = aves_entry(hub, tiny)
    lock = fetch_weights("aves_bio", mcfg, cache)
    assert lock["files"]["weights"]["sha256"] == sha256_file(tiny["aves"][1])
    assert lock["files"]["config"]["url"] == mcfg["config_url"]
    assert (cache / lock["files"]["weights"]["path"]).is_file()
    assert len(hub.downloads()) == 2
    fetch_weights("aves_bio", mcfg, cache)
    assert len(hub.downloads()) == 2  # nothing downloaded again
    hub.close()
    encoder = load_encoder("aves_bio", mcfg, cache)  # offline
    assert encoder.provenance["weights_sha256"] == lock["files"]["weights"]["sha256"]
    assert encoder.n_layers == 3


def test_aves_changed_upstream_file_is_an_error(hub, tiny, tmp_path):
    cache = tmp_path / "cache"
    mcfg = aves_entry(hub, tiny)
    lock = fetch_weights("aves_bio", mcfg, cache)
    (cache / lock["files"]["weights"]["path"]).unlink()  # lost from the cache ...
    aves_entry(hub, tiny, weights_bytes=b"other bytes")  # ... and changed upstream
    with pytest.raises(ValueError, match=r"expected \w+ \(recorded in the lock"):
        fetch_weights("aves_bio", mcfg, cache)
    assert not (cache / lock["files"]["weights"]["path"]).exists()


def test_aves_pinned_checksum_in_config(hub, tiny, tmp_path):
    mcfg = aves_entry(hub, tiny)
    good = {**mcfg, "weights_sha256": sha256_file(tiny["aves"][1])}
    fetch_weights("ok", good, tmp_path / "c1")
    with pytest.raises(ValueError, match="expected 0000.*pinned in the config"):
        fetch_weights("bad", {**mcfg, "weights_sha256": "0" * 64}, tmp_path / "c2")
    assert not lock_path("bad", tmp_path / "c2").exists()


def test_aves_local_paths_and_unreachable_urls(tiny, tmp_path):
    config, weights = tiny["aves"]
    lock = fetch_weights("a", {"source": "aves", "config_url": f"file://{config}", "weights_url": str(weights)}, tmp_path / "c")
    assert lock["files"]["weights"]["sha256"] == sha256_file(weights)
    url = closed_port_url()
    with pytest.raises(WeightsUnavailableError, match=r"(?s)cannot fetch config from http://127\.0\.0\.1.*gave up after 2 attempts"):
        fetch_weights("b", {"source": "aves", "config_url": f"{url}/c.json", "weights_url": f"{url}/w.pt"}, tmp_path / "c",
                      retries=1, backoff=0.0)
    with pytest.raises(WeightsUnavailableError, match=r"(?s)cannot fetch weights from .*nowhere\.pt.*no such file"):
        fetch_weights("c", {"source": "aves", "config_url": str(config), "weights_url": str(tmp_path / "nowhere.pt")}, tmp_path / "c")


def test_feature_baselines_lock_their_parameters(tmp_path):
    lock = fetch_weights("mfcc", {"source": "mfcc", "n_mfcc": 13, "label": "MFCC"}, tmp_path)
    assert lock["files"] == {} and lock["params"] == {"n_mfcc": 13}
    assert json.loads(lock_path("mfcc", tmp_path).read_text()) == lock


def test_embed_file_records_the_commit(hub, tiny, tmp_path):
    from bioprobe.embed import embed_dataset
    from bioprobe.store import AudioWriter, read_embeddings

    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    mcfg = {"source": "huggingface", "id": "org/tiny-hubert", "revision": "main"}
    fetch_weights("hubert", mcfg, tmp_path / "cache")
    audio = tmp_path / "audio16k.h5"
    with AudioWriter(audio, {"sample_rate": 16000}) as writer:
        writer.append("a", np.sin(np.arange(9000) / 7).astype(np.float32))
    embed_dataset(audio, tmp_path / "emb.h5", "hubert", mcfg, {}, tmp_path / "cache", progress=False)
    _, _, attrs = read_embeddings(tmp_path / "emb.h5")
    assert (attrs["id"], attrs["revision"], attrs["commit"]) == ("org/tiny-hubert", "main", COMMIT_A)


def test_aves_new_url_with_the_same_file_name_is_fetched_anew(hub, tiny, tmp_path):
    config, weights = tiny["aves"]
    other = save_tiny_aves_model(tmp_path / "other", seed=5)[1]
    config_url = hub.add_file("/c/model_config.json", config.read_bytes())
    v1 = {"source": "aves", "config_url": config_url, "weights_url": hub.add_file("/v1/aves.pt", weights.read_bytes())}
    v2 = {**v1, "weights_url": hub.add_file("/v2/aves.pt", other.read_bytes())}
    assert fetch_weights("aves", v1, tmp_path / "cache")["files"]["weights"]["sha256"] == sha256_file(weights)
    assert fetch_weights("aves", v2, tmp_path / "cache")["files"]["weights"]["sha256"] == sha256_file(other)


def test_aves_download_retries_a_failing_server_and_resumes_a_cut_transfer(server, tiny, tmp_path):
    config, weights = tiny["aves"]
    size = weights.stat().st_size
    cut = size - 10_000
    assert cut > CHUNK_BYTES  # at least one block arrives before the cut
    mcfg = {
        "source": "aves",
        "config_url": server.add_file("/aves/config.json", config, status=[503, 503]),  # the server is down twice
        "weights_url": server.add_file("/aves/model.pt", weights, drop_after=[cut]),  # the connection drops mid-file
    }

    lock = fetch_weights("aves", mcfg, tmp_path / "cache", backoff=0.0)

    assert [r.status for r in server.requests_for("/aves/config.json")] == [503, 503, 200]
    first, second = server.requests_for("/aves/model.pt")
    assert first.range is None and first.bytes_sent == cut
    resumed_at = int(second.range.removeprefix("bytes=").rstrip("-"))
    assert cut - CHUNK_BYTES <= resumed_at <= cut, "the second request continues where the cut transfer stopped"
    assert second.status == 206 and second.bytes_sent == size - resumed_at
    assert lock["files"]["weights"]["sha256"] == sha256_file(weights)
    assert (tmp_path / "cache" / lock["files"]["weights"]["path"]).read_bytes() == weights.read_bytes()
    assert not list((tmp_path / "cache").rglob("*.part"))
    encoder = load_encoder("aves", mcfg, tmp_path / "cache")  # offline, from the lock
    assert encoder.provenance["weights_sha256"] == sha256_file(weights)


def test_aves_partial_file_of_an_earlier_run_is_resumed_only_when_a_checksum_pins_it(server, tiny, tmp_path):
    config, weights = tiny["aves"]
    head = weights.read_bytes()[:50_000]
    urls = {"config_url": server.add_file("/c/config.json", config), "weights_url": server.add_file("/w/model.pt", weights)}
    pinned = {"source": "aves", **urls, "weights_sha256": sha256_file(weights)}
    part = tmp_path / "c1" / "aves" / "pinned" / "model.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(head)  # as left by a run killed mid-transfer
    assert fetch_weights("pinned", pinned, tmp_path / "c1")["files"]["weights"]["sha256"] == pinned["weights_sha256"]
    assert [(r.range, r.status) for r in server.requests_for("/w/model.pt")] == [("bytes=50000-", 206)]

    # Without a checksum, a .part may hold another URL's file of the same name: it is not trusted.
    stale = tmp_path / "c2" / "aves" / "unpinned" / "model.pt.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x" * 50_000)
    lock = fetch_weights("unpinned", {"source": "aves", **urls}, tmp_path / "c2")
    assert lock["files"]["weights"]["sha256"] == sha256_file(weights)
    assert [r.range for r in server.requests_for("/w/model.pt")][1:] == [None]


# ------------------------------------------------------------------------------------------------
# offline jobs (embed, probe)


def test_an_offline_job_with_a_stale_lock_fails_without_a_request(hub, tiny, tmp_path, monkeypatch):
    """A lock that does not match the model entry makes an offline job fail, naming fetch_weights;
    nothing is requested from the hub."""
    cache = tmp_path / "cache"
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_A)
    fetch_weights("h", {"source": "huggingface", "id": "org/tiny-hubert", "revision": "main"}, cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests = len(hub.log)
    load_encoder("h", {"source": "huggingface", "id": "org/tiny-hubert", "revision": "main"}, cache)  # matching: fine
    changed = {"source": "huggingface", "id": "org/tiny-hubert", "revision": COMMIT_B}
    with pytest.raises(WeightsUnavailableError, match=r"locks/h\.json does not match the model entry \(differs in: revision\)"
                                                      r".*offline.*Run fetch_weights first"):
        load_encoder("h", changed, cache)
    with pytest.raises(WeightsUnavailableError, match=r"there is no lock .*locks/other\.json.*Run fetch_weights"):
        load_encoder("other", changed, cache)
    assert len(hub.log) == requests
    # online (the fetch_weights rule), the same entry is fetched
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.add_repo("org/tiny-hubert", tiny["a"], COMMIT_B)
    assert fetch_weights("h", changed, cache)["commit"] == COMMIT_B


def test_embed_and_probe_scripts_go_offline_before_any_import(tmp_path):
    import ast
    import subprocess
    import sys

    scripts = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
    for name, offline in (("embed.py", True), ("probe.py", True), ("fuse.py", True), ("fetch_weights.py", False)):
        body = ast.parse((scripts / name).read_text()).body
        calls = [i for i, node in enumerate(body) if isinstance(node, ast.Expr) and "go_offline" in ast.unparse(node)]
        if not offline:
            assert not calls and "HF_HUB_OFFLINE" not in (scripts / name).read_text(), name
            continue
        assert calls, f"{name} does not call go_offline()"
        before = [ast.unparse(node) for node in body[: calls[0]] if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert before == ["import _bioprobe_path", "from bioprobe.smk import go_offline"], (name, before)
    # what go_offline does: huggingface_hub, imported afterwards, is offline; imported before, an error
    workflow = str(scripts.parent)
    code = ("import sys; sys.path.insert(0, %r); from bioprobe.smk import go_offline; go_offline(); "
            "import huggingface_hub.constants as c; print(c.HF_HUB_OFFLINE)") % workflow
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    code = ("import sys; sys.path.insert(0, %r); import huggingface_hub; from bioprobe.smk import go_offline; "
            "go_offline()") % workflow
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "imported before HF_HUB_OFFLINE was set" in out.stderr


def test_aves_mirrors_are_tried_when_the_primary_fails(server, tiny, tmp_path):
    config, weights = tiny["aves"]
    mcfg = {
        "source": "aves",
        "config_url": server.url + "/gone/aves-base-bio.model_config.json",  # 404: not served
        "weights_url": server.add_file("/primary/aves-base-bio.pt", weights, status=[503] * 6),  # down for good
        "config_mirrors": [server.url + "/gone-too/c.json", server.add_file("/mirror/c.json", config)],
        "weights_mirrors": [server.add_file("/mirror/w.pt", weights)],
    }
    lock = fetch_weights("aves_bio", mcfg, tmp_path / "cache", retries=1, backoff=0.0)
    assert [r.status for r in server.requests_for("/mirror/c.json")] == [200]
    assert len(server.requests_for("/primary/aves-base-bio.pt")) == 2  # one try and one retry, then the mirror
    assert lock["files"]["weights"]["sha256"] == sha256_file(weights)
    assert lock["files"]["weights"]["path"].endswith("aves-base-bio.pt")  # named after the primary URL
    assert lock["files"]["config"]["url"] == mcfg["config_url"]
    assert load_encoder("aves_bio", mcfg, tmp_path / "cache").n_layers == 3
    # every source failing: the error names the primary and how many mirrors were tried
    broken = {**mcfg, "config_mirrors": [server.url + "/gone-too/c.json"]}
    with pytest.raises(WeightsUnavailableError, match=r"from http://127\.0\.0\.1:\d+/gone/aves-base-bio.model_config.json or its 1 mirror"):
        fetch_weights("other", broken, tmp_path / "cache2", retries=0, backoff=0.0)
