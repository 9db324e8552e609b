"""How credid should rank the candidates of a slot: hit counts against weighted scores, on saved texts.

Usage: .venv/bin/python benchmarks/watermark_candidate_scoring.py DIR [--key-file DIR/key.json]

DIR is a ``safework watermark evaluate`` output folder (``results.json`` for the settings, ``texts.jsonl``
for the texts and payloads). Every text is re-extracted once; each rule then picks, per slot, the candidate
with the highest score, and the script prints bit accuracy and exact success per rule:

* ``count``: hits (what the decoder does);
* ``llr`` / ``llr/2`` / ``llr/4``: the log-likelihood ratio of the observed token if the proxy were the model,
  ``delta * hit - log(1 + g * (e^delta - 1))`` with g the proxy mass of the permutation's green list, and
  the same with the normaliser's weight halved or quartered;
* ``info``: hits weighted by ``-log(gamma)`` (gamma = the position's null hit rate);
* ``z``: ``(hit - gamma) / sqrt(gamma (1 - gamma))`` per position.

The green mass g treats the proxy's mass outside its top K as spread evenly along the permutation, as the
kernels do. A study script (torch only, slow): the decoder itself uses counts.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from safework.core.models import load_causal_lm
from safework.core.ops.prf import siphash24, siphash24_suffix
from safework.core.types import WatermarkPayload
from safework.watermark.engine import load_watermarker
from safework.watermark.hashing import TAG_INDEX, TAG_PERM, tagged, uniform01, unsigned_mod
from safework.watermark.keys import WatermarkKey
from safework.watermark.metrics import bit_accuracy
from safework.watermark.proxy import ProxyOutput
from safework.watermark.schemes.credid import CredIDScheme

OPTIONS = ("delta", "tau", "permutations", "window", "top_k", "proxy_layers", "context_width")


def green_mass(scheme: CredIDScheme, ctx: torch.Tensor, q: ProxyOutput) -> torch.Tensor:
    """(T, P) proxy mass of the green list of every (position, permutation)."""
    t, k = q.top_ids.shape
    p, tau = scheme.permutations, scheme.tau
    prefix = tagged(TAG_PERM, ctx)
    words = torch.cat(
        [
            prefix[:, None, None, :].expand(t, p, k, prefix.shape[1]),
            torch.arange(p)[None, :, None, None].expand(t, p, k, 1),
            q.top_ids[:, None, :, None].expand(t, p, k, 1),
        ],
        dim=3,
    ).reshape(-1, prefix.shape[1] + 2)
    u = uniform01(siphash24(scheme.prf, words.contiguous())).view(t, p, k)
    order = torch.argsort(u, dim=2)
    u_sorted = u.gather(2, order)
    mass = q.top_probs.double()[:, None, :].expand(t, p, k).gather(2, order)
    cumulative = mass.cumsum(2)
    rest = q.rest.double()[:, None, None]
    top_green = ((cumulative + rest * u_sorted) > tau).double() * mass
    # Between consecutive tops the spread-out rest is green past the point where the running mass crosses tau.
    before = torch.cat([torch.zeros(t, p, 1, dtype=torch.float64), cumulative], 2)
    low = torch.cat([torch.zeros(t, p, 1, dtype=torch.float64), u_sorted], 2)
    high = torch.cat([u_sorted, torch.ones(t, p, 1, dtype=torch.float64)], 2)
    crossing = torch.where(
        rest > 0, (tau - before) / rest.clamp(min=1e-300), torch.where(before > tau, -1.0, 2.0)
    )
    spread = (high - torch.maximum(low, crossing)).clamp(min=0).sum(2)
    return top_green.sum(2) + rest[:, :, 0] * spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--key-file", type=Path, default=None)
    args = parser.parse_args()

    settings = json.loads((args.dir / "results.json").read_text())["settings"]
    options = {k: settings[k] for k in OPTIONS if k in settings}
    options["proxy_vocab"] = settings.get("proxy_vocab", 0)  # runs before the cut head used the full one
    key = WatermarkKey.from_file(args.key_file or args.dir / "key.json")
    bits = settings["bits"]
    wm = load_watermarker(
        "credid", key, bits, model=load_causal_lm("default"), symbol_bits=settings["symbol_bits"], **options
    )
    scheme = wm.scheme
    assert isinstance(scheme, CredIDScheme)
    layout, delta = wm.layout, scheme.delta
    rows = [json.loads(line) for line in (args.dir / "texts.jsonl").read_text().splitlines() if line]
    rules = ("count", "llr", "llr/2", "llr/4", "info", "z")
    accuracy: dict[str, list[float]] = {r: [] for r in rules}
    exact = dict.fromkeys(rules, 0)
    for row in rows:
        ids = wm.tokenize(row["text"])
        payload = WatermarkPayload(int(row["payload"], 16), bits)
        ctx, slots, scored, table, null = scheme._scored(ids)
        pos = scored.nonzero().flatten()
        g = green_mass(scheme, ctx[pos], scheme.proxy.along(ids, pos))
        index_rows = tagged(TAG_INDEX, ctx[pos])
        r = unsigned_mod(siphash24_suffix(scheme.prf, index_rows, layout.candidates), g.shape[1])
        hits = table[pos].gather(1, r).double()
        norm = torch.log1p(g.gather(1, r) * (math.exp(delta) - 1))
        gamma = null[pos].double()[:, None]
        scores = {
            "count": hits,
            "llr": delta * hits - norm,
            "llr/2": delta * hits - 0.5 * norm,
            "llr/4": delta * hits - 0.25 * norm,
            "info": hits * -torch.log(gamma),
            "z": (hits - gamma) / torch.sqrt(gamma * (1 - gamma)),
        }
        for rule, score in scores.items():
            per_slot = torch.zeros(layout.slots, layout.candidates, dtype=torch.float64)
            per_slot.index_add_(0, slots[pos], score)
            decoded, _ = layout.decode(per_slot.argmax(dim=1).tolist())
            accuracy[rule].append(bit_accuracy(payload.value, decoded.value, bits))
            exact[rule] += decoded == payload
    print(f"{len(rows)} texts, {bits} bits, {layout.slots} slots x {layout.symbol_bits} bits, {args.dir}")
    for rule in rules:
        mean = sum(accuracy[rule]) / len(rows)
        print(f"  {rule:<6} bit accuracy {mean:.4f}  exact {exact[rule] / len(rows):.2f}")


if __name__ == "__main__":
    main()
