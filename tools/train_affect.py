"""Train the text-affect model shipped as ``src/facewire/data/affect_text.npz`` (`expression.affect_model`).

Multinomial logistic regression with an L2 penalty, fitted by L-BFGS from zeros on the sentences in
``tools/affect_corpus/*.tsv`` (columns: label, role, sentence). The penalty is chosen by 5-fold
cross-validation on that corpus alone (folds by row index, so the run is deterministic); the
evaluation tables in ``tests/expression/data`` are printed for information and never used to
choose anything. Prints the model's SHA-256 to pin in `affect_model.DEFAULT_MODEL_SHA256`.

    .venv/bin/python tools/train_affect.py [--out src/facewire/data/affect_text.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facewire.atomic import atomic_write
from facewire.bench.affect import load_rows
from facewire.expression import affect_model
from facewire.expression.affect import analyse_rules
from facewire.expression.emotion import EMOTIONS

CORPUS = ROOT / "tools" / "affect_corpus"
TABLES = ROOT / "tests" / "expression" / "data"
PENALTIES = (0.03, 0.1, 0.3, 1.0)
"""Candidate L2 strengths (× the per-sentence mean loss's scale): chosen by cross-validation."""
RULE_PENALTY_SCALE = 0.1
"""The dense rule features are few and informative: they are penalised 10× less than hashed text."""


def design(rows) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(sparse hashed text features, dense rule features) of (sentence, label, role) rows."""
    data, cols, ptr, dense = [], [], [0], []
    for sentence, _, role in rows:
        s, d = affect_model.features(sentence, role, analyse_rules(sentence, role))
        cols += list(s.keys())
        data += list(s.values())
        ptr.append(len(cols))
        dense.append(d)
    x = sparse.csr_matrix((data, cols, ptr), shape=(len(rows), 1 << affect_model.HASH_BITS))
    return x, np.array(dense)


def fit(x: sparse.csr_matrix, d: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, ...]:
    """(used feature ids, W_text, W_rule, bias) minimising mean cross-entropy + L2."""
    used = np.unique(x.indices)
    xs = x[:, used].tocsr()
    n, f, k, r = xs.shape[0], xs.shape[1], len(EMOTIONS), d.shape[1]
    onehot = np.eye(k)[y]

    def unpack(theta):
        return theta[:f * k].reshape(f, k), theta[f * k:f * k + r * k].reshape(r, k), theta[f * k + r * k:]

    def loss(theta):
        wt, wr, b = unpack(theta)
        z = xs @ wt + d @ wr + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        g = (p - onehot) / n
        value = -(onehot * logp).sum() / n + 0.5 * penalty / n * ((wt ** 2).sum() + RULE_PENALTY_SCALE * (wr ** 2).sum())
        grad = np.concatenate([(xs.T @ g + penalty / n * wt).ravel(), (d.T @ g + penalty / n * RULE_PENALTY_SCALE * wr).ravel(),
                               g.sum(axis=0)])
        return value, grad

    theta0 = np.zeros(f * k + r * k + k)
    result = optimize.minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    wt, wr, b = unpack(result.x)
    return used, wt, wr, b


def predict(model: affect_model.TextAffectModel, x: sparse.csr_matrix, d: np.ndarray) -> np.ndarray:
    out = []
    for i in range(x.shape[0]):
        row = x.getrow(i)
        out.append(int(np.argmax(model.logits(dict(zip(row.indices.tolist(), row.data.tolist())), d[i]))))
    return np.array(out)


def model_of(used, wt, wr, b, meta) -> affect_model.TextAffectModel:
    keep = np.abs(wt).max(axis=1) > 1e-6
    return affect_model.TextAffectModel(used[keep].astype(np.int64), wt[keep].astype(np.float32).astype(np.float64),
                                        wr.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64),
                                        meta)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "facewire" / "data" / affect_model.DEFAULT_MODEL)
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.tsv"))
    rows = [row for path in files for row in load_rows(path)]
    if not rows:
        print(f"no training sentences in {CORPUS}", file=sys.stderr)
        return 2
    y = np.array([EMOTIONS.index(label) for _, label, _ in rows])
    print(f"corpus: {len(rows)} sentences from {', '.join(p.name for p in files)}")
    x, d = design(rows)
    folds = np.arange(len(rows)) % 5
    best = None
    for penalty in PENALTIES:
        right = 0
        for k in range(5):
            tr, te = folds != k, folds == k
            m = model_of(*fit(x[tr], d[tr], y[tr], penalty), {})
            right += int((predict(m, x[te], d[te]) == y[te]).sum())
        print(f"  L2 {penalty:5.2f}: 5-fold cross-validated agreement {right / len(rows):.1%}")
        if best is None or right > best[1]:
            best = (penalty, right)
    penalty = best[0]
    rules_right = sum(analyse_rules(s, r).emotion == label for s, label, r in rows)
    print(f"chosen L2 {penalty}; the rules alone on the corpus: {rules_right / len(rows):.1%}")
    model = model_of(*fit(x, d, y, penalty), {"penalty": str(penalty), "sentences": str(len(rows)),
                                              "corpus": " ".join(p.name for p in files)})
    for table in sorted(TABLES.glob("affect_*.tsv")):
        trows = load_rows(table)
        tx, td = design(trows)
        ty = np.array([EMOTIONS.index(label) for _, label, _ in trows])
        rules = np.mean([analyse_rules(s, r).emotion == label for s, label, r in trows])
        print(f"  {table.name:22s} model {np.mean(predict(model, tx, td) == ty):6.1%}   rules {rules:6.1%}")
    blob = model.to_bytes()
    with atomic_write(args.out, "wb") as f:
        f.write(blob)
    print(f"wrote {args.out} ({len(blob) / 1024:.0f} KiB, {len(model.rows)} text features); "
          f"SHA-256 {hashlib.sha256(blob).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
