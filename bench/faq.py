"""Typed questions against flows/faq.yaml: what matching costs, how right it is, and (--tune)
where the answer/suggest/hand-over bands should sit.

    python bench/faq.py           # p99 per question at 300 entries; the held-out evaluation
    python bench/faq.py --tune    # leave-one-out sweep of the bands on the phrasings alone

The held-out set (tests/data/faq_eval.yaml) is only ever measured, never tuned on: --tune reads
flows/faq.yaml's phrasings (each left out in turn) and DEV_OUT_OF_SCOPE below.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from kvisa.bot.content import asked  # noqa: E402
from kvisa.bot.content.asked import Bands, FaqIndex, evaluate  # noqa: E402
from kvisa.bot.content.loader import load_flows  # noqa: E402
from kvisa.bot.content.model import FaqEntry, PersonTopic  # noqa: E402

# Questions no entry answers, written for tuning (the evaluation has its own, unseen here).
DEV_OUT_OF_SCOPE = {
    "en": [
        "how much is the visa fee",
        "can I bring my kids along",
        "my application was rejected, what now",
        "is the weather nice in shanghai in march",
        "do you speak french",
        "hello",
        "thank you very much",
        "what is the minimum salary",
        "can I get a chinese driver's license",
        "how do I open a bank account",
        "do I need to speak chinese",
        "can I apply in shenzhen instead",
        "can I get permanent residency later",
        "what's the status of my case",
        "can I change my tourist visa into a k visa",
        "I graduate next summer, can I apply now?",
        "does it include health insurance",
        "who are you",
        "best restaurants near pudong",
        "schengen visa requirements",
    ],
    "zh": [
        "签证费多少钱",
        "可以带孩子一起来吗",
        "被拒签了怎么办",
        "上海三月天气怎么样",
        "你好",
        "谢谢",
        "最低工资要求是多少",
        "能在北京办吗",
        "以后可以拿绿卡吗",
        "我的申请到哪一步了",
        "旅游签能转K签吗",
        "还没毕业能申请吗",
        "社保怎么交",
        "国外驾照能换吗",
        "银行卡怎么办",
        "要考汉语吗",
        "你是机器人吗",
        "浦东有什么好吃的",
        "美国签证怎么办",
        "申根签证要什么材料",
    ],
}


def questions_of(path: Path) -> list[dict[str, str]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["questions"])


def leave_one_out(flows_dir: Path) -> list[tuple[FaqIndex, dict[str, str]]]:
    """Each phrasing asked of an index built without it (every entry keeps at least one)."""
    flows = load_flows(flows_dir)
    targets: list[FaqEntry | PersonTopic] = [*flows.faq, *flows.to_a_person]
    cases = []
    for n, target in enumerate(targets):
        for lang, phrasings in target.asked.items():
            for k, phrasing in enumerate(phrasings):
                kept = {**target.asked, lang: phrasings[:k] + phrasings[k + 1 :]}
                others = targets[:n] + [replace(target, asked=kept)] + targets[n + 1 :]
                index = FaqIndex(
                    [t for t in others if isinstance(t, FaqEntry)],
                    [t for t in others if isinstance(t, PersonTopic)],
                )
                expect = target.id if isinstance(target, FaqEntry) else "out_of_scope"
                cases.append((index, {"lang": lang, "text": phrasing, "expect": expect}))
    whole = flows.faq_index
    for lang, texts in DEV_OUT_OF_SCOPE.items():
        cases += [(whole, {"lang": lang, "text": t, "expect": "out_of_scope"}) for t in texts]
    return cases


def tune(flows_dir: Path) -> None:
    # Each phrasing is cut into words once, not once per left-out index (bench only).
    asked.words = functools.lru_cache(maxsize=None)(asked.words)
    started = time.perf_counter()
    cases = leave_one_out(flows_dir)
    print(f"{len(cases)} leave-one-out cases built in {time.perf_counter() - started:.1f} s")
    rows = []
    grid = itertools.product(
        (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
        (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9),
        (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
    )
    for coverage, margin, suggest in grid:
        bands = Bands(coverage, margin, suggest)
        rows.append((bands, evaluate(cases, bands)))
    # The bounds first (>= 95% of out-of-scope handed over, <= 2% confidently wrong),
    # then as many right answers as those allow.
    fit = [r for r in rows if r[1].handed_over >= 0.95 and r[1].confidently_wrong <= 0.02]
    fit.sort(key=lambda row: -row[1].answered_right)
    print(f"{len(fit)} of {len(rows)} bands within the bounds; the best:")
    for bands, figures in fit[:6]:
        print(f"  {bands}  {figures.summary()}")
    current = evaluate(cases)
    print(f"shipped {asked.BANDS}  {current.summary()}")


def benchmark(flows_dir: Path, entries: int = 300) -> None:
    flows = load_flows(flows_dir)
    base = list(flows.faq)
    grown = [
        replace(
            entry,
            id=f"{entry.id}_{copy}",
            asked={lang: tuple(f"{p} {copy}" for p in ps) for lang, ps in entry.asked.items()},
        )
        for copy in range(entries // len(base) + 1)
        for entry in base
    ][:entries]
    tracemalloc.start()
    started = time.perf_counter()
    index = FaqIndex(grown, flows.to_a_person)
    built = time.perf_counter() - started
    memory = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    questions = [q["text"] for q in questions_of(ROOT / "tests/data/faq_eval.yaml")]
    for text in questions[:20]:  # warm up
        index.match(text)
    costs = []
    for _ in range(5):
        for text in questions:
            started = time.perf_counter()
            index.match(text)
            costs.append((time.perf_counter() - started) * 1000)
    print(
        f"{len(grown)} entries, {sum(len(p) for e in grown for p in e.asked.values())} phrasings:"
        f" index built in {built * 1000:.0f} ms, peak {memory / 1e6:.1f} MB;"
        f" per question p50 {percentile(costs, 0.5):.2f} ms, p99 {percentile(costs, 0.99):.2f} ms"
        f" ({len(costs)} questions)"
    )


def held_out(flows_dir: Path) -> None:
    index = load_flows(flows_dir).faq_index
    questions = questions_of(ROOT / "tests/data/faq_eval.yaml")
    for lang in ("en", "zh"):
        mine = [(index, q) for q in questions if q["lang"] == lang]
        print(f"held out, {lang}: {evaluate(mine).summary()}")
    print(f"held out, both: {evaluate([(index, q) for q in questions]).summary()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="sweep the bands (leave one out)")
    parser.add_argument("--flows", type=Path, default=ROOT / "flows")
    args = parser.parse_args()
    if args.tune:
        tune(args.flows)
    else:
        benchmark(args.flows)
        held_out(args.flows)
