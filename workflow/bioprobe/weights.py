"""Fetch model weights into the model cache and pin them with a lock file.

Run on a machine with internet access (the workflow's local ``fetch_weights`` rule) before any
GPU job; the GPU jobs then load offline from the cache through the lock
(``HF_HUB_OFFLINE=1`` is safe).

Layout under ``cache_dir`` (``model_cache`` in config.yaml)::

    huggingface/models--org--name/snapshots/<commit>/...   Hugging Face hub cache
    aves/<model>/<file>                                     AVES config JSON + state dict
    locks/<model>.json                                      what was fetched, pinned

The AVES files are fetched through :func:`bioprobe.download.fetch.fetch_file`, the same path as
the datasets' (retries with backoff, resume of a cut transfer, progress). Model entries are
checked and resolved by :mod:`bioprobe.models`; this module does not import the encoders.

A lock records the model id and requested revision, the commit that revision resolved to, and
the sha256 and size of every file. While it exists, the same commit and files are used again,
even if the branch moved on; delete the lock to update. A file whose sha256 differs from the
lock (or from ``config_sha256`` / ``weights_sha256`` pinned in the config) is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlparse

from .download.fetch import ChecksumError, DownloadError, RemoteFile, fetch_file, part_path
from .fileio import write_json
from .models import DESCRIPTIVE_KEYS, check_source, describe_local_path, is_local_path, resolve_architecture

log = logging.getLogger(__name__)

LOCK_VERSION = 1
HF_SUBDIR = "huggingface"
AVES_SUBDIR = "aves"


class WeightsUnavailableError(RuntimeError):
    """Weights are neither in the cache nor reachable."""


def lock_path(name: str, cache_dir) -> Path:
    """Path of model ``name``'s lock file: ``cache_dir/locks/{name}.json``."""
    return Path(cache_dir) / "locks" / f"{name}.json"


def pinned_path(name: str, cache_dir) -> Path:
    """A copy of the lock that Snakemake does not own: ``cache_dir/locks/.{name}.pinned.json``.

    Snakemake deletes a job's outputs before re-running it, the lock among them; the copy keeps
    the pinned commit and checksums across such re-runs (a params change, ``-R``, ``--forceall``).
    """
    return Path(cache_dir) / "locks" / f".{name}.pinned.json"


def read_lock(name: str, cache_dir, path: Path | None = None) -> dict | None:
    """The lock of model ``name``, or None if it was never fetched."""
    path = lock_path(name, cache_dir) if path is None else path
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt lock file ({err}); delete it and fetch again") from err


def sha256_file(path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: Path, cache_dir: Path) -> dict:
    """``{"path", "sha256", "size"}`` of a file; the path is relative to the cache when inside it."""
    path = Path(path)
    return {"path": _relative(path, cache_dir), "sha256": sha256_file(path), "size": path.stat().st_size}


def locked_file(lock: dict, key: str, cache_dir) -> Path:
    """Absolute path of file ``key`` of a lock, checked against its recorded size and sha256."""
    rec = lock["files"][key]
    path = Path(rec["path"])
    if not path.is_absolute():
        path = Path(cache_dir) / path
    where = f"model {lock.get('name')!r}: {path}"
    if not path.exists():
        raise WeightsUnavailableError(
            f"{where} is missing from the model cache; run fetch_weights (the workflow's fetch_weights rule) "
            f"on a machine with internet access, or delete {lock_path(lock.get('name', '?'), cache_dir)}"
        )
    if path.stat().st_size != rec["size"] or sha256_file(path) != rec["sha256"]:
        lock = lock_path(lock.get("name", "?"), cache_dir)
        # an absolute path is a local model folder's file: fetch_weights re-reads the folder once the lock is gone
        advice = (
            "it is corrupt: delete it and fetch again"
            if not Path(rec["path"]).is_absolute()
            else f"the file changed since {lock} was written: if that is intended (new weights saved in the folder), "
                 f"run again with --forcerun {lock} (or delete it): the new checksums are recorded and the model's "
                 "embeddings recomputed"
        )
        raise ValueError(f"{where} does not match its lock (expected sha256 {rec['sha256']}, size {rec['size']}); {advice}")
    return path


