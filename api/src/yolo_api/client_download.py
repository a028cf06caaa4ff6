"""``yoloctl download``: fetch a training's artifacts through the API and verify each one's sha256.

The API answers an artifact in object storage with a 307 to a presigned URL: that second request is made
without the API's bearer token (the signature is the credential; a token sent along would leak it to the
storage endpoint and make S3 refuse two kinds of authentication). Bytes go to ``<name>.part`` while their
sha256 is computed, and are renamed only when it matches what the trainer reported.

A folder that cannot be written (``-o`` naming a file, a folder without write permission, a full disk) is
one line and exit code 2, like any other command line that cannot be carried out; what can be checked
without creating anything is checked before the API is asked.
"""

import hashlib
import os
from pathlib import Path
from typing import Final, get_args

import httpx

from yolo_api.client_http import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    call,
    refused,
    unreachable,
)
from yolo_crd.status import ArtifactKind

#: What ``--kind`` may name: the contract's artifact kinds.
ARTIFACT_KINDS: Final = get_args(ArtifactKind)


def unwritable(folder: Path, exc: OSError) -> CliError:
    """The one line for an output folder that cannot be created or written."""
    return CliError(f"cannot write into {folder} ({exc.strerror or exc}): give -o a folder you can write to",
                    EXIT_USAGE)


def check_folder(folder: Path) -> None:
    """Refuse an output folder that surely cannot be used: an existing file, or a folder (or the nearest
    existing parent of one to create) without write permission."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"-o {folder}: is a file, not a folder: give -o a folder (created if missing)", EXIT_USAGE)
    existing = next((parent for parent in (folder, *folder.absolute().parents) if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CliError(f"-o {folder}: {existing} is a file, not a folder", EXIT_USAGE)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise CliError(f"-o {folder}: {existing} is not writable by this user", EXIT_USAGE)


def download_artifacts(http: httpx.Client, task_id: str, name: str | None, folder: Path, *,
                       kind: str | None = None) -> list[tuple[Path, str]]:
    """Download one artifact (``name``), those of one ``kind`` (``export``: best.onnx...), or all of them into
    ``folder``; return each path with its sha256."""
    listed = call(http, "GET", f"/tasks/{task_id}/artifacts").json()["data"]["artifacts"]
    chosen = [item for item in listed if (name is None or item["name"] == name)
              and (kind is None or item.get("kind") == kind)]
    if not chosen:
        have = ", ".join(f"{item['name']} ({item.get('kind') or 'no kind'})" if kind else item["name"]
                         for item in listed) or "none yet"
        wanted = " ".join(filter(None, (f"of kind {kind!r}" if kind else None, repr(name) if name else None)))
        raise CliError(f"task {task_id} has no artifact {wanted} (it has: {have})" if name or kind else
                       f"task {task_id} has no artifacts yet", EXIT_REFUSED)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(folder, exc) from None
    return [(_download(http, task_id, item, folder), item["sha256"]) for item in chosen]


def _download(http: httpx.Client, task_id: str, item: dict[str, str], folder: Path) -> Path:
    name = Path(item["name"]).name  # never a path from the server
    target, partial = folder / name, folder / f"{name}.part"
    digest = hashlib.sha256()
    where = str(http.base_url)
    try:
        with http.stream("GET", f"/tasks/{task_id}/artifacts/{item['name']}", follow_redirects=False) as response:
            if response.status_code == 200:  # the bytes themselves (a file the API reads)
                _write(response, partial, digest)
            elif response.status_code == 307:
                location = response.headers["location"]
            else:
                response.read()
                raise refused(response)
        if response.status_code == 307:
            where = location.split("?")[0]  # the signature stays out of messages
            with httpx.Client(timeout=httpx.Timeout(30.0, read=300.0)) as plain, \
                    plain.stream("GET", location) as stored:
                if stored.status_code != 200:
                    raise CliError(f"object storage answered HTTP {stored.status_code} for {name} ({where})",
                                   EXIT_REFUSED)
                _write(stored, partial, digest)
    except OSError as exc:  # the .part file: not creatable, or the disk is full
        partial.unlink(missing_ok=True)
        raise unwritable(folder, exc) from None
    except httpx.TransportError as exc:
        partial.unlink(missing_ok=True)
        if where == str(http.base_url):
            raise unreachable(where, exc) from None
        raise CliError(f"cannot reach object storage at {where} ({type(exc).__name__})", EXIT_UNREACHABLE) from None
    if digest.hexdigest() != item["sha256"]:
        partial.unlink(missing_ok=True)
        raise CliError(f"{name}: sha256 {digest.hexdigest()} does not match the {item['sha256']} the training "
                       "reported; the file was not kept", EXIT_FAILED)
    try:
        partial.replace(target)  # e.g. a folder of that name is in the way
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {target} ({exc.strerror or exc})", EXIT_USAGE) from None
    return target


def _write(response: httpx.Response, partial: Path, digest: "hashlib._Hash") -> None:
    with partial.open("wb") as handle:
        for chunk in response.iter_bytes():
            digest.update(chunk)
            handle.write(chunk)
