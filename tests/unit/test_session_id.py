"""Session-ID codec (CONTRACT §3): properties over many IDs and node names."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from previewcore.session_id import (
    Keys,
    SecretError,
    is_valid_hashed_id,
    is_valid_node_name,
    mint,
    parse_secrets,
    placement_token,
    verify,
    verify_placement,
)

KEYS = parse_secrets("# comment\n\n" + "a" * 40 + "\n" + "b" * 40 + "\n")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
node_names = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,18}[a-z0-9]\Z").filter(lambda n: "--" not in n)


@given(node=node_names, rand=st.binary(min_size=16, max_size=16))
def test_every_minted_id_verifies_and_is_a_dns_label(node: str, rand: bytes) -> None:
    sid = mint(node, KEYS, rand)
    assert verify(sid, KEYS) == node
    assert len(sid) <= 61
    assert DNS_LABEL.match(sid)
    assert sid[2:4] != "--"  # never an xn-- style label


@given(node=node_names, rand=st.binary(min_size=16, max_size=16), data=st.data())
def test_any_changed_character_fails(node: str, rand: bytes, data: st.DataObject) -> None:
    sid = mint(node, KEYS, rand)
    i = data.draw(st.integers(0, len(sid) - 1))
    alphabet = string.ascii_lowercase + string.digits + "-"
    c = data.draw(st.sampled_from(alphabet).filter(lambda ch: ch != sid[i]))
    forged = sid[:i] + c + sid[i + 1 :]
    assert verify(forged, KEYS) is None


@given(name=st.text(min_size=0, max_size=30))
def test_node_names_outside_the_rule_are_rejected(name: str) -> None:
    valid = bool(re.fullmatch(r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]", name)) and "--" not in name
    assert is_valid_node_name(name) == valid
    if not valid:
        with pytest.raises(ValueError):
            mint(name, KEYS)


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "a--b", "Node0", "a" * 21, "nöde"])
def test_named_bad_node_names(name: str) -> None:
    assert not is_valid_node_name(name)


def test_second_secret_verifies_first_signs() -> None:
    old = parse_secrets("b" * 40)
    sid_old = mint("node-1", old)
    assert verify(sid_old, KEYS) == "node-1"  # old secret is a later line: still verifies
    sid_new = mint("node-1", KEYS)
    assert verify(sid_new, old) is None  # signed with the first line, which `old` lacks


def test_secret_rules() -> None:
    with pytest.raises(SecretError):
        parse_secrets("short")
    with pytest.raises(SecretError):
        parse_secrets("# only a comment\n\n")
    assert parse_secrets("  " + "x" * 32 + "  \n").secrets == (b"x" * 32,)


def test_fingerprints_do_not_contain_the_secret() -> None:
    for fp in KEYS.fingerprints:
        assert "aaaa" not in fp and len(fp) == 12


@pytest.mark.parametrize(
    ("sid", "ok"),
    [
        ("proj_1-A", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("a--b", False),
        ("a b", False),
        ("", False),
    ],
)
def test_hashed_id_rule(sid: str, ok: bool) -> None:
    assert is_valid_hashed_id(sid) is ok


def test_placement_token_binds_the_id() -> None:
    token = placement_token("proj1", KEYS)
    assert verify_placement("proj1", token, KEYS)
    assert not verify_placement("proj2", token, KEYS)
    assert not verify_placement("proj1", token, Keys((b"c" * 40,)))