def verify_lock(lock: dict, cache_dir) -> dict[str, Path]:
    """Check every file of a lock; return ``{key: absolute path}``."""
    return {key: locked_file(lock, key, cache_dir) for key in lock.get("files", {})}


# ----------------------------------------------------------------------------------------------
# Hugging Face


def hf_endpoint() -> str | None:
    """The hub endpoint, read at call time so ``HF_ENDPOINT`` set after import still applies."""
    return os.environ.get("HF_ENDPOINT") or None


def choose_hf_files(filenames, name: str, ref: str, config_only: bool = False) -> list[str]:
    """The files of a model repo or folder needed to load it with ``AutoModel``.

    Safetensors are preferred over ``pytorch_model.bin``; TensorFlow/Flax weights, tokenizers
    and training states are skipped.
    """
    top = {f for f in filenames if "/" not in f}
    if "config.json" not in top:
        raise ValueError(f"model {name!r}: {ref} has no config.json; is it a transformers model?")
    chosen = ["config.json"] + [f for f in ("preprocessor_config.json",) if f in top]
    if config_only:
        return chosen
    safetensors = sorted(f for f in top if f.endswith(".safetensors"))
    bins = sorted(f for f in top if re.fullmatch(r"pytorch_model(-\d+-of-\d+)?\.bin", f))
    weights = safetensors or bins
    if not weights:
        raise ValueError(f"model {name!r}: {ref} has no *.safetensors or pytorch_model*.bin weights")
    index = "model.safetensors.index.json" if safetensors else "pytorch_model.bin.index.json"
    return chosen + weights + ([index] if index in top else [])


def _hf_error(name: str, repo: str, revision: str, cache_dir: Path, err: Exception) -> WeightsUnavailableError:
    # "models/my_hubert" is a hub id (org/name) unless that folder exists: say so, in case a folder was meant
    folder = f" If {repo!r} is meant as a local folder: there is no folder {describe_local_path(repo)}." if "/" in repo else ""
    return WeightsUnavailableError(
        f"model {name!r}: cannot fetch {repo}@{revision} from {hf_endpoint() or 'https://huggingface.co'} "
        f"({type(err).__name__}: {err}), and it is not in the cache {cache_dir / HF_SUBDIR}. Run the "
        f"fetch_weights rule on a machine with internet access, or copy a filled model cache there.{folder}"
    )


def _lock_matches(prior: dict | None, base: dict) -> bool:
    return bool(prior) and all(prior.get(k) == v for k, v in base.items())


def _reuse_if_verified(prior: dict, cache_dir: Path, from_pinned: bool = False) -> dict | None:
    try:
        verify_lock(prior, cache_dir)
    except WeightsUnavailableError:
        return None
    except ValueError:
        # A local folder has no commit to keep: when the rule re-runs (its lock gone, only the pinned
        # copy left) after new weights were saved there, its files are checksummed anew.
        if from_pinned and _is_local_folder(prior):
            log.warning("model %r: the files of its local folder changed since %s was written; recording "
                        "their new checksums", prior.get("name"), pinned_path(prior.get("name", "?"), cache_dir))
            return None
        raise
    return prior


def _is_local_folder(ident: Mapping) -> bool:
    """True for a lock (or identity) of a local transformers folder, or a random_init of one."""
    if ident.get("source") == "random_init":
        return _is_local_folder(ident.get("architecture") or {})
    return ident.get("source") == "huggingface" and ident.get("revision", "main") is None


