"""Classifier artifacts in BentoML's model store.

An artifact is a folder of canonical files (``spec.json``, ``examples.jsonl``,
``label_tokens.json``) plus ``manifest.json`` with the SHA-256 of each. The version is the first
16 hex digits of the content hash over those files, so packaging the same thing twice gives the
same version and changing one example gives a new one. ``lineage.json`` (creation time, source,
git commit) is outside the hash: it describes how the content was made, not what it does.
Loading re-hashes every file and refuses an artifact whose files, file list or version disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from ..backends import LabelToken
from ..core import SpecError, run_sync
from ._errors import ArtifactError, ArtifactIntegrityError, ArtifactNotFound
from ._spec import ClassifierSpec
from ._tag import ArtifactTag
from ._techniques import MODEL_FILES, TECHNIQUES, Technique, technique_for

__all__ = [
    "ClassifierArtifact",
    "Lineage",
    "attach",
    "attach_many",
    "delete_artifact",
    "export_artifact",
    "import_artifact",
    "list_artifacts",
    "stored_technique",
    "load_artifact",
    "measure_label_tokens",
    "package",
]

FORMAT_VERSION = 1
VERSION_LENGTH = 16
MANIFEST = "manifest.json"
LINEAGE = "lineage.json"
# The store writes its own model.yaml beside our files.
_STORE_FILES = {MANIFEST, LINEAGE, "model.yaml"}
_STORE_LABEL = "labelwise"


class Lineage(BaseModel):
    """How an artifact was made. Not part of the content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_at: str
    labelwise_version: str
    source: str | None = None
    git_commit: str | None = None


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(file_hashes: dict[str, str]) -> str:
    """One hash over the names and hashes of the content files."""
    return _sha256(_dumps(sorted(file_hashes.items())))


