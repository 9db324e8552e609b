"""Evaluation of policies and of the RL setup: the ruler every SafeLadder training claim is measured with.

- the harness (``safework rl eval``; :mod:`harness`): a model's safety, over-refusal, knowledge and math on
  held-out prompts, judged by the project's verifiers and by rules that share no weights with them;
- the reward-gaming probes (:mod:`probes`): checks that must pass before a trainer trusts its reward.

Modules: ``suites`` (which prompts), ``jailbreaks`` (templates), ``decodings`` (how the model is asked),
``answers`` + ``cache`` (resumable batched generation), ``judges``, ``metrics`` + ``stats`` (rates and
intervals), ``report`` (json, markdown, chart), ``compare`` (two runs), ``cli``.
"""