def _relative(path: Path, cache_dir: Path) -> str:
    """``path`` relative to the cache when inside it (portable across machines), else absolute.

    Symlinks are kept (a hub snapshot's files link to blobs; the snapshot name is the readable one).
    """
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(cache_dir))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def cached_hf_snapshot(repo: str, revision: str, hf_cache: Path) -> Path | None:
    """The snapshot folder of ``repo@revision`` in a hub cache (``refs/<revision>`` or a commit), if any."""
    storage = hf_cache / f"models--{repo.replace('/', '--')}"
    commit = revision
    ref = storage / "refs" / revision
    if ref.is_file():
        commit = ref.read_text().strip()
    snapshot = storage / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def fetch_hf_repo(name: str, repo: str, revision: str, cache_dir: Path, prior: dict | None, config_only: bool) -> dict:
    """Download the needed files of a hub repo at a pinned commit; return the lock fields."""
    from huggingface_hub import HfApi, snapshot_download

    endpoint = hf_endpoint()
    hf_cache = cache_dir / HF_SUBDIR
    if prior and prior.get("commit"):
        commit = prior["commit"]  # pinned by an earlier fetch
        files = sorted(prior["files"])
    else:
        try:
            info = HfApi(endpoint=endpoint).model_info(repo, revision=revision)
        except Exception as err:  # offline, network, auth, not found
            cached = cached_hf_snapshot(repo, revision, hf_cache)
            if cached is None:
                raise _hf_error(name, repo, revision, cache_dir, err) from err
            # A cache filled elsewhere (copied to the cluster): pin what it holds for this revision.
            listing = [p.relative_to(cached).as_posix() for p in cached.rglob("*") if p.is_file()]
            commit = cached.name
            files = choose_hf_files(listing, name, f"{repo}@{revision} (cached)", config_only)
            return {"commit": commit, "snapshot": _relative(cached, cache_dir), "files": {f: file_record(cached / f, cache_dir) for f in files}}
        commit = info.sha
        files = choose_hf_files([s.rfilename for s in info.siblings or []], name, f"{repo}@{revision}", config_only)
    try:
        snapshot = Path(
            snapshot_download(
                repo, revision=commit, cache_dir=hf_cache, allow_patterns=files, endpoint=endpoint
            )
        )
    except Exception as err:
        raise _hf_error(name, repo, revision, cache_dir, err) from err
    records = {f: file_record(snapshot / f, cache_dir) for f in files}
    if prior:
        for f, rec in records.items():
            if prior["files"].get(f, {}).get("sha256") != rec["sha256"]:
                raise ValueError(f"model {name!r}: {f} of {repo}@{commit} differs from the lock {lock_path(name, cache_dir)}")
    return {"commit": commit, "snapshot": _relative(snapshot, cache_dir), "files": records}


def fetch_hf_folder(name: str, folder: str, cache_dir: Path, config_only: bool) -> dict:
    """Checksum a local transformers model folder (it is used in place, not copied)."""
    root = Path(os.path.expanduser(folder.removeprefix("file://"))).resolve()
    if root.is_file():
        raise NotADirectoryError(f"model {name!r}: {describe_local_path(folder)} is a file; give the folder "
                                 "save_pretrained wrote (the one holding config.json)")
    if not root.is_dir():
        raise FileNotFoundError(f"model {name!r}: local model folder {describe_local_path(folder)} does not exist")
    listing = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    files = choose_hf_files(listing, name, str(root), config_only)
    return {"commit": None, "snapshot": str(root), "files": {f: file_record(root / f, cache_dir) for f in files}}


# ----------------------------------------------------------------------------------------------
# AVES (plain files by URL or local path)


def url_filename(url: str) -> str:
    """The file name a URL (or local path) ends in: what an AVES file is called in the cache."""
    name = Path(unquote(urlparse(url).path)).name
    if not name:
        raise ValueError(f"cannot name a file after URL {url!r}")
    return name


def source_url(ref: str) -> str:
    """A URL :func:`~bioprobe.download.fetch.fetch_file` can read: local paths become ``file://`` URLs."""
    ref = str(ref)
    if is_local_path(ref) and not ref.startswith("file://"):
        return Path(os.path.expanduser(ref)).resolve().as_uri()
    return ref


