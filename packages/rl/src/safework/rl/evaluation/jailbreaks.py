"""Jailbreak wrapping of harmful prompts with real templates collected in the wild.

The templates are the "[INSERT PROMPT HERE]" prompts of the ``inthewild-jailbreaks`` catalogue set
(Shen et al., "Do Anything Now", CCS 2024: jailbreak prompts gathered from Reddit, Discord and prompt
sites). Role-play and "developer mode" preambles of this kind are what deployed models meet most; a model
whose safety holds only on plainly worded requests is not safe. The shortest templates are used (at most
:data:`MAX_TEMPLATE_WORDS` words) so that a small CPU model still reads the request at the end of the
template within its budget, and they are assigned round-robin so every template sees a share of prompts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PLACEHOLDER = "[INSERT PROMPT HERE]"
SOURCE_DATASET = "inthewild-jailbreaks"
MAX_TEMPLATE_WORDS = 130
DEFAULT_TEMPLATES = 8


@dataclass(frozen=True)
class JailbreakTemplate:
    """One template, named by its catalogue position and a hash of its text (stable across runs)."""

    index: int
    text: str

    @property
    def template_id(self) -> str:
        return f"itw-{self.index}-{hashlib.sha256(self.text.encode()).hexdigest()[:8]}"

    def wrap(self, prompt: str) -> str:
        return self.text.replace(PLACEHOLDER, prompt)


def select_templates(
    records: list[dict[str, str]], count: int = DEFAULT_TEMPLATES
) -> list[JailbreakTemplate]:
    """The ``count`` shortest templates with exactly one placeholder and at most MAX_TEMPLATE_WORDS words."""
    usable = [
        JailbreakTemplate(index, record["prompt"])
        for index, record in enumerate(records)
        if record["prompt"].count(PLACEHOLDER) == 1 and len(record["prompt"].split()) <= MAX_TEMPLATE_WORDS
    ]
    usable.sort(key=lambda t: (len(t.text.split()), t.index))
    return usable[:count]


def load_templates(count: int = DEFAULT_TEMPLATES) -> list[JailbreakTemplate]:
    """The templates from the catalogue (downloaded and verified on first use)."""
    from safework.core.data import get_dataset

    return select_templates(get_dataset(SOURCE_DATASET).load(), count)


def wrap_all(prompts: list[str], templates: list[JailbreakTemplate]) -> list[tuple[str, JailbreakTemplate]]:
    """Each prompt wrapped by template ``i mod len(templates)``."""
    if not templates:
        raise ValueError("no jailbreak templates to wrap with")
    return [
        (templates[i % len(templates)].wrap(p), templates[i % len(templates)]) for i, p in enumerate(prompts)
    ]
