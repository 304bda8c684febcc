"""CLI verbs of the trust core: ``facewire keys``, ``facewire consent`` and ``facewire audit``.

Each verb is a thin layer over `keys`, `consent` and `audit`; heavy imports happen inside the
command functions. Passphrases come from ``--passphrase-env VAR``, ``--passphrase-file F`` or a
hidden prompt, never from a command-line value.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..plugins import module_exists

__all__ = ["register"]

EXIT_REFUSED = 1  # a check that ran and failed (invalid grant, tampered log), as opposed to bad input (2)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- shared flags and helpers -----------------------------------------------------------------------
def _home_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", metavar="DIR", default=None,
                   help="trust home (default: $FACEWIRE_HOME, else the user data folder)")


def _passphrase_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--passphrase-env", metavar="VAR", help="read the key's passphrase from environment variable VAR")
    g.add_argument("--passphrase-file", metavar="FILE", help="read the key's passphrase from the first line of FILE")


def _signer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="FILE", help="sign with this Ed25519 PEM private key instead of the home identity")
    _passphrase_flags(p)


def _home(args: argparse.Namespace):
    from .store import trust_home

    return trust_home(args.home)


def _load_signer(args: argparse.Namespace, home, *, required: bool = True):
    """The signing identity; with ``required=False`` None when it cannot be had without a prompt."""
    from .keys import key_is_encrypted, load_identity, read_passphrase

    path = Path(args.key) if getattr(args, "key", None) else home.key_file
    if not path.exists():
        if required:
            return load_identity(home, key_file=getattr(args, "key", None))  # raises the clear error
        return None
    passphrase = read_passphrase(getattr(args, "passphrase_env", None), getattr(args, "passphrase_file", None))
    if passphrase is None and key_is_encrypted(path):
        if not required:
            return None
        passphrase = read_passphrase(prompt=f"passphrase for {path}: ")
    return load_identity(home, passphrase, key_file=getattr(args, "key", None))


def _audit_log(home, signer):
    """The home's audit log; checkpoints are signed only by the home's own identity."""
    from .audit import home_log

    return home_log(home.root, signer)


def _when(seconds: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- keys -----------------------------------------------------------------------------------------
def cmd_keys_init(args: argparse.Namespace) -> int:
    import getpass

    from .keys import (
        Identity,
        generate_identity,
        load_private_key,
        read_passphrase,
        save_identity,
    )

    home = _home(args).ensure()
    if home.key_file.exists() and not args.force:
        from ..errors import OutputError

        raise OutputError(f"cannot write {home.key_file}: an identity already exists there (use --force to replace it)")
    passphrase = read_passphrase(args.passphrase_env, args.passphrase_file)
    name = args.subject or getpass.getuser()
    if args.import_key:
        if passphrase is None and _encrypted(args.import_key):
            passphrase = read_passphrase(prompt=f"passphrase for {args.import_key}: ")
        identity = Identity(name, load_private_key(args.import_key, passphrase))
    else:
        if passphrase is None and not args.no_passphrase:
            passphrase = read_passphrase(prompt="passphrase for the new key (or run with --no-passphrase): ", confirm=True)
        identity = generate_identity(name)
    save_identity(identity, home, passphrase, force=args.force)
    print(f"identity {identity.name}: key id {identity.key_id}")
    _say(f"facewire: private key → {home.key_file} (mode 0600, "
         f"{'encrypted' if passphrase else 'NOT encrypted: anyone who can read it can sign as you'})")
    _say(f"facewire: public key → {home.public_key_file}")
    c2pa = _make_c2pa_chain(home, name, passphrase, args.no_c2pa)
    with _audit_log(home, identity) as log:
        log.append("key-init", {"name": identity.name, "key_id": identity.key_id, "encrypted": passphrase is not None,
                                "imported": bool(args.import_key), "c2pa_chain": c2pa})
    return 0


def _encrypted(path: str) -> bool:
    from .keys import key_is_encrypted

    return key_is_encrypted(path)


def _make_c2pa_chain(home, subject: str, passphrase: bytes | None, skip: bool) -> bool:
    """The local C2PA signing chain, when the provenance part of facewire is installed."""
    if skip:
        return False
    if not module_exists("facewire.trust.certs"):
        _say("facewire: note: C2PA signing is not available in this installation; no certificate chain made")
        return False
    import inspect

    from . import certs

    if (home.c2pa_dir / getattr(certs, "KEY_NAME", "signer.key")).exists():
        _say(f"facewire: kept the existing C2PA signing chain in {home.c2pa_dir}")
        return True
    kwargs: dict[str, Any] = {"subject": subject}
    if passphrase is not None and "passphrase" in inspect.signature(certs.create_signing_chain).parameters:
        kwargs["passphrase"] = passphrase
    chain = certs.create_signing_chain(home.c2pa_dir, **kwargs)
    _say(f"facewire: C2PA signing chain → {home.c2pa_dir} (root {getattr(chain, 'root', None) or '-'})")
    return True


def cmd_keys_show(args: argparse.Namespace) -> int:
    import json

    from .keys import key_is_encrypted, load_public_key, trusted_keys

    home = _home(args)
    if not home.public_key_file.exists():
        from ..errors import InputError

        raise InputError(f"no identity in trust home {home.root}: run 'facewire keys init' first")
    try:
        name = json.loads(home.identity_file.read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = None
    public = load_public_key(home.public_key_file, name)
    print(f"identity     {public.name}")
    print(f"fingerprint  {public.key_id}  (Ed25519, RFC 7638 JWK thumbprint)")
    print(f"private key  {home.key_file}  ({'encrypted' if key_is_encrypted(home.key_file) else 'not encrypted'})")
    print(f"public key   {home.public_key_file}")
    chain = home.c2pa_dir
    print(f"C2PA chain   {chain if chain.is_dir() and any(chain.iterdir()) else '(none)'}")
    others = [k for k in trusted_keys(home).values() if k.key_id != public.key_id]
    for other in others:
        print(f"trusts       {other.key_id}  {other.name}")
    return 0


def cmd_keys_trust(args: argparse.Namespace) -> int:
    from .keys import trust_public_key

    public = trust_public_key(_home(args), args.public_key, args.name)
    print(f"trusted {public.key_id} ({public.name})")
    return 0


# -- consent --------------------------------------------------------------------------------------
def _likeness(args: argparse.Namespace):
    from .consent import likeness_reference

    embedding = None
    if args.embedding:
        embedding = _read_embedding(args.embedding)
    return likeness_reference(args.likeness, embedding, include_vector=args.include_embedding)


def _read_embedding(path: str):
    import json

    import numpy as np

    from ..errors import InputError

    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False)
        return np.asarray(json.loads(Path(path).read_text(encoding="utf-8")), dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise InputError(f"embedding {path}: expected a .npy array or a JSON list of numbers ({exc})") from exc


def _write_token(path: str, token: str) -> None:
    from ..atomic import atomic_write

    with atomic_write(path) as f:
        f.write(token + "\n")


def _times(args: argparse.Namespace) -> dict[str, Any]:
    from .consent import parse_time_s

    now = time.time()
    out: dict[str, Any] = {"now_s": now}
    if args.not_before:
        out["not_before_s"] = parse_time_s(args.not_before, now)
    if args.expires:
        out["expires_s"] = parse_time_s(args.expires, out.get("not_before_s", now))
    return out


def cmd_consent_grant(args: argparse.Namespace) -> int:
    from .consent import issue_grant

    home = _home(args)
    identity = _load_signer(args, home)
    token = issue_grant(identity, subject=args.subject, likeness=_likeness(args), contexts=args.context,
                        max_uses=args.max_uses, audience=args.audience, issuer=args.issuer, **_times(args))
    _record_issued(home, identity, token)
    _write_token(args.out, token)
    return 0


def _record_issued(home, identity, token: str) -> None:
    """Remember the new token in the consent store and log its signing."""
    from .consent import ConsentStore, decode_token

    grant = decode_token(token, {identity.key_id: identity.public_key})  # also proves the token round-trips
    with ConsentStore(home.ensure().consent_db) as store:
        store.record(grant)
    with _audit_log(home, identity) as log:
        record = log.append("sign", {"what": "attestation" if grant.is_attestation else "consent grant",
                                     "jti": grant.jti, "subject": grant.subject, "contexts": list(grant.contexts),
                                     "expires": grant.expires, "max_uses": grant.max_uses, "key_id": grant.key_id,
                                     "likeness_sha256": grant.likeness.asset_sha256 if grant.likeness else None})
    _say(f"facewire: signed {grant.label} for {grant.subject} ({', '.join(grant.contexts)}; "
         f"until {_when(grant.expires)}); audit record {record.seq}")


def cmd_consent_attest(args: argparse.Namespace) -> int:
    from .consent import issue_attestation

    home = _home(args)
    identity = _load_signer(args, home)
    token = issue_attestation(identity, likeness=_likeness(args), contexts=args.context, operator=args.operator,
                              audience=args.audience, **_times(args))
    _record_issued(home, identity, token)
    _write_token(args.out, token)
    return 0


def _read_token(path: str) -> str:
    from ..errors import InputError

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise InputError(f"token file {path}: cannot read it ({exc.strerror or exc})") from exc
    return text.strip()


def cmd_consent_verify(args: argparse.Namespace) -> int:
    from .consent import DEFAULT_AUDIENCE, ConsentStore, ConsentVerifier
    from .keys import load_public_key, trusted_keys

    home = _home(args).ensure()
    keys = trusted_keys(home, [load_public_key(p) for p in args.issuer_key or ()])
    likeness = None
    if args.likeness:
        from .consent import likeness_reference

        likeness = likeness_reference(args.likeness).asset_sha256
    token = _read_token(args.token)
    signer = _load_signer(args, home, required=False)
    with ConsentStore(home.consent_db) as store, _audit_log(home, signer) as log:
        verifier = ConsentVerifier(keys, store, audience=args.audience or DEFAULT_AUDIENCE, issuer=args.issuer,
                                   audit=log)
        check = verifier.use if args.use else verifier.verify
        grant = check(token, context=args.context, likeness_sha256=likeness)
        uses = store.uses(grant.jti)
    limit = f", used {uses} of {grant.max_uses}" if grant.max_uses else (f", used {uses} time(s)" if uses else "")
    print(f"valid: {grant.label} from {grant.issuer} for subject {grant.subject}: context {args.context} allowed "
          f"until {_when(grant.expires)}{limit}")
    if grant.statement:
        print(f"statement: {grant.statement}")
    return 0


def cmd_consent_revoke(args: argparse.Namespace) -> int:
    from .consent import ConsentStore, token_id

    home = _home(args).ensure()
    jti = token_id(_read_token(args.token)) if Path(args.token).is_file() or args.token == "-" else args.token
    with ConsentStore(home.consent_db) as store:
        new = store.revoke(jti, args.reason or "")
    with _audit_log(home, _load_signer(args, home, required=False)) as log:
        log.append("revoke", {"jti": jti, "reason": args.reason or "", "new": new})
    print(f"revoked {jti}" if new else f"{jti} was already revoked")
    return 0


def cmd_consent_list(args: argparse.Namespace) -> int:
    from .consent import ConsentStore

    home = _home(args).ensure()
    with ConsentStore(home.consent_db) as store:
        grants = store.grants()
    if not grants:
        _say(f"facewire: no grants recorded in {home.consent_db}")
        return 0
    print(f"{'id':<20} {'kind':<11} {'subject':<20} {'status':<8} {'uses':<7} {'expires':<20} contexts")
    for g in grants:
        kind = "attestation" if g.typ.startswith("facewire-attestation") else "grant"
        uses = f"{g.uses}/{g.max_uses}" if g.max_uses else str(g.uses)
        print(f"{g.jti:<20} {kind:<11} {g.subject[:20]:<20} {g.status():<8} {uses:<7} {_when(g.expires):<20} "
              f"{','.join(g.contexts)}")
    return 0


def cmd_consent_contexts(args: argparse.Namespace) -> int:
    from .consent import USE_CONTEXTS

    for name, meaning in USE_CONTEXTS:
        print(f"{name:<20} {meaning}")
    return 0


# -- audit ------------------------------------------------------------------------------------------
def _audit_path(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else _home(args).audit_db


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .audit import checkpoint_keys, verify_log
    from .keys import load_public_key

    # only the home's own identity (and --key) vouch for its log, never a key trusted for grants
    keys = checkpoint_keys(_home(args).root, [load_public_key(p) for p in args.key or ()])
    anchors = []
    for path in args.anchor or ():
        lines = [line for line in _read_token(path).splitlines() if line.strip()]
        anchors += lines[-1:]  # the newest checkpoint in the file
    report = verify_log(_audit_path(args), keys, anchors)
    for problem in report.problems:
        print(f"TAMPERED: {problem}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.summary())
    return 0 if report.ok else EXIT_REFUSED


def cmd_audit_show(args: argparse.Namespace) -> int:
    from .audit import format_records, read_log

    records, checkpoints = read_log(_audit_path(args), kind=args.kind, last=args.last)
    if args.checkpoints:
        for cp in checkpoints:
            print(cp.body)
        return 0
    for line in format_records(records):
        print(line)
    return 0


# -- registration -------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    """Add ``keys``, ``consent`` and ``audit`` with their sub-verbs."""
    k = sub.add_parser("keys", help="the Ed25519 identity that signs consent grants and audit checkpoints")
    kv = k.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    ki = kv.add_parser("init", help="create an identity (and a local C2PA signing chain) in the trust home")
    _home_flag(ki)
    _passphrase_flags(ki)
    ki.add_argument("--no-passphrase", action="store_true", help="do not prompt; store the key unencrypted")
    ki.add_argument("--subject", metavar="NAME", help="the identity's name (default: the user name)")
    ki.add_argument("--key", dest="import_key", metavar="FILE", help="use this Ed25519 PEM private key instead of a new one")
    ki.add_argument("--force", action="store_true", help="replace an existing identity")
    ki.add_argument("--no-c2pa", action="store_true", help="do not make a C2PA signing chain")
    ki.set_defaults(func=cmd_keys_init)
    ks = kv.add_parser("show", help="print the identity and its public key fingerprint")
    _home_flag(ks)
    ks.set_defaults(func=cmd_keys_show)
    kt = kv.add_parser("trust", help="accept grants signed by another public key")
    _home_flag(kt)
    kt.add_argument("public_key", metavar="PUBKEY", help="Ed25519 public key PEM (someone's identity.pub.pem)")
    kt.add_argument("--name", help="a name for it (default: from the file name)")
    kt.set_defaults(func=cmd_keys_trust)

    c = sub.add_parser("consent", help="consent grants and attestations: sign, verify, revoke, list")
    cv = c.add_subparsers(dest="consent_action", required=True, metavar="ACTION")
    from .consent import CONTEXT_NAMES, DEFAULT_AUDIENCE

    def token_flags(p: argparse.ArgumentParser) -> None:
        _home_flag(p)
        _signer_flags(p)
        p.add_argument("--likeness", required=True, metavar="FILE", help="the likeness asset (photo, avatar)")
        p.add_argument("--embedding", metavar="FILE", help="its face embedding (.npy or JSON list); its hash is signed")
        p.add_argument("--include-embedding", action="store_true", help="also put the embedding vector in the token")
        p.add_argument("--context", action="append", required=True, choices=CONTEXT_NAMES,
                       help="an allowed use context; repeatable ('facewire consent contexts' explains them)")
        p.add_argument("--expires", metavar="WHEN", help="a duration (30d, 12h) from not-before, or an ISO time "
                                                         "(default 30d)")
        p.add_argument("--not-before", metavar="WHEN", help="a duration from now or an ISO time (default now)")
        p.add_argument("--audience", default=DEFAULT_AUDIENCE, help=f"who may accept it (default {DEFAULT_AUDIENCE})")
        p.add_argument("--out", required=True, metavar="FILE", help="where to write the token ('-' = stdout)")

    g = cv.add_parser("grant", help="sign a consent grant for a likeness (as its owner)")
    token_flags(g)
    g.add_argument("--subject", required=True, help="the subject id: whose likeness this is")
    g.add_argument("--max-uses", type=int, metavar="N", help="accept it at most N times")
    g.add_argument("--issuer", help="the issuer name (default: the identity's name)")
    g.set_defaults(func=cmd_consent_grant)

    a = cv.add_parser("attest", help="sign an operator's attestation of the right to animate an unregistered photo")
    token_flags(a)
    a.add_argument("--operator", help="the operator's name (default: the identity's name)")
    a.set_defaults(func=cmd_consent_attest)

    v = cv.add_parser("verify", help="check a grant or attestation for a use context (exit 0 only when valid)")
    _home_flag(v)
    _passphrase_flags(v)
    v.add_argument("token", metavar="TOKEN_FILE", help="the token file ('-' = stdin)")
    v.add_argument("--context", required=True, choices=CONTEXT_NAMES, help="the use context asked for")
    v.add_argument("--audience", help=f"this verifier's audience (default {DEFAULT_AUDIENCE})")
    v.add_argument("--issuer", help="require this issuer name")
    v.add_argument("--issuer-key", action="append", metavar="PUBKEY", help="also trust this public key; repeatable")
    v.add_argument("--likeness", metavar="FILE", help="require that the token covers this asset")
    v.add_argument("--use", action="store_true", help="count one use (refused beyond the grant's max uses)")
    v.set_defaults(func=cmd_consent_verify, key=None)

    r = cv.add_parser("revoke", help="revoke a grant by its token file or id")
    _home_flag(r)
    _passphrase_flags(r)
    r.add_argument("token", metavar="TOKEN_FILE|JTI")
    r.add_argument("--reason", help="why (kept in the revocation list and the audit log)")
    r.set_defaults(func=cmd_consent_revoke, key=None)

    lst = cv.add_parser("list", help="grants issued or verified here, with status and uses")
    _home_flag(lst)
    lst.set_defaults(func=cmd_consent_list)

    ctx = cv.add_parser("contexts", help="the use-context vocabulary and what each means")
    ctx.set_defaults(func=cmd_consent_contexts)

    au = sub.add_parser("audit", help="the tamper-evident audit log: verify it, show it")
    av = au.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    ver = av.add_parser("verify", help="check the hash chain and signed checkpoints (exit 0 only when intact)")
    _home_flag(ver)
    ver.add_argument("--db", metavar="PATH", help="the audit log (default: the trust home's audit.db)")
    ver.add_argument("--key", action="append", metavar="PUBKEY", help="also trust this public key for checkpoints")
    ver.add_argument("--anchor", action="append", metavar="FILE",
                     help="a checkpoint saved earlier with 'audit show --checkpoints' (last line used): the log must "
                          "still contain it, which detects a rollback; repeatable")
    ver.set_defaults(func=cmd_audit_verify)
    sh = av.add_parser("show", help="list audit records")
    _home_flag(sh)
    sh.add_argument("--db", metavar="PATH", help="the audit log (default: the trust home's audit.db)")
    sh.add_argument("--kind", help="only records of this kind (session-start, consent-check, export, sign, …)")
    sh.add_argument("--last", type=int, metavar="N", help="only the last N records")
    sh.add_argument("--checkpoints", action="store_true", help="print the signed checkpoints instead (keep the "
                                                              "latest elsewhere to detect a rollback)")
    sh.set_defaults(func=cmd_audit_show)