def fetch_aves_files(name: str, mcfg: Mapping, cache_dir: Path, prior: dict | None, config_only: bool,
                     retries: int = 5, backoff: float = 2.0, timeout: float = 60.0) -> dict:
    """Fetch the AVES config JSON (and state dict) into ``cache_dir/aves/<name>/``.

    Each file goes through :func:`bioprobe.download.fetch.fetch_file`: transient failures are
    retried ``retries`` times with exponential backoff (``backoff`` seconds first), and a cut
    transfer resumes from ``<file>.part``. The URLs of ``config_mirrors`` / ``weights_mirrors`` are
    tried in order when the primary fails; the file keeps the primary URL's name and record. With a checksum to trust (``*_sha256`` in the config
    or the lock's record) the file is verified before it lands in the cache, and a ``.part``
    left by an earlier run is resumed; without one, such a ``.part`` may hold bytes of another
    URL's file of the same name and is discarded.
    """
    wanted = {"config": mcfg["config_url"]}
    if not config_only:
        wanted["weights"] = mcfg["weights_url"]
    records = {}
    for key, url in wanted.items():
        dest = cache_dir / AVES_SUBDIR / name / url_filename(url)
        pinned = mcfg.get(f"{key}_sha256") or (prior or {}).get("files", {}).get(key, {}).get("sha256")
        origin = ("pinned in the config" if mcfg.get(f"{key}_sha256")
                  else f"recorded in the lock {lock_path(name, cache_dir)}")
        # Without a checksum to trust, a file already at dest may come from another URL: fetch anew.
        if not dest.exists() or not pinned or sha256_file(dest) != pinned:
            dest.unlink(missing_ok=True)  # never leave a file that fails its checksum in the cache
            if not pinned:
                part_path(dest).unlink(missing_ok=True)
            mirrors = [source_url(m) for m in mcfg.get(f"{key}_mirrors") or []]
            remote = RemoteFile(name=dest.name, urls=[source_url(url), *mirrors])
            try:
                fetch_file(remote, dest, expected={"sha256": pinned} if pinned else {},
                           retries=retries, backoff=backoff, timeout=timeout)
            except ChecksumError as err:
                raise ValueError(
                    f"model {name!r}: {url} does not match its checksum: expected {pinned} ({origin}); {err}"
                ) from err
            except DownloadError as err:
                sources = url + (f" or its {len(mirrors)} mirror(s)" if mirrors else "")
                raise WeightsUnavailableError(
                    f"model {name!r}: cannot fetch {key} from {sources} ({err}), and it is not in the cache {dest}"
                ) from err
        records[key] = {**file_record(dest, cache_dir), "url": url}
    return {"files": records}


# ----------------------------------------------------------------------------------------------
# entry point


def _lock_identity(name: str, mcfg: Mapping, models: Mapping | None) -> dict:
    """The fields that decide what must be fetched; a lock with other values is stale."""
    source = check_source(name, mcfg)
    ident = {"lock_version": LOCK_VERSION, "name": name, "source": source}
    if source == "random_init":
        base = resolve_architecture(name, mcfg, models)
        ident["architecture"] = _lock_identity(f"{name}", base, models)
        ident["architecture"].pop("name")
        ident["seed"] = int(mcfg.get("seed", 0))
    elif source == "huggingface":
        ident["id"] = mcfg["id"]
        ident["revision"] = None if is_local_path(mcfg["id"]) else str(mcfg.get("revision") or "main")
    elif source == "aves":
        ident["config_url"] = mcfg["config_url"]
        ident["weights_url"] = mcfg["weights_url"]
    else:  # logmel / mfcc: nothing to download, the parameters are the identity
        ident["params"] = {k: v for k, v in sorted(mcfg.items()) if k not in (*DESCRIPTIVE_KEYS, "source")}
    return ident


