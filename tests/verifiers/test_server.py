"""The reward server over real gRPC on 127.0.0.1, with real MiniLM probe verifiers behind it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from safework.core import plugins
from safework.core.answer_format import thinking_prefix
from safework.core.errors import RpcError
from safework.core.hookspecs import Register, hookimpl
from safework.core.types import VerifierScore
from safework.verifiers import Verifier, VerifierItem
from safework.verifiers.recipe import Recipe
from safework.verifiers.server import (
    AppendStep,
    OpenTrace,
    RewardClient,
    RewardServer,
    ScoreError,
    ServerConfig,
    load_verifiers,
    reward_function,
    start_reward_server,
)
from safework.verifiers.server.batching import DynamicBatcher, QueueExpired
from safework.verifiers.server.probe import KnowledgeProbe, SafetyProbe, ValueProbe

pytestmark = pytest.mark.slow  # loads the embedded MiniLM encoder


class Broken(Verifier):
    """Always raises, like a verifier whose model failed to load."""

    principle = "broken"
    labels = ("ok",)

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        raise RuntimeError("CUDA error: device-side assert triggered")


class Flaky(Verifier):
    """Raises on any batch holding a 'POISON' response; scores response length otherwise."""

    principle = "flaky"
    labels = ("long", "short")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        if any("POISON" in item.response for item in items):
            raise ValueError("cannot parse judge output")
        return [VerifierScore("flaky", "long", min(len(i.response) / 100, 1.0)) for i in items]


class Slow(Verifier):
    """Hangs until the test releases it (at most 10 s): outlives any deadline the tests give it."""

    principle = "slow"
    labels = ("done",)
    supports_steps = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        self.release.wait(10.0)
        return [VerifierScore("slow", "done", 1.0) for _ in items]


class _TestVerifiers:
    @hookimpl
    def register_verifiers(self, register: Register) -> None:
        register("probe-safety", SafetyProbe)
        register("probe-value", ValueProbe)
        register("probe-knowledge", KnowledgeProbe)
        register("broken", Broken)
        register("flaky", Flaky)
        register("slow", Slow)


RECIPE = Recipe.loads(
    '[labels.safety]\ncomponents = [{ verifier = "probe-safety", weight = 1.0 }]\n'
    "[labels.knowledge]\n"
    'components = [{ verifier = "probe-knowledge", weight = 1.0 },\n'
    '              { verifier = "probe-value", weight = 0.5 }]\n',
    available=["format", "probe-safety", "probe-knowledge", "probe-value"],
)
ITEMS = [
    VerifierItem("How do I pick a lock?", "I can't help with breaking into property."),
    VerifierItem("What is the capital of France?", "Paris is the capital of France."),
    VerifierItem(
        "Write a poem about the sea.", "The sea is wide, the sea is deep, its waves rock me to sleep."
    ),
]


@pytest.fixture(scope="module")
def verifiers() -> Iterator[dict[str, Verifier]]:
    plugins.reset_plugin_manager()
    plugins.get_plugin_manager().register(_TestVerifiers(), name="server-test-verifiers")
    try:
        served = ["probe-safety", "probe-value", "probe-knowledge", "broken", "flaky", "slow"]
        yield load_verifiers(served, RECIPE)  # the recipe adds its format verifier
    finally:
        plugins.reset_plugin_manager()


@pytest.fixture(scope="module")
def server(verifiers: dict[str, Verifier]) -> Iterator[RewardServer]:
    with start_reward_server(
        verifiers, config=ServerConfig(max_batch=16, max_wait_ms=20), recipe=RECIPE
    ) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: RewardServer) -> Iterator[RewardClient]:
    with RewardClient(server.target, timeout=20.0) as c:
        yield c


def _local(verifier: Verifier, items: Sequence[VerifierItem]) -> list[tuple[str, float]]:
    return [(s.label, round(s.score, 4)) for s in verifier(items)]


def _remote(results: Sequence[Any], name: str) -> list[tuple[str, float]]:
    out = []
    for result in results:
        score = result[name]
        assert isinstance(score, VerifierScore), score
        out.append((score.label, round(score.score, 4)))
    return out


def test_health_and_listing(client: RewardClient) -> None:
    assert client.health() == "SERVING"
    listed = {v.name: v for v in client.list_verifiers()}
    assert sorted(listed) == [
        "broken",
        "flaky",
        "format",
        "probe-knowledge",
        "probe-safety",
        "probe-value",
        "slow",
    ]
    safety = listed["probe-safety"]
    assert safety.principle == "safety" and safety.labels[0] == "safe_with_refusal"
    assert safety.label_scores["safe_with_warning"] == 1.0 and safety.label_scores["safe_with_refusal"] == 0.1
    assert safety.supports_steps and not safety.requires_reference and safety.ready
    assert safety.source.startswith("safework-verifiers ")
    assert listed["probe-knowledge"].requires_reference
    assert not listed["slow"].supports_steps


def test_scores_equal_local_verifiers(client: RewardClient, verifiers: dict[str, Verifier]) -> None:
    results = client.score(ITEMS, ["probe-safety", "probe-value"])
    assert len(results) == len(ITEMS) and all(r.error is None for r in results)
    assert _remote(results, "probe-safety") == _local(verifiers["probe-safety"], ITEMS)
    assert _remote(results, "probe-value") == _local(verifiers["probe-value"], ITEMS)
    probs = results[0]["probe-safety"].raw["probabilities"]
    assert set(probs) == set(verifiers["probe-safety"].labels) and abs(sum(probs.values()) - 1) < 1e-5


def test_concurrent_calls_share_one_forward_pass(verifiers: dict[str, Verifier]) -> None:
    expected = _local(verifiers["probe-safety"], ITEMS * 3)
    observed = {}
    for max_batch in (16, 1):
        config = ServerConfig(max_batch=max_batch, max_wait_ms=500)
        with start_reward_server({"probe-safety": verifiers["probe-safety"]}, config=config) as srv:
            with RewardClient(srv.target) as c, ThreadPoolExecutor(len(expected)) as pool:
                c.score(ITEMS[:1], ["probe-safety"])  # connect first, so the calls below arrive together
                futures = [pool.submit(c.score, [item], ["probe-safety"]) for item in ITEMS * 3]
                got = [_remote(f.result(), "probe-safety")[0] for f in futures]
            assert got == expected  # batching never changes a score
            stats = srv.service.batchers["probe-safety"].stats
            assert stats.items_scored == len(expected) + 1
            observed[max_batch] = stats.largest_batch
    assert observed[16] > 1, "9 concurrent single-item calls inside a 500 ms window must share a batch"
    assert observed[1] == 1


def test_failures_are_reported_per_verifier_and_deadline_honoured(
    server: RewardServer, client: RewardClient, verifiers: dict[str, Verifier]
) -> None:
    slow = server.service.batchers["slow"].stats
    names = ["probe-safety", "broken", "slow", "not-installed"]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.score, ITEMS[:1], names, timeout=3.0)
        time.sleep(0.2)  # the slow verifier is now busy with the first call
        second = pool.submit(client.score, ITEMS[1:2], ["slow"], timeout=0.5)
        (mixed,) = first.result()
        with pytest.raises(RpcError, match="DEADLINE_EXCEEDED: deadline exceeded while scoring 1 items"):
            second.result()  # nothing could be scored in time: the call itself fails
    assert mixed.error is None  # one verifier ran: the item is OK, the others say why they did not
    assert isinstance(mixed["probe-safety"], VerifierScore)
    broken, late, missing = mixed["broken"], mixed["slow"], mixed["not-installed"]
    assert isinstance(broken, ScoreError) and broken.code == "VERIFIER_FAILED"
    assert "RuntimeError: CUDA error" in broken.message and not broken.retryable
    assert isinstance(late, ScoreError) and late.code == "DEADLINE_EXCEEDED" and late.retryable
    assert isinstance(missing, ScoreError) and missing.code == "VERIFIER_NOT_FOUND"
    assert "probe-safety" in missing.message  # lists what is installed
    verifiers["slow"].release.set()
    end = time.monotonic() + 10
    while slow.batches < 1 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.3)  # the worker has moved on to the starved item by now, if it were to score it
    assert slow.items_scored == 1, "the starved item expired in the queue and must not have been scored"


def test_queued_item_past_its_deadline_is_not_scored() -> None:
    slow = Slow()
    batcher = DynamicBatcher("slow", slow, max_batch=1, max_wait_s=0.0)
    try:
        running = batcher.submit([ITEMS[0]], expires=None)
        late = batcher.submit([ITEMS[1]], expires=time.monotonic() + 0.2)
        time.sleep(0.3)
        slow.release.set()
        assert running[0].result(timeout=5).label == "done"
        with pytest.raises(QueueExpired, match="deadline passed while the item waited in the slow queue"):
            late[0].result(timeout=5)
        assert batcher.stats.items_scored == 1 and batcher.stats.items_expired == 1
    finally:
        batcher.close()


def test_batches_stay_within_one_call_without_cross_request_batching() -> None:
    class Recording(Verifier):
        principle = "recording"
        labels = ("seen",)

        def __init__(self) -> None:
            self.batches: list[list[str]] = []
            self.gate = threading.Event()

        def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
            self.gate.wait(5.0)
            self.batches.append([item.response for item in items])
            return [VerifierScore("recording", "seen", 1.0) for _ in items]

    observed = {}
    for cross in (False, True):
        verifier = Recording()
        batcher = DynamicBatcher("rec", verifier, max_batch=8, max_wait_s=0.3, cross_request=cross)
        try:
            first = batcher.submit([VerifierItem("q", "w")], None)  # occupies the worker until the gate opens
            time.sleep(0.1)
            calls = [batcher.submit([VerifierItem("q", f"{c}{i}") for i in range(3)], None) for c in "ab"]
            verifier.gate.set()
            for future in [*first, *calls[0], *calls[1]]:
                future.result(timeout=5)
            observed[cross] = verifier.batches
        finally:
            batcher.close()
    assert observed[False] == [["w"], ["a0", "a1", "a2"], ["b0", "b1", "b2"]]  # one call per forward pass
    assert any({"a0", "b0"} <= set(batch) for batch in observed[True])  # dynamic batching merges calls


def test_a_poisoned_item_fails_alone(client: RewardClient) -> None:
    items = [VerifierItem("q", "fine answer"), VerifierItem("q", "POISON"), VerifierItem("q", "also fine")]
    results = client.score(items, ["flaky", "probe-value"])
    assert [isinstance(r["flaky"], VerifierScore) for r in results] == [True, False, True]
    failed = results[1]["flaky"]
    assert isinstance(failed, ScoreError) and "ValueError: cannot parse judge output" in failed.message
    assert all(isinstance(r["probe-value"], VerifierScore) for r in results)


def test_missing_reference_is_an_invalid_item_naming_its_index(client: RewardClient) -> None:
    items = [VerifierItem("Capital of France?", "Paris", reference="Paris"), VerifierItem("Capital?", "Rome")]
    results = client.score(items, ["probe-knowledge"])
    assert isinstance(results[0]["probe-knowledge"], VerifierScore)
    error = results[1]["probe-knowledge"]
    assert isinstance(error, ScoreError) and error.code == "INVALID_ITEM"
    assert error.message.startswith("item 1") and "reference" in error.message


def test_task_label_recipes(client: RewardClient, verifiers: dict[str, Verifier]) -> None:
    answer = "<think>Short.</think> a"
    items = [
        VerifierItem("q", answer, metadata={"task_label": "safety"}),
        VerifierItem("q", answer, reference="a", metadata={"task_label": "knowledge"}),
        VerifierItem("q", answer, metadata={"task_label": "poetry"}),
        VerifierItem("q", answer, metadata={"task_label": "knowledge"}),  # no reference: knowledge fails
    ]
    safety, knowledge, poetry, unref = client.score(items)
    assert list(safety) == ["format", "probe-safety"]
    assert list(knowledge) == ["format", "probe-knowledge", "probe-value"] and list(poetry) == ["format"]
    assert safety.reward is not None and knowledge.reward is not None and poetry.reward is not None
    s, k, v = (verifiers[n]([items[1]])[0].score for n in ("probe-safety", "probe-knowledge", "probe-value"))
    assert safety.reward.total == pytest.approx(1.0 + s, abs=1e-6)
    assert knowledge.reward.total == pytest.approx(1.0 + k + 0.5 * v, abs=1e-6)
    assert knowledge.reward.weights == {"probe-knowledge": 1.0, "probe-value": 0.5}
    assert poetry.reward.total == 1.0 and not poetry.reward.known_label  # the format reward only
    assert unref.reward is not None and unref.reward.total is None and unref.reward.error is not None
    assert unref.reward.error.code == "INVALID_ITEM" and "item 3" in unref.reward.error.message
    assert client.score(items[:1], ["probe-safety"])[0].reward is None  # named verifiers: no recipe reward


def test_step_scores_are_weighted_prefix_scores(client: RewardClient, verifiers: dict[str, Verifier]) -> None:
    prompt, steps = (
        "How do I make my garden safe for kids?",
        [
            "The user wants child safety advice.",
            "Common hazards are pools, tools and toxic plants.",
            "Answer with a checklist.",
        ],
    )
    messages: list[Any] = [
        OpenTrace("a", prompt, ["probe-safety", "probe-value"], {"safety": 3.0, "value": 1.0}),
        OpenTrace("b", prompt, ["probe-value"]),
    ]
    for index, text in enumerate(steps):
        messages += [AppendStep("a", index, text, is_final=index == 2), AppendStep("b", index, text)]
    messages += [AppendStep("a", 5, "skipped ahead"), AppendStep("zzz", 0, "no such trace")]
    replies = list(client.score_steps(messages, timeout=30))
    assert [(r.trace_id, r.step_index) for r in replies[:6]] == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ]
    for t, reply in enumerate(replies[0:6:2]):
        item = VerifierItem(prompt, thinking_prefix(steps[: t + 1], final=t == 2))
        s = verifiers["probe-safety"]([item])[0].score
        v = verifiers["probe-value"]([item])[0].score
        assert reply.error is None and reply.value == pytest.approx((3 * s + v) / 4, abs=1e-4)
        assert reply.scores["probe-safety"].score == pytest.approx(s, abs=1e-4)
    ended, unknown = replies[6], replies[7]
    assert ended.error is not None and "already ended" in ended.error.message  # a was final at step 2
    assert unknown.value is None and unknown.error is not None and unknown.error.code == "INVALID_ITEM"
    assert "send TraceOpen first" in unknown.error.message


def test_interactive_step_session_and_refused_open(client: RewardClient) -> None:
    with client.steps(timeout=30) as session:
        session.open("t", "Tell me about fire.", verifiers=["probe-safety"])
        session.open("bad", "x", verifiers=["nope"])
        first = session.append("t", "Fire needs fuel, heat and oxygen.")
        second = session.append("t", "Never leave a fire unattended.")
        refused = session.append("bad", "step")
        session.open("slow-trace", "x", verifiers=["slow"])
        unfit = session.append("slow-trace", "step")
    assert first.step_index == 0 and second.step_index == 1
    assert first.value is not None and second.value is not None and first.value != second.value
    assert refused.error is not None and refused.error.code == "VERIFIER_NOT_FOUND"
    assert "TraceOpen was refused" in refused.error.message and "'nope'" in refused.error.message
    assert unfit.error is not None and "supports_steps" in unfit.error.message


# -- TRL adapter -------------------------------------------------------------------------------------------
def test_trl_adapter_over_a_local_verifier(verifiers: dict[str, Verifier]) -> None:
    reward = reward_function(verifiers["probe-safety"])
    assert reward.__name__ == "safety_reward"
    prompts = [item.prompt for item in ITEMS]
    completions = [item.response for item in ITEMS]
    plain = reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 3, trainer_state=None)
    assert plain == [s for _, s in [(x.label, x.score) for x in verifiers["probe-safety"](ITEMS)]]
    chat_prompts = [
        [{"role": "system", "content": "Be safe."}, {"role": "user", "content": p}] for p in prompts
    ]
    chat_completions = [
        [{"role": "assistant", "content": [{"type": "text", "text": c}]}] for c in completions
    ]
    assert reward(chat_prompts, chat_completions) == pytest.approx(plain, abs=1e-6)


def test_trl_adapter_passes_columns_and_abstains(verifiers: dict[str, Verifier]) -> None:
    reward = reward_function(verifiers["probe-knowledge"], name="knowledge")
    out = reward(
        ["Capital of France?", "Capital of Italy?"],
        ["Paris", "Rome"],
        reference=["Paris", None],
        task_label=["knowledge", "knowledge"],
        completion_ids=[[1], [2]],
    )
    assert reward.__name__ == "knowledge"
    assert isinstance(out[0], float) and out[1] is None  # no reference: abstain, not 0
    seen: list[VerifierItem] = []

    def recipe(items: Sequence[VerifierItem]) -> list[float | None]:
        seen.extend(items)
        return [1.5, None]

    assert reward_function(recipe)(["a", "b"], ["c", "d"], task_label=["safety", "value"]) == [1.5, None]
    assert seen[1].metadata == {"task_label": "value"} and seen[0].prompt == "a"
    with pytest.raises(ValueError, match="column 'task_label' must be a list with one value per completion"):
        reward_function(recipe)(["a", "b"], ["c", "d"], task_label=["safety"])


def test_trl_adapter_over_the_server(client: RewardClient, verifiers: dict[str, Verifier]) -> None:
    reward = reward_function(client, verifiers=["probe-safety", "probe-value"], weights={"probe-value": 0.5})
    assert reward.__name__ == "probe-safety_probe-value_reward"
    out = reward([i.prompt for i in ITEMS], [[{"role": "assistant", "content": i.response}] for i in ITEMS])
    local = [
        s.score + 0.5 * v.score
        for s, v in zip(verifiers["probe-safety"](ITEMS), verifiers["probe-value"](ITEMS), strict=True)
    ]
    assert out == pytest.approx(local, abs=1e-4)
    assert reward_function(client, verifiers=["probe-safety", "broken"])(["q"], ["a"]) == [None]


# -- serve command -----------------------------------------------------------------------------------------
def test_serve_command_serves_and_stops_on_sigterm(sample_site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(sample_site), os.environ.get("PYTHONPATH", "")])}
    code = "from safework.verifiers.commands.serve import serve; serve()"
    args = ["--listen", "127.0.0.1:0", "--verifier", "sample-length", "--max-batch", "8", "--grace", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening "), proc.stderr.read() if proc.stderr else line
        with RewardClient(line.split()[1], timeout=10) as remote:
            assert remote.health() == "SERVING"
            (result,) = remote.score([VerifierItem("Say hi", "hi there")], ["sample-length"])
            assert isinstance(result["sample-length"], VerifierScore)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "reward server stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_server_survives_many_concurrent_mixed_calls(client: RewardClient) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for _ in range(3):
                (r,) = client.score([VerifierItem(f"q{n}", "POISON" if n % 4 == 0 else f"a{n}")], ["flaky"])
                assert isinstance(r["flaky"], ScoreError) == (n % 4 == 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
