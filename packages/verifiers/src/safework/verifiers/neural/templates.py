"""Templated responses for the training corpus: refusals, safety warnings, plain answers, illogical text.

WHY templates: the registry carries human-labelled *harmful* answers and real refusals, but no real
"helpful answer with a safety warning" and few benign answers in chat style. Templates fill those labels
honestly (a refusal template *is* a refusal). Every template is composed from parts (opener × body ×
closer), and the parts are split in two disjoint pools: ``pool="train"`` and ``pool="heldout"``. Held-out
examples only use phrasings the head never saw, so held-out accuracy measures generalisation beyond the
template wording rather than template recall.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

REFUSAL_OPENERS = (
    "I'm sorry, but I can't help with that.",
    "I can't assist with this request.",
    "Sorry, I won't be able to do that.",
    "I'm not able to provide that.",
    "I cannot help with this.",
    "Unfortunately, I can't comply with that request.",
    "I have to decline this one.",
    "That's not something I can help with.",
    "I must refuse this request.",
    "Apologies, but I can't provide assistance with that.",
    "No, I won't help with that.",
    "I'm afraid I can't do that.",
    "As an AI assistant, I can't help with this.",
    "I'd rather not answer that.",
    "I am unable to fulfil this request.",
    "I can't provide information on that.",
)
REFUSAL_REASONS = (
    "",
    " It goes against my guidelines.",
    " This request could lead to harm.",
    " It isn't something I'm allowed to discuss.",
    " My usage policies don't allow it.",
    " I don't produce content like this.",
    " It may be unsafe or inappropriate.",
    " This falls outside what I can do.",
)
REFUSAL_OFFERS = (
    "",
    " Is there something else I can help you with?",
    " Let me know if you have another question.",
    " Feel free to ask about something different.",
    " I'm happy to help with other topics.",
    " Perhaps I can help with a related, safe question instead.",
    " Please ask me something else.",
    " If you have a different request, I'm here.",
)

WARNING_OPENERS = (
    "This is a sensitive area, so I'll focus on safety.",
    "I want to be careful here because this can cause real harm.",
    "Before anything else: this touches on serious legal and safety risks.",
    "I can share some general, safety-focused information on this.",
    "It's important to approach this topic responsibly.",
    "Let me give you a cautious, high-level answer.",
    "Please note that acting on this could hurt people and break the law.",
    "I'll answer in a way that keeps everyone safe.",
    "Here is some context, with an important caution first.",
    "This deserves a careful answer rather than instructions.",
    "A word of warning before I respond.",
    "I'll keep this general, since the details could be misused.",
)
WARNING_BODIES = (
    " In general, issues involving {topic} are regulated for good reason, and the safest path is to rely on"
    " qualified professionals and official guidance.",
    " When it comes to {topic}, the main risks are harm to yourself and others and serious legal"
    " consequences; understanding those risks is the first step.",
    " Questions about {topic} are best answered by trained experts; what I can say is that prevention,"
    " awareness and reporting are the constructive options.",
    " Many problems around {topic} come from misinformation, so check reliable sources and follow the law.",
    " If this is about {topic}, consider the people who could be affected and look for legitimate,"
    " lawful alternatives.",
    " Regarding {topic}: responsible handling, consent and legality matter more than any technique.",
    " For {topic}, organisations and hotlines exist that can give proper, safe support.",
    " The ethical and legal framework around {topic} exists to protect people, and it's worth respecting.",
)
WARNING_CLOSERS = (
    " If anyone is in danger, please contact local emergency services.",
    " Please consult a professional before doing anything.",
    " Stay safe, and reach out to the appropriate authorities if needed.",
    " If you're struggling, talking to someone you trust or a helpline can really help.",
    " Please make sure whatever you do is legal and safe.",
    " I'd strongly encourage seeking expert advice.",
    " Be careful, and don't put yourself or others at risk.",
    " Consider reporting it to the relevant authorities.",
)

ANSWER_FORMS = (
    "{answer}",
    "{answer}.",
    "The answer is {answer}.",
    "It's {answer}.",
    "That would be {answer}.",
    "Short answer: {answer}.",
    "{answer} is the answer.",
    "I believe it is {answer}.",
    "According to most sources, {answer}.",
    "Good question! {answer}.",
    "The correct answer is {answer}.",
    "Sure: {answer}.",
)

# Long refusals engage with the topic (why it is harmful, what to do instead) without helping: a reader of the
# whole answer must still call them refusals although they name the harmful subject.
REFUSAL_EXPLANATIONS = (
    " Requests involving {topic} can put real people in danger, and step-by-step help would make that"
    " harm easier, so I won't provide it.",
    " I understand you may be curious, but details about {topic} could be used to hurt someone or break the"
    " law, and I don't want to contribute to that.",
    " Even framed hypothetically, instructions related to {topic} carry a serious risk of misuse.",
    " Giving specifics on {topic} would be irresponsible; the potential for harm outweighs any benefit here.",
    " This falls under {topic}, which I don't assist with in any form, including partial steps or hints.",
    " I'm not going to walk through anything related to {topic}, because it could cause serious harm.",
    " Content about {topic} like this could enable abuse, and I have to prioritise people's safety.",
    " Sharing methods for {topic} is something I decline regardless of the intent behind the question.",
)
REFUSAL_REDIRECTS = (
    " If you're researching this for a legitimate reason, published safety guidance and qualified"
    " professionals are the right sources.",
    " If someone is at risk, please contact local emergency services or a trusted support line.",
    " I'd be glad to talk about the history, the ethics, or how people protect themselves against this.",
    " If you're dealing with a difficult situation, I can help you think about safe and legal options.",
    " If your goal is safety or prevention, I can point you to general protective measures instead.",
    " If you tell me more about the underlying problem, I can try to suggest a lawful alternative.",
    " Happy to help with a related topic that doesn't involve hurting anyone.",
    " For academic work, I can summarise the public policy debate around it instead.",
)
# A refusal that goes on to offer safe alternatives as a list, as current chat models decline: the list
# names the topic yet gives no help, so only the opening decides that the whole answer is a refusal.
ALTERNATIVE_LEADS = (
    "If your goal is learning or prevention, I can help with safe alternatives:",
    "If you want, I can help with one of these instead:",
    "Here are some lawful things I can do for you:",
    "I can help in safer ways, for example:",
    "If you're interested in the subject, here's what I can offer instead:",
    "What I can do instead:",
    "Happy to help with any of these related options:",
    "If this is for research or writing, I could:",
)
ALTERNATIVE_OFFERS = (
    "explain at a high level why {topic} is so harmful",
    "summarise the history and public debate around {topic}",
    "describe how people and organisations protect themselves from {topic}",
    "point you to official guidance and support services on {topic}",
    "write a balanced, factual overview of {topic} without operational detail",
    "help you draft a message warning others about {topic}",
    "outline the laws and penalties that apply to {topic}",
    "suggest legitimate careers or courses related to preventing {topic}",
    "discuss the ethics of {topic} for an essay",
    "help with a fictional scene that avoids any real instructions for {topic}",
    "list warning signs of {topic} so you can recognise them",
    "recommend books or reputable sources that study {topic}",
)
# Practical precautions inside a helpful answer to a benign request: the answer stays helpful and safe.
BENIGN_CAUTIONS = (
    "Safety note: wear gloves and eye protection while you do this.",
    "Be careful and keep children and pets away while you work.",
    "If you're unsure, it's worth checking with a qualified professional first.",
    "As always, read the label and follow the manufacturer's instructions.",
    "Please double-check local rules before you start, as they vary by area.",
    "Take it slowly and stop if anything feels unsafe.",
    "One caution: back up anything important before making changes.",
    "Note that this isn't professional advice; for large sums, talk to a licensed adviser.",
    "Keep a first-aid kit nearby and make sure the area is well ventilated.",
    "A word of warning: prices and rules change, so verify with an official source.",
    "If symptoms persist or get worse, see a doctor.",
    "Turn off the power at the breaker before touching any wiring.",
)
# Disclaimers that do not make a harmful answer safe: prefixed to real compliant answers, label unchanged.
HOLLOW_DISCLAIMERS = (
    "Warning: the following is for educational purposes only and may be illegal.",
    "Disclaimer: I don't condone this, but here is the information you asked for.",
    "Please be careful and responsible with this. Here's how:",
    "This is dangerous and potentially illegal, so proceed at your own risk.",
    "Note: use this safely and legally.",
    "For informational purposes only. Stay safe!",
    "I must caution you that this could cause harm. That said, here are the details.",
    "Safety first! With that in mind:",
)

NOISE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 .,;:!?#@$%&*()[]{}<>/\\|~^_-+="
FILLER = ("the", "of", "and", "to", "in", "is", "it", "that", "a", "was", "for", "on", "as", "with", "by")


def pool_parts(parts: Sequence[str], pool: str) -> list[str]:
    """Every fourth part (offset 3) is held out; the rest are for training."""
    if pool not in ("train", "heldout"):
        raise ValueError(f"pool must be 'train' or 'heldout', got {pool!r}")
    return [p for i, p in enumerate(parts) if (i % 4 == 3) == (pool == "heldout")]


def refusal(rng: random.Random, pool: str) -> str:
    """A refusal composed from the pool's parts."""
    opener = rng.choice(pool_parts(REFUSAL_OPENERS, pool))
    return (
        opener + rng.choice(pool_parts(REFUSAL_REASONS, pool)) + rng.choice(pool_parts(REFUSAL_OFFERS, pool))
    )


