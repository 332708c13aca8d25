"""The prompt registry's pure parts: canary buckets, resolution order, version order, content checks."""

from __future__ import annotations

import pytest
import yaml

from agent.prompts import Prompt, load_prompt, pinned_prompts, register_prompt
from agent.prompts.registry import (
    PromptRegistryError,
    canary_bucket,
    choose_version,
    content_sha256,
    read_prompt_files,
    render_yaml,
    version_key,
)
from agent.prompts.registry import (
    _validated as validated,
)

THREADS = [f"email-{i}" for i in range(1, 2001)]  # a fixed set: the counts below never change


def test_the_canary_bucket_is_the_documented_hash() -> None:
    import hashlib

    expected = int(hashlib.sha256(b"email-42extract").hexdigest(), 16) % 100
    assert canary_bucket("email-42", "extract") == expected
    assert all(0 <= canary_bucket(t, "plan") < 100 for t in THREADS[:200])


@pytest.mark.parametrize("percentage", [5, 10, 50])
def test_a_canary_gets_its_share_of_threads(percentage: int) -> None:
    on_canary = sum(
        choose_version(t, "extract", production="1.1.0", canary=("1.2.0", percentage), latest_file="1.1.0")
        == "1.2.0"
        for t in THREADS
    )
    expected = len(THREADS) * percentage / 100
    # Within four standard deviations of a binomial draw; the ids are fixed, so this cannot flake.
    assert abs(on_canary - expected) <= 4 * (expected * (1 - percentage / 100)) ** 0.5


def test_buckets_differ_per_prompt_so_canaries_are_independent() -> None:
    both = sum(canary_bucket(t, "extract") < 50 and canary_bucket(t, "plan") < 50 for t in THREADS)
    assert 400 <= both <= 600  # about a quarter, not half (which would mean the same bucket)


def test_resolution_order_canary_then_production_then_latest_file() -> None:
    thread = next(t for t in THREADS if canary_bucket(t, "extract") == 37)
    kw = {"production": "1.0.0", "latest_file": "1.1.0"}
    assert choose_version(thread, "extract", canary=("2.0.0", 38), **kw) == "2.0.0"
    assert choose_version(thread, "extract", canary=("2.0.0", 37), **kw) == "1.0.0"
    assert choose_version(thread, "extract", canary=("2.0.0", 0), **kw) == "1.0.0"
    assert choose_version(thread, "extract", canary=("2.0.0", 100), **kw) == "2.0.0"
    assert choose_version(thread, "extract", canary=None, production=None, latest_file="1.1.0") == "1.1.0"
    # The same thread always lands in the same bucket: the choice sticks while the labels stand.
    assert {choose_version(thread, "extract", canary=("2.0.0", 50), **kw) for _ in range(5)} == {"2.0.0"}


def test_versions_sort_by_number_and_a_draft_sorts_before_its_release() -> None:
    versions = ["1.10.0", "1.2.0", "1.1.1", "1.1.1-draft.2", "1.1.1-draft.10", "1.1.0"]
    assert sorted(versions, key=version_key) == [
        "1.1.0",
        "1.1.1-draft.2",
        "1.1.1-draft.10",
        "1.1.1",
        "1.2.0",
        "1.10.0",
    ]
    for bad in ("latest", "1.0.0-rc1", "../plan/1.0.0"):
        with pytest.raises(PromptRegistryError):
            version_key(bad)


def test_shipped_files_are_valid_and_render_back_to_the_same_content() -> None:
    files = read_prompt_files()
    assert {("extract", "1.0.0"), ("extract", "1.1.0"), ("plan", "1.0.0"), ("plan", "1.1.0")} <= set(files)
    for content in files.values():
        assert yaml.safe_load(render_yaml(content)) == content
        assert content_sha256(yaml.safe_load(render_yaml(content))) == content_sha256(content)
    # The released 1.x files predate the optional fields; they keep their defaults.
    extract = load_prompt("extract", "1.0.0")
    assert extract.output_schema is None and extract.parameters.temperature is None


def test_the_hash_ignores_key_order_but_not_values() -> None:
    content = read_prompt_files()[("extract", "1.1.0")]
    assert content_sha256(dict(reversed(list(content.items())))) == content_sha256(content)
    assert content_sha256({**content, "changelog": content["changelog"] + "!"}) != content_sha256(content)


def test_templates_may_use_only_declared_variables() -> None:
    content = read_prompt_files()[("extract", "1.1.0")]
    messages = [{"role": "system", "template": "Hi {customer_name}"}, *content["messages"][1:]]
    with pytest.raises(PromptRegistryError, match="customer_name"):
        validated({**content, "messages": messages}, where="test")
    with pytest.raises(PromptRegistryError, match="malformed"):
        validated({**content, "messages": [{"role": "user", "template": "{email_block"}]}, where="test")
    escaped = [{"role": "user", "template": 'JSON like {{"a": 1}} then {email_block}'}]
    assert validated({**content, "messages": escaped}, where="test").messages[0].role == "user"
    with pytest.raises(PromptRegistryError, match="not a valid prompt"):
        validated({**content, "model": "huge"}, where="test")


def test_a_registered_version_loads_and_pins_without_a_file() -> None:
    content = {**read_prompt_files()[("extract", "1.1.0")], "version": "1.1.1-draft.99"}
    with pytest.raises(FileNotFoundError):
        load_prompt("extract", "1.1.1-draft.99")
    register_prompt(Prompt.model_validate(content))
    with pinned_prompts({"extract": "1.1.1-draft.99"}):
        assert load_prompt("extract").ref == "extract@1.1.1-draft.99"
    assert not load_prompt("extract").version.endswith("-draft.99")  # outside the pin: the latest file