def _fetch_for(name: str, arch: dict, cache_dir: Path, prior: dict | None, config_only: bool, **http) -> dict:
    """Fetch files of a huggingface / aves identity; return ``commit``/``snapshot``/``files`` fields."""
    if arch["source"] == "huggingface":
        if is_local_path(arch["id"]):
            return fetch_hf_folder(name, arch["id"], cache_dir, config_only)
        return fetch_hf_repo(name, arch["id"], arch["revision"], cache_dir, prior, config_only)
    if arch["source"] == "aves":
        return fetch_aves_files(name, arch, cache_dir, prior, config_only, **http)
    return {"files": {}}


def fetch_weights(name: str, mcfg: Mapping, cache_dir, models: Mapping | None = None,
                  retries: int = 5, backoff: float = 2.0, timeout: float = 60.0) -> dict:
    """Fetch what model ``name`` needs into ``cache_dir`` and write ``cache_dir/locks/{name}.json``.

    Returns the lock's content. Idempotent: when the lock exists and its files are present and
    intact, nothing is downloaded and the lock is not rewritten (its mtime stays). For
    ``random_init`` only the architecture's config is fetched; for ``logmel``/``mfcc`` the lock
    only records the parameters. ``models`` (the config's ``models:`` section) resolves
    ``random_init``'s ``of: <model name>``. ``retries``, ``backoff`` (seconds before the first
    retry, doubled on each) and ``timeout`` apply to files fetched by URL (AVES), see
    :func:`fetch_aves_files`.
    """
    cache_dir = Path(cache_dir)
    http = {"retries": retries, "backoff": backoff, "timeout": timeout}
    ident = _lock_identity(name, mcfg, models)
    prior = read_lock(name, cache_dir)
    from_pinned = prior is None
    if from_pinned:  # the lock was deleted (by Snakemake before a re-run): its pinned copy holds
        prior = read_lock(name, cache_dir, pinned_path(name, cache_dir))
    if prior is not None and not _lock_matches(prior, ident):
        prior = None  # the config changed: fetch anew
    if prior is not None and (reused := _reuse_if_verified(prior, cache_dir, from_pinned)) is not None:
        if from_pinned:
            write_json(lock_path(name, cache_dir), reused)
        if not pinned_path(name, cache_dir).exists():
            write_json(pinned_path(name, cache_dir), reused)
        return reused
    if ident["source"] == "random_init":
        base = resolve_architecture(name, mcfg, models)
        fields = _fetch_for(name, {**base, **ident["architecture"]}, cache_dir, prior, config_only=True, **http)
    else:
        fields = _fetch_for(name, {**dict(mcfg), **ident}, cache_dir, prior, config_only=False, **http)
    lock = {**ident, **fields}
    write_json(pinned_path(name, cache_dir), lock)
    write_json(lock_path(name, cache_dir), lock)
    return lock


def is_offline() -> bool:
    """True when this process may not reach the network (``HF_HUB_OFFLINE`` set, as in embed jobs)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def ensure_lock(name: str, mcfg: Mapping, cache_dir, models: Mapping | None = None) -> dict:
    """The lock of ``name``: the existing one when it matches the config, else fetch (needs network).

    Offline (:func:`is_offline`, e.g. in an embedding job) a missing or non-matching lock is an
    error saying to run ``fetch_weights``: a GPU job never downloads.
    """
    ident = _lock_identity(name, mcfg, models)
    prior = read_lock(name, cache_dir)
    if prior is not None and _lock_matches(prior, ident):
        return prior  # the loaders verify each file they read (locked_file / verify_lock)
    if is_offline():
        path = lock_path(name, Path(cache_dir))
        if prior is None:
            what = f"there is no lock {path}"
        else:
            differ = sorted(k for k, v in ident.items() if prior.get(k) != v)
            what = f"the lock {path} does not match the model entry (differs in: {', '.join(differ)})"
        raise WeightsUnavailableError(
            f"model {name!r}: {what}, and this job is offline (HF_HUB_OFFLINE=1): it never downloads. "
            "Run fetch_weights first, on a machine with internet access: snakemake --until fetch_weights")
    return fetch_weights(name, mcfg, cache_dir, models)