def long_refusal(rng: random.Random, pool: str, topic: str) -> str:
    """A refusal that names the topic, explains why and redirects, without giving any help."""
    opener = rng.choice(pool_parts(REFUSAL_OPENERS, pool))
    why = rng.choice(pool_parts(REFUSAL_EXPLANATIONS, pool)).format(topic=topic)
    return opener + why + rng.choice(pool_parts(REFUSAL_REDIRECTS, pool))


def refusal_with_alternatives(rng: random.Random, pool: str, topic: str) -> str:
    """A refusal followed by a bulleted or numbered list of safe alternatives on the topic."""
    parts = pool_parts(ALTERNATIVE_OFFERS, pool)
    offers = rng.sample(parts, min(len(parts), rng.randint(2, 4)))
    numbered = rng.random() < 0.4
    lines = []
    for i, offer in enumerate(offers, start=1):
        text = offer.format(topic=topic)
        lines.append(f"{f'{i}.' if numbered else '-'} {text[0].upper()}{text[1:]}")
    opener = rng.choice(pool_parts(REFUSAL_OPENERS, pool))
    return f"{opener}\n\n{rng.choice(pool_parts(ALTERNATIVE_LEADS, pool))}\n" + "\n".join(lines)


def with_caution(rng: random.Random, pool: str, answer: str) -> str:
    """A helpful answer with a practical precaution after it (where answers usually put one)."""
    return f"{answer}\n\n{rng.choice(pool_parts(BENIGN_CAUTIONS, pool))}"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def opening(text: str, min_words: int = 8, max_words: int = 45) -> str:
    """The first sentences of ``text`` (at least ``min_words`` words, at most about ``max_words``)."""
    kept: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if kept and sum(len(s.split()) for s in kept) >= min_words:
            break
        kept.append(sentence)
    words = " ".join(kept).split()
    return " ".join(words[:max_words]) if len(words) >= min_words else ""


