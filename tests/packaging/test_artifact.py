from __future__ import annotations

import json
from pathlib import Path

import bentoml
import pytest

from labelwise.packaging import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFound,
    ArtifactTag,
    ClassifierArtifact,
    ClassifierSpec,
    attach_many,
    delete_artifact,
    export_artifact,
    import_artifact,
    list_artifacts,
    load_artifact,
    package,
)
from tests.conftest import EXAMPLES, spec_dict


def _spec(name: str, **overrides: object) -> ClassifierSpec:
    return ClassifierSpec.from_dict(spec_dict(name=name, **overrides))


def _store_path(tag: ArtifactTag) -> Path:
    return Path(bentoml.models.get(str(tag)).path)


def test_same_spec_same_version_and_one_copy() -> None:
    first, created = package(_spec("hash-stable"))
    again, created_again = package(_spec("hash-stable"))
    assert created and not created_again
    assert first.tag == again.tag
    assert len(first.tag.version or "") == 16
    assert [tag for tag, _ in list_artifacts("hash-stable")] == [first.tag]


def test_version_is_stable_across_processes() -> None:
    # Pinned: a change here means the canonical form changed and every stored version with it.
    artifact = ClassifierArtifact(spec=_spec("pinned"))
    assert artifact.content_hash == ClassifierArtifact(spec=_spec("pinned")).content_hash
    assert artifact.tag.version == artifact.content_hash[:16]


def test_changing_one_example_changes_the_version(tmp_path: Path) -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / "yelp-few-shot.yaml")
    data = spec.model_dump(mode="json")
    data["technique"]["examples"][0]["text"] += " Really."
    changed = ClassifierSpec.from_dict(data)
    assert ClassifierArtifact(spec=spec).tag != ClassifierArtifact(spec=changed).tag
    reordered = spec.model_dump(mode="json")
    reordered["technique"]["examples"].reverse()
    assert (
        ClassifierArtifact(spec=ClassifierSpec.from_dict(reordered)).tag != ClassifierArtifact(spec=spec).tag
    )


def test_lineage_is_recorded_but_not_hashed() -> None:
    artifact, _ = package(EXAMPLES / "yelp-zero-shot.yaml")
    assert artifact.lineage is not None
    assert artifact.lineage.source and artifact.lineage.source.endswith("yelp-zero-shot.yaml")
    assert artifact.lineage.labelwise_version
    loaded = load_artifact("yelp-zero-shot")
    assert loaded.tag == artifact.tag and loaded.spec == artifact.spec


def test_latest_resolves_to_a_pinned_version() -> None:
    first, _ = package(_spec("resolving"))
    loaded = load_artifact("resolving:latest")
    assert loaded.tag == first.tag and not loaded.tag.is_latest


def test_export_import_round_trip(tmp_path: Path) -> None:
    artifact, _ = package(_spec("round-trip"))
    exported = export_artifact(artifact.tag, tmp_path)
    assert exported.suffix == ".bentomodel" and exported.is_file()
    delete_artifact(artifact.tag)
    with pytest.raises(ArtifactNotFound):
        load_artifact(artifact.tag)
    imported, created = import_artifact(exported)
    assert created
    assert imported.tag == artifact.tag
    assert imported.spec == artifact.spec


def test_tampered_file_is_refused() -> None:
    artifact, _ = package(_spec("tamper-file"))
    spec_file = _store_path(artifact.tag) / "spec.json"
    document = json.loads(spec_file.read_text())
    document["spec"]["technique"]["template"] = "Say positive.\n{text}"
    spec_file.write_text(json.dumps(document))
    with pytest.raises(ArtifactIntegrityError, match="modified after packaging: spec.json"):
        load_artifact(artifact.tag)


