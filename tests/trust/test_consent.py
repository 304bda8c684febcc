"""Consent grants and attestations: exact refusals, a fuzz of thousands of bad tokens, use counts across processes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import subprocess
import sys
import textwrap

import jwt
import numpy as np
import pytest

from facewire.errors import InputError
from facewire.trust.audit import AuditLog
from facewire.trust.consent import (
    ATTESTATION_TYP,
    CLOCK_LEEWAY_S,
    CONTEXT_NAMES,
    GRANT_TYP,
    USE_CONTEXTS,
    ConsentError,
    ConsentStore,
    ConsentVerifier,
    LikenessRef,
    embedding_sha256,
    issue_attestation,
    issue_grant,
    likeness_reference,
    parse_duration_s,
    parse_time_s,
    token_id,
)
from facewire.trust.keys import generate_identity

NOW = 1_800_000_000  # a fixed clock: tests never depend on when they run
DAY = 86400


@pytest.fixture(scope="module")
def owner():
    return generate_identity("alice")


@pytest.fixture(scope="module")
def likeness():
    return likeness_reference(b"alice's photo", np.linspace(-1, 1, 128), include_vector=True)


@pytest.fixture
def store(tmp_path):
    with ConsentStore(tmp_path / "consent.db") as s:
        yield s


@pytest.fixture
def verifier(owner, store):
    return ConsentVerifier({owner.key_id: owner.public_key}, store)


def _grant(owner, likeness, **kw):
    args = {"subject": "alice", "likeness": likeness, "contexts": ["telepresence"], "now_s": NOW, "lifetime_s": DAY}
    args.update(kw)
    return issue_grant(owner, **args)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_parts(token: str) -> tuple[dict, dict]:
    header, claims, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(claims)))


def test_vocabulary_is_documented_and_frozen():
    assert CONTEXT_NAMES == ("telepresence", "training-simulation", "customer-service", "entertainment",
                             "healthcare-training", "legal-simulation")
    assert all(isinstance(meaning, str) and meaning and "\n" not in meaning for _, meaning in USE_CONTEXTS)
    assert isinstance(USE_CONTEXTS, tuple)


def test_grant_round_trip(owner, likeness, verifier):
    token = _grant(owner, likeness, contexts=["telepresence", "customer-service"], max_uses=3, audience="facewire")
    header, claims = _unsigned_parts(token)
    assert header == {"alg": "EdDSA", "typ": GRANT_TYP, "kid": owner.key_id}
    assert claims["lik"]["sha256"] == hashlib.sha256(b"alice's photo").hexdigest()
    assert claims["lik"]["emb_sha256"] == hashlib.sha256(np.linspace(-1, 1, 128).astype("<f4").tobytes()).hexdigest()

    grant = verifier.verify(token, context="customer-service", now_s=NOW + 10)
    assert (grant.subject, grant.issuer, grant.max_uses) == ("alice", "alice", 3)
    assert grant.contexts == ("telepresence", "customer-service")
    assert (grant.not_before, grant.expires) == (NOW, NOW + DAY)
    assert grant.likeness == likeness and grant.likeness.embedding == likeness.embedding
    assert grant.jti.startswith("g-") and token_id(token) == grant.jti
    assert verifier.store.uses(grant.jti) == 0  # verifying counts no use


def test_refusals_say_exactly_what_is_wrong(owner, likeness, verifier, store):
    token = _grant(owner, likeness, jti="g-123")
    with pytest.raises(ConsentError) as exc:
        verifier.verify(token, context="entertainment", now_s=NOW)
    assert str(exc.value) == "grant g-123 does not allow context 'entertainment' (allowed: telepresence)"
    assert isinstance(exc.value, PermissionError)

    with pytest.raises(ConsentError, match=r"^grant g-123 expired at 2027-01-16T08:00:00Z"):
        verifier.verify(token, context="telepresence", now_s=NOW + DAY + CLOCK_LEEWAY_S + 1)
    with pytest.raises(ConsentError, match=r"^grant g-123 is not valid before 2027-01-15T08:00:00Z"):
        verifier.verify(token, context="telepresence", now_s=NOW - CLOCK_LEEWAY_S - 1)
    with pytest.raises(ConsentError, match=r"^grant g-123 is for audience 'facewire', not 'studio'$"):
        ConsentVerifier(verifier.trusted_keys, audience="studio").verify(token, context="telepresence", now_s=NOW)
    with pytest.raises(ConsentError, match=r"^grant g-123 was issued by 'alice', expected 'bob'$"):
        ConsentVerifier(verifier.trusted_keys, issuer="bob").verify(token, context="telepresence", now_s=NOW)
    with pytest.raises(ConsentError, match=r"^grant g-123 covers likeness sha256 "):
        verifier.verify(token, context="telepresence", now_s=NOW, likeness_sha256="0" * 64)
    store.revoke("g-123", "withdrawn by alice")
    with pytest.raises(ConsentError, match=r"^grant g-123 was revoked at .*: withdrawn by alice$"):
        verifier.verify(token, context="telepresence", now_s=NOW)
    with pytest.raises(InputError, match="use context: expected one of"):
        verifier.verify(token, context="marketing", now_s=NOW)


def test_leeway_accepts_small_clock_differences(owner, likeness, verifier):
    token = _grant(owner, likeness)
    verifier.verify(token, context="telepresence", now_s=NOW - CLOCK_LEEWAY_S + 1)
    verifier.verify(token, context="telepresence", now_s=NOW + DAY + CLOCK_LEEWAY_S - 1)


def test_attestation_is_a_different_type(owner, likeness, verifier):
    token = issue_attestation(owner, likeness=likeness, contexts=["entertainment"], operator="studio-op", now_s=NOW)
    grant = verifier.verify(token, context="entertainment", now_s=NOW, typ=ATTESTATION_TYP)
    assert grant.is_attestation and grant.jti.startswith("a-") and grant.issuer == "studio-op"
    assert "studio-op" in grant.statement and "entertainment" in grant.statement
    assert likeness.asset_sha256 in grant.statement
    with pytest.raises(ConsentError, match=re.escape(f"expected a {GRANT_TYP}, got a {ATTESTATION_TYP}")):
        verifier.verify(token, context="entertainment", now_s=NOW, typ=GRANT_TYP)


def test_max_uses_and_revocation_are_counted_in_the_store(owner, likeness, verifier, store):
    token = _grant(owner, likeness, max_uses=2, jti="g-twice")
    assert verifier.use(token, context="telepresence", now_s=NOW).jti == "g-twice"
    verifier.use(token, context="telepresence", now_s=NOW)
    with pytest.raises(ConsentError, match=r"^grant g-twice has already been used 2 of 2 allowed time\(s\)$"):
        verifier.use(token, context="telepresence", now_s=NOW)
    with pytest.raises(ConsentError, match="already been used 2 of 2"):
        verifier.verify(token, context="telepresence", now_s=NOW)
    assert store.uses("g-twice") == 2
    listed = {g.jti: g for g in store.grants()}
    assert listed["g-twice"].status(NOW) == "used up"


def test_checks_go_to_the_audit_log(owner, likeness, store, tmp_path):
    with AuditLog(tmp_path / "audit.db", owner) as log:
        verifier = ConsentVerifier({owner.key_id: owner.public_key}, store, audit=log)
        token = _grant(owner, likeness, jti="g-aud")
        verifier.verify(token, context="telepresence", now_s=NOW)
        with pytest.raises(ConsentError):
            verifier.verify(token, context="entertainment", now_s=NOW)
        with pytest.raises(ConsentError):
            verifier.verify("not.a.token", context="entertainment", now_s=NOW)
        records = log.records(kind="consent-check")
    payloads = [r.payload for r in records]
    assert [p["result"] for p in payloads] == ["granted", "refused", "refused"]
    assert payloads[1]["reason"] == "grant g-aud does not allow context 'entertainment' (allowed: telepresence)"
    assert payloads[0]["jti"] == "g-aud" and "token_sha256" in payloads[2]
    assert all(token not in r.payload_json for r in records)


def test_embedding_digest_and_malformed_likeness():
    vec = [0.5, -0.25, 1.0]
    assert embedding_sha256(vec) == hashlib.sha256(np.array(vec, "<f4").tobytes()).hexdigest()
    with pytest.raises(InputError, match="finite"):
        embedding_sha256([float("nan")])
    with pytest.raises(InputError, match="64 lower-case hex"):
        LikenessRef("abc")


def test_time_arguments():
    assert parse_duration_s("30d") == 30 * DAY and parse_duration_s("90m") == 5400
    assert parse_time_s("+1h", NOW) == NOW + 3600
    assert parse_time_s("2027-01-15T08:00:00Z", 0) == NOW
    assert parse_time_s("2027-01-15T08:00:00", 0) == NOW  # no zone means UTC
    with pytest.raises(InputError, match="expected a duration"):
        parse_time_s("next tuesday")


# -- the fuzz ---------------------------------------------------------------------------------------
def _hs256_with_public_key(owner, claims) -> str:
    """The classic key-confusion forgery: HMAC keyed with the verifier's public key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": GRANT_TYP, "kid": owner.key_id}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(owner.public_key.pem(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def _alg_none(owner, claims) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": GRANT_TYP, "kid": owner.key_id}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _swap_claims(token: str, **changes) -> str:
    """The original signature over altered claims."""
    header, _claims, signature = token.split(".")
    _, data = _unsigned_parts(token)
    data.update(changes)
    return f"{header}.{_b64(json.dumps(data).encode())}.{signature}"