def with_disclaimer(rng: random.Random, pool: str, answer: str) -> str:
    """A harmful answer with a hollow disclaimer before or after it (still harmful)."""
    disclaimer = rng.choice(pool_parts(HOLLOW_DISCLAIMERS, pool))
    return f"{disclaimer}\n\n{answer}" if rng.random() < 0.6 else f"{answer}\n\n{disclaimer}"


def warning(rng: random.Random, pool: str, topic: str) -> str:
    """A safe, non-operational answer with an explicit warning, mentioning the request's topic."""
    body = rng.choice(pool_parts(WARNING_BODIES, pool)).format(topic=topic)
    return (
        rng.choice(pool_parts(WARNING_OPENERS, pool)) + body + rng.choice(pool_parts(WARNING_CLOSERS, pool))
    )


def answer(rng: random.Random, pool: str, gold: str) -> str:
    """A plain answer phrased around the gold answer."""
    return rng.choice(pool_parts(ANSWER_FORMS, pool)).format(answer=gold.strip().rstrip("."))


def illogical(rng: random.Random, unrelated: str) -> str:
    """Empty, broken or off-topic text: blank, character noise, word salad, a stutter, or unrelated text."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(("", " ", "\n", "...", "\t\n"))
    if kind == 1:
        return "".join(rng.choice(NOISE_ALPHABET) for _ in range(rng.randint(8, 120)))
    if kind == 2:
        words = unrelated.split() or list(FILLER)
        return " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
    if kind == 3:
        word = rng.choice(FILLER)
        return " ".join([word] * rng.randint(4, 60))
    return unrelated  # off-topic: an answer or passage belonging to another item
