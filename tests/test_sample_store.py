"""Samples read back from records.sqlite (`Sample.from_stored`): bodies this version writes take pydantic's
JSON fast path; bodies an earlier version wrote (the probe's tag in metadata) are migrated."""

from __future__ import annotations

import json

from medprobe import types
from medprobe.types import ImageRef, Sample, VariantTag

CLEAN = Sample(id="q1", benchmark="b", question="Is there a mass?", answer="yes", answer_type="closed",
               images=(ImageRef(path="a.png", root="/data"),), metadata={"modality": "CT", "note": "variant_of"})  # fmt: skip
VARIANT = CLEAN.model_copy(update={"id": "q1~corrupt:jpeg@3", "variant_of": VariantTag(
    parent_id="q1", probe="corrupt", variant="jpeg@3", detail={"corruption": "jpeg", "severity": 3})})  # fmt: skip


def test_bodies_this_version_writes_take_the_fast_path_and_read_back_equal():
    for sample in (CLEAN, VARIANT):
        body = sample.model_dump_json().encode()
        # variant_of is written last: the byte check that skips the migration relies on it
        assert body.endswith(types._CLEAN) or types._VARIANT in body
        assert Sample.from_stored(body) == sample
        assert Sample.from_stored(body.decode()) == sample


def test_a_variant_stored_before_variant_of_is_migrated():
    data = json.loads(VARIANT.model_dump_json())
    tag = data.pop("variant_of")
    data["metadata"] = {**data["metadata"], "parent_id": "q1", "probe": "corrupt", "variant": "jpeg@3", **tag["detail"]}
    body = json.dumps(data, separators=(",", ":")).encode()
    assert not body.endswith(types._CLEAN) and types._VARIANT not in body
    assert Sample.from_stored(body) == VARIANT
    # a clean sample of that time (no variant_of key at all) reads back unchanged, user columns kept
    old_clean = json.loads(CLEAN.model_dump_json())
    del old_clean["variant_of"]
    assert Sample.from_stored(json.dumps(old_clean).encode()) == CLEAN


def test_a_users_parent_id_column_is_never_taken_for_a_tag():
    data = json.loads(CLEAN.model_dump_json())
    del data["variant_of"]
    data["metadata"].update(parent_id="p7", probe="ct", variant="late")  # the id is not p7~ct:late
    sample = Sample.from_stored(json.dumps(data).encode())
    assert sample.variant_of is None and sample.metadata["parent_id"] == "p7"