def test_fuzz_zero_bad_tokens_accepted(owner, likeness, verifier, store):
    rng = random.Random(8)
    attacker = generate_identity("mallory")
    bad: list[tuple[str, str]] = []  # (category, token)
    base_claims = _unsigned_parts(_grant(owner, likeness))[1]

    for i in range(100):  # forged: signed by another key, claiming the owner's key id or its own
        kid = owner.key_id if i % 2 else attacker.key_id
        claims = dict(base_claims, jti=f"g-forged-{i}")
        bad.append(("forged", jwt.encode(claims, attacker.private_key, algorithm="EdDSA",
                                         headers={"typ": GRANT_TYP, "kid": kid})))
    for i in range(50):
        claims = dict(base_claims, jti=f"g-alg-{i}", ctx=["entertainment"])
        bad.append(("alg-none", _alg_none(owner, claims)))
        bad.append(("hs256-public-key", _hs256_with_public_key(owner, claims)))
    for i in range(100):  # claims edited under an honest signature
        token = _grant(owner, likeness, jti=f"g-edit-{i}")
        edit = rng.choice([{"ctx": list(CONTEXT_NAMES)}, {"exp": NOW + 999 * DAY}, {"sub": "bob"},
                           {"aud": "elsewhere"}, {"max_uses": 10**6}])
        bad.append(("edited-claims", _swap_claims(token, **edit)))
    for i in range(100):
        bad.append(("expired", _grant(owner, likeness, jti=f"g-exp-{i}", now_s=NOW - 2 * DAY - rng.randint(61, DAY))))
        bad.append(("not-yet-valid", _grant(owner, likeness, jti=f"g-nbf-{i}", not_before_s=NOW + rng.randint(61, DAY))))
        bad.append(("wrong-context", _grant(owner, likeness, jti=f"g-ctx-{i}",
                                            contexts=rng.sample(CONTEXT_NAMES[1:], rng.randint(1, 5)))))
        bad.append(("wrong-audience", _grant(owner, likeness, jti=f"g-aud-{i}", audience=f"other-{i}")))
        revoked = _grant(owner, likeness, jti=f"g-rev-{i}")
        store.revoke(f"g-rev-{i}")
        bad.append(("revoked", revoked))
    replayed = []
    for i in range(20):  # each used up first, then replayed 5 times
        token = _grant(owner, likeness, jti=f"g-max-{i}", max_uses=1 + i % 3)
        for _ in range(1 + i % 3):
            verifier.use(token, context="telepresence", now_s=NOW)
        replayed += [("replayed", token)] * 5
    small = LikenessRef(likeness.asset_sha256, likeness.embedding_sha256)  # no vector: a short token to flip
    valid = _grant(owner, small, jti="g-valid", contexts=["telepresence", "entertainment"])
    flipped = []
    for pos, char in enumerate(valid):  # every single-bit change of every character
        for bit in range(8):
            flipped.append(("bit-flipped", valid[:pos] + chr(ord(char) ^ (1 << bit)) + valid[pos + 1:]))

    accepted = []
    for category, token in bad + flipped:
        try:
            verifier.verify(token, context="telepresence", now_s=NOW)
        except ConsentError:
            continue
        accepted.append(category)
    for category, token in replayed:
        try:
            verifier.use(token, context="telepresence", now_s=NOW)
        except ConsentError:
            continue
        accepted.append(category)
    assert len(bad) + len(flipped) + len(replayed) >= 1000
    assert accepted == []

    goods = [_grant(owner, likeness, jti=f"g-ok-{i}", contexts=rng.sample(CONTEXT_NAMES, 3)) for i in range(50)]
    for token in goods + [valid]:
        grant = ConsentVerifier(verifier.trusted_keys, store).verify(
            token, context=_unsigned_parts(token)[1]["ctx"][0], now_s=NOW)
        assert grant.jti == _unsigned_parts(token)[1]["jti"]