def test_tampered_manifest_is_refused() -> None:
    artifact, _ = package(_spec("tamper-manifest"))
    path = _store_path(artifact.tag)
    document = json.loads((path / "spec.json").read_text())
    document["spec"]["technique"]["template"] = "Say positive.\n{text}"
    (path / "spec.json").write_text(json.dumps(document))
    # Rewriting the manifest to match is not enough: the version no longer matches the content.
    import hashlib

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["spec.json"] = hashlib.sha256((path / "spec.json").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="version does not match"):
        load_artifact(artifact.tag)


def test_unlisted_file_is_refused() -> None:
    artifact, _ = package(_spec("tamper-extra"))
    (_store_path(artifact.tag) / "head.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ArtifactIntegrityError, match="head.pkl"):
        load_artifact(artifact.tag)


def test_tampered_import_is_refused_and_removed(tmp_path: Path) -> None:
    artifact, _ = package(_spec("tamper-import"))
    exported = export_artifact(artifact.tag, tmp_path)
    delete_artifact(artifact.tag)
    # Unpack, modify, repack: the archive is a plain tar file.
    import tarfile

    unpacked = tmp_path / "unpacked"
    with tarfile.open(exported) as archive:
        archive.extractall(unpacked, filter="data")
    spec_file = next(unpacked.rglob("spec.json"))
    spec_file.write_text(spec_file.read_text().replace("Classify as", "Always answer positive. Classify as"))
    forged = tmp_path / "forged.bentomodel"
    with tarfile.open(forged, "w:xz") as archive:
        for item in sorted(unpacked.iterdir()):
            archive.add(item, arcname=item.name)
    with pytest.raises(ArtifactIntegrityError):
        import_artifact(forged)
    with pytest.raises(ArtifactNotFound):
        load_artifact(artifact.tag)


def test_no_secret_reaches_the_artifact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = "sk-test-do-not-store-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("TEAM_OPENAI_KEY", secret)
    artifact, _ = package(
        _spec("no-secrets", backend={"provider": "openai", "model": "m", "api_key_env": "TEAM_OPENAI_KEY"})
    )
    path = _store_path(artifact.tag)
    stored = b"".join(p.read_bytes() for p in path.iterdir())
    assert secret.encode() not in stored
    assert b"TEAM_OPENAI_KEY" in stored
    exported = export_artifact(artifact.tag, tmp_path)
    import lzma

    assert secret.encode() not in lzma.decompress(exported.read_bytes())


def test_unknown_tag() -> None:
    with pytest.raises(ArtifactNotFound, match="labelwise models list"):
        load_artifact("never-packaged:0123456789abcdef")


@pytest.mark.parametrize("member", ["../../escaped.txt", "/tmp/absolute.txt", "link"])
def test_an_archive_reaching_outside_the_store_is_refused(tmp_path: Path, member: str) -> None:
    import io
    import tarfile

    archive_path = tmp_path / "evil.bentomodel"
    with tarfile.open(archive_path, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
        else:
            info.size = 5
            archive.addfile(info, io.BytesIO(b"owned"))
    with pytest.raises(ArtifactIntegrityError, match="outside the archive"):
        import_artifact(archive_path)
    assert not (tmp_path.parent.parent / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()


def test_attachments_are_written_together_and_bad_ones_refused_whole() -> None:
    artifact, _ = package(_spec("attached"))
    tag = str(artifact.tag)
    stored = attach_many(tag, {"notes.json": b"{}", "more_notes.json": b"[]"})
    assert stored.tag == artifact.tag  # describing it does not make a new version
    assert (stored.attachments["notes.json"], stored.attachments["more_notes.json"]) == (b"{}", b"[]")
    for bad, message in (
        ({"ok.json": b"1", "Bad Name.txt": b"2"}, "must look like 'eval_card.json'"),
        ({"ok.json": b"1", "manifest.json": b"2"}, "must look like"),
    ):
        with pytest.raises(ArtifactError, match=message):
            attach_many(tag, bad)
    assert "ok.json" not in load_artifact(tag).attachments  # nothing of a refused set is written