class ClassifierArtifact:
    """A validated, versioned classifier: its spec plus what packaging measured.

    ``attachments`` (e.g. ``eval_card.json``) describe the classifier without changing what it
    does: their hashes are checked on load, but they are not part of the version.
    """

    def __init__(
        self,
        *,
        spec: ClassifierSpec,
        label_tokens: dict[str, LabelToken] | None = None,
        lineage: Lineage | None = None,
        attachments: dict[str, bytes] | None = None,
        tag: ArtifactTag | None = None,
        model_files: dict[str, bytes] | None = None,
    ) -> None:
        self.spec = spec
        self.label_tokens = label_tokens
        # Binary content that the technique needs (head.skops, pool_embeddings.npy): in the version.
        self.model_files = dict(model_files or {})
        self.lineage = lineage
        self.attachments = attachments or {}
        self._tag = tag

    def content_files(self) -> dict[str, bytes]:
        """The canonical files whose hash is the version."""
        # Unset optional fields are left out, so adding one to the spec format keeps old versions.
        spec, side_files = technique_for(self.spec).split_spec(self.spec)
        files = {"spec.json": _dumps({"format": FORMAT_VERSION, "spec": spec}), **side_files}
        if self.label_tokens is not None:
            files["label_tokens.json"] = _dumps(
                {label: {"token_id": t.token_id, "piece": t.piece} for label, t in self.label_tokens.items()}
            )
        return files | self.model_files

    @property
    def content_hash(self) -> str:
        return content_hash({name: _sha256(data) for name, data in self.content_files().items()})

    @property
    def tag(self) -> ArtifactTag:
        return self._tag or ArtifactTag(self.spec.name, self.content_hash[:VERSION_LENGTH])

    @classmethod
    def from_path(cls, path: str | Path, *, tag: ArtifactTag | None = None) -> ClassifierArtifact:
        """Load and verify an artifact folder; raise ``ArtifactIntegrityError`` if tampered."""
        path = Path(path)
        where = f"artifact {tag or path}"
        try:
            manifest = json.loads((path / MANIFEST).read_bytes())
            expected: dict[str, str] = dict(manifest["files"])
            attached: dict[str, str] = dict(manifest.get("attachments", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactIntegrityError(f"{where} has no readable {MANIFEST}: {exc}") from None
        # A ".partial" file is a write in progress (renamed into place when done); never loaded.
        present = {p.name for p in path.iterdir() if not p.name.endswith(".partial")} - _STORE_FILES
        listed = set(expected) | set(attached)
        if present != listed:
            raise ArtifactIntegrityError(
                f"{where} holds files {sorted(present)} but its manifest lists {sorted(listed)}; "
                "refusing to load it"
            )
        files = {name: (path / name).read_bytes() for name in expected}
        attachments = {name: (path / name).read_bytes() for name in attached}
        changed = sorted(
            name
            for name, data in (files | attachments).items()
            if _sha256(data) != (expected | attached)[name]
        )
        if changed:
            raise ArtifactIntegrityError(
                f"{where} was modified after packaging: {', '.join(changed)} no longer match "
                "their hashes; re-package it from its spec"
            )
        digest = content_hash(expected)
        if manifest.get("content_hash") != digest or (
            tag is not None and tag.version != digest[:VERSION_LENGTH]
        ):
            raise ArtifactIntegrityError(
                f"{where}: its version does not match the hash of its content; refusing to load it"
            )
        artifact = cls._from_files(files, where=where)
        lineage = None
        if (path / LINEAGE).exists():
            lineage = Lineage.model_validate_json((path / LINEAGE).read_bytes())
        return cls(
            spec=artifact.spec,
            label_tokens=artifact.label_tokens,
            lineage=lineage,
            attachments=attachments,
            tag=tag,
            model_files=artifact.model_files,
        )

    @classmethod
    def _from_files(cls, files: dict[str, bytes], *, where: str) -> ClassifierArtifact:
        document = json.loads(files["spec.json"])
        if document.get("format") != FORMAT_VERSION:
            raise ArtifactError(
                f"{where} has format {document.get('format')}; this labelwise reads {FORMAT_VERSION}"
            )
        spec_data = document["spec"]
        kind = spec_data.get("technique", {}).get("kind")
        spec_data = TECHNIQUES.get(kind, Technique).join_spec(spec_data, files)
        spec = ClassifierSpec.from_dict(spec_data, source=where)
        label_tokens = None
        if "label_tokens.json" in files:
            raw = json.loads(files["label_tokens.json"])
            label_tokens = {label: LabelToken(**token) for label, token in raw.items()}
        model_files = {name: files[name] for name in MODEL_FILES if name in files}
        return cls(spec=spec, label_tokens=label_tokens, model_files=model_files)

    def write(self, path: Path) -> None:
        """Write the content files, the attachments, the manifest and the lineage into ``path``."""
        for name, data in (self.content_files() | self.attachments).items():
            (path / name).write_bytes(data)
        self.write_manifest(path)
        if self.lineage is not None:
            (path / LINEAGE).write_bytes(self.lineage.model_dump_json(indent=2).encode())

    def write_manifest(self, path: Path) -> None:
        hashes = {name: _sha256(data) for name, data in self.content_files().items()}
        manifest = {
            "format": FORMAT_VERSION,
            "files": hashes,
            "content_hash": content_hash(hashes),
            "attachments": {name: _sha256(data) for name, data in self.attachments.items()},
        }
        # Written last and renamed into place: a reader sees the old manifest or the new one.
        partial = path / f".{MANIFEST}.partial"
        partial.write_bytes(_dumps(manifest))
        partial.replace(path / MANIFEST)

    def __repr__(self) -> str:
        return f"ClassifierArtifact(tag={str(self.tag)!r}, technique={self.spec.technique.kind!r})"


_ATTACHMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*\.json$")


def attach(tag: str | ArtifactTag, name: str, data: bytes) -> ClassifierArtifact:
    """Add or replace an attachment (e.g. ``eval_card.json``) of a stored artifact.

    The version does not change: attachments describe the classifier, they do not change it.
    """
    return attach_many(tag, {name: data})


def attach_many(tag: str | ArtifactTag, attachments: Mapping[str, bytes]) -> ClassifierArtifact:
    """``attach`` for several files, with one load of the artifact and one manifest write."""
    for name in attachments:
        if not _ATTACHMENT_NAME.match(name) or name in _STORE_FILES:
            raise ArtifactError(f"attachment name {name!r} must look like 'eval_card.json'")
    artifact = load_artifact(tag)
    clashing = sorted(set(attachments) & set(artifact.content_files()))
    if clashing:
        raise ArtifactError(f"{', '.join(clashing)}: part of the artifact's content, not attachments")
    path = Path(_store_model(artifact.tag).path)
    for name, data in attachments.items():
        artifact.attachments[name] = data
        partial = path / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(path / name)
    artifact.write_manifest(path)
    return load_artifact(artifact.tag)


def _git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _labelwise_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labelwise")
    except PackageNotFoundError:
        return "unknown"


def measure_label_tokens(spec: ClassifierSpec) -> dict[str, LabelToken] | None:
    """Each label's first token for logprobs scoring (``None`` for other modes), checked distinct."""
    return run_sync(technique_for(spec).measure_label_tokens(spec))


def package(
    spec_or_path: ClassifierSpec | str | Path, *, model_files: dict[str, bytes] | None = None
) -> tuple[ClassifierArtifact, bool]:
    """Validate a spec and store it as an artifact.

    ``model_files`` carries what training produced (an embedding classifier's ``head.skops``).
    Returns the artifact and whether it was created (``False`` when the same content was
    already in the store, which then holds no second copy).
    """
    import bentoml

    if isinstance(spec_or_path, ClassifierSpec):
        spec, source = spec_or_path, None
    else:
        source = Path(spec_or_path)
        spec = ClassifierSpec.from_yaml(source)
    files = technique_for(spec).model_files_for(spec, model_files or {})
    label_tokens = measure_label_tokens(spec)
    artifact = ClassifierArtifact(
        spec=spec,
        model_files=files,
        label_tokens=label_tokens,
        lineage=Lineage(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            labelwise_version=_labelwise_version(),
            source=str(source) if source else None,
            git_commit=_git_commit(source.parent) if source else None,
        ),
    )
    tag = artifact.tag
    try:
        existing = load_artifact(tag)
    except ArtifactNotFound:
        pass
    else:
        return existing, False
    with bentoml.models.create(
        str(tag),
        labels={
            _STORE_LABEL: "classifier",
            "technique": spec.technique.kind,
            "scoring": spec.scoring,
            "provider": spec.backend.provider,
        },
        metadata={"content_hash": artifact.content_hash, "model": spec.model_name},
    ) as model:
        artifact.write(Path(model.path))
    return load_artifact(tag), True


def _store_model(tag: ArtifactTag) -> Any:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        model = bentoml.models.get(str(tag))
    except NotFound:
        raise ArtifactNotFound(
            f"no artifact {tag} in the model store; `labelwise models list` shows what is there"
        ) from None
    if model.info.labels.get(_STORE_LABEL) != "classifier":
        raise ArtifactNotFound(f"{tag} is in the model store but is not a labelwise classifier")
    return model


def load_artifact(tag: str | ArtifactTag) -> ClassifierArtifact:
    """Load and verify an artifact; ``name`` or ``name:latest`` resolves to the newest version."""
    tag = ArtifactTag.from_str(tag) if isinstance(tag, str) else tag
    model = _store_model(tag)
    resolved = ArtifactTag(model.tag.name, model.tag.version)
    return ClassifierArtifact.from_path(model.path, tag=resolved)


def stored_technique(tag: str | ArtifactTag) -> str:
    """The technique an artifact was stored with, from the store's labels (no file is read)."""
    tag = ArtifactTag.from_str(tag) if isinstance(tag, str) else tag
    return str(_store_model(tag).info.labels["technique"])


def list_artifacts(name: str | None = None) -> Iterator[tuple[ArtifactTag, datetime]]:
    """Tags and creation times of the stored classifiers, newest first."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        stored = bentoml.models.list(name)
    except NotFound:  # no model of that name at all
        return
    models = [m for m in stored if m.info.labels.get(_STORE_LABEL) == "classifier"]
    models.sort(key=lambda m: m.info.creation_time, reverse=True)
    for model in models:
        yield ArtifactTag(model.tag.name, model.tag.version), model.info.creation_time


def delete_artifact(tag: str | ArtifactTag) -> ArtifactTag:
    import bentoml

    tag = ArtifactTag.from_str(tag) if isinstance(tag, str) else tag
    model = _store_model(tag)
    resolved = ArtifactTag(model.tag.name, model.tag.version)
    bentoml.models.delete(str(resolved))
    return resolved


def export_artifact(tag: str | ArtifactTag, destination: str | Path) -> Path:
    """Write one ``.bentomodel`` file: ``destination`` if it ends in ``.bentomodel``, else into that
    folder (created if missing) as ``NAME-VERSION.bentomodel``."""
    import bentoml

    artifact = load_artifact(tag)  # refuse to export a tampered artifact
    # BentoML resolves a relative path against "/", so it only ever sees absolute ones.
    destination = Path(destination).expanduser().resolve()
    if destination.suffix != ".bentomodel":  # a folder, created if need be
        if destination.exists() and not destination.is_dir():
            raise ArtifactError(
                f"cannot export to {destination}: it is a file; name a .bentomodel file or a folder"
            )
        destination.mkdir(parents=True, exist_ok=True)
        destination = destination / f"{artifact.tag.name}-{artifact.tag.version}.bentomodel"
    elif not destination.parent.is_dir():
        raise ArtifactError(f"cannot export to {destination}: folder {destination.parent} does not exist")
    return Path(bentoml.models.export_model(str(artifact.tag), str(destination)))


def _escapes(member: Any) -> bool:
    parts = PurePosixPath(member.name).parts
    return member.name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir())


def _archived_tag(path: Path) -> ArtifactTag:
    """The tag an archive holds, after refusing members that could land outside the store
    (absolute or ``..`` paths, links)."""
    import tarfile

    try:
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            for member in members:
                if _escapes(member):
                    raise ArtifactIntegrityError(
                        f"{path}: member {member.name!r} is a link or points outside the archive; "
                        "not imported"
                    )
            info = next((m for m in members if PurePosixPath(m.name).parts[-1:] == ("model.yaml",)), None)
            document = archive.extractfile(info) if info is not None else None
            model = yaml.safe_load(document.read()) if document is not None else None
    except (tarfile.TarError, OSError, yaml.YAMLError) as exc:
        raise ArtifactError(f"{path} is not a .bentomodel archive ({exc})") from None
    if not isinstance(model, dict) or not model.get("name") or not model.get("version"):
        raise ArtifactError(f"{path} is not a .bentomodel archive (no model.yaml with a name and version)")
    return ArtifactTag(str(model["name"]), str(model["version"]))


def import_artifact(path: str | Path) -> tuple[ClassifierArtifact, bool]:
    """Import a ``.bentomodel`` file; an artifact that fails verification is removed again.

    Returns the artifact and whether it is new: a version already in the store is left as it is
    (versions are content hashes, so it holds the same content), as packaging the same spec twice.
    """
    import bentoml
    from bentoml.exceptions import BentoMLException

    path = Path(path).expanduser().resolve()  # BentoML resolves relative paths against "/"
    if not path.is_file():
        raise ArtifactError(f"{path} is not a file")
    tag = _archived_tag(path)
    if tag.version in {t.version for t, _ in list_artifacts(tag.name)}:
        return load_artifact(tag), False
    try:
        bentoml.models.import_model(str(path))
    except BentoMLException as exc:
        raise ArtifactError(f"cannot import {path}: {exc}") from None
    try:
        return load_artifact(tag), True
    except (ArtifactError, SpecError):
        bentoml.models.delete(str(tag))
        raise