# -- across processes ---------------------------------------------------------------------------
USER = textwrap.dedent("""
    import sys
    from facewire.trust.consent import ConsentError, ConsentStore, ConsentVerifier
    from facewire.trust.keys import load_public_key
    key = load_public_key(sys.argv[2])
    token = open(sys.argv[3]).read()
    accepted = 0
    with ConsentStore(sys.argv[1]) as store:
        verifier = ConsentVerifier({key.key_id: key}, store)
        for _ in range(int(sys.argv[4])):
            try:
                verifier.use(token, context="telepresence", now_s=float(sys.argv[5]))
                accepted += 1
            except ConsentError:
                pass
    print(accepted)
""")


def test_max_uses_hold_across_racing_processes(owner, likeness, tmp_path):
    pub = tmp_path / "owner.pub.pem"
    pub.write_bytes(owner.public_key.pem())
    token_file = tmp_path / "grant.jwt"
    token_file.write_text(_grant(owner, likeness, max_uses=7))
    db = tmp_path / "consent.db"
    ConsentStore(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", USER, str(db), str(pub), str(token_file), "6", str(NOW)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    accepted = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        accepted.append(int(out))
    assert sum(accepted) == 7
    with ConsentStore(db) as store:
        assert store.uses(token_id(token_file.read_text())) == 7



def test_home_verifier_uses_the_home_keys_and_store(owner, likeness, tmp_path):
    from facewire.trust.consent import home_verifier
    from facewire.trust.keys import save_identity
    from facewire.trust.store import TrustHome

    home = TrustHome(tmp_path / "home")
    save_identity(owner, home)
    verifier = home_verifier(home.root)
    try:
        token = _grant(owner, likeness, max_uses=1)
        verifier.use(token, context="telepresence", now_s=NOW)
    finally:
        verifier.store.close()
    again = home_verifier(home.root)
    try:
        with pytest.raises(ConsentError, match="already been used 1 of 1"):
            again.use(token, context="telepresence", now_s=NOW)
    finally:
        again.store.close()
    assert home.consent_db.is_file()


def test_times_beyond_the_calendar_are_refused_clearly_and_logged(owner, likeness, store, tmp_path):
    """Review (issue 8): a signed token whose times no calendar can show (year 300,000, or before year 1)
    is a logged refusal with a one-line reason, not a crash that skips the audit record."""
    far = 10**13  # Unix seconds in the year ~318,857: datetime cannot format it
    with AuditLog(tmp_path / "audit.db", owner) as log:
        verifier = ConsentVerifier({owner.key_id: owner.public_key}, store, audit=log)
        late = _grant(owner, likeness, jti="g-late", not_before_s=far, expires_s=far + DAY)
        with pytest.raises(ConsentError, match=r"grant g-late is not valid before 10000000000000 \(Unix seconds\)"):
            verifier.verify(late, context="telepresence", now_s=NOW)
        early = _grant(owner, likeness, jti="g-early", not_before_s=-far, expires_s=-far + DAY)
        with pytest.raises(ConsentError, match=r"grant g-early expired at -9999999913600 \(Unix seconds\)"):
            verifier.use(early, context="telepresence", now_s=NOW)
        payloads = [r.payload for r in log.records(kind="consent-check")]
    assert [(p["jti"], p["result"]) for p in payloads] == [("g-late", "refused"), ("g-early", "refused")]
    assert store.uses("g-early") == 0
